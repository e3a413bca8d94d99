/**
 * Ground truth: job wait, processing and end-to-end histograms agree with what BullMQ recorded for each job
 * (timestamps read back independently), for injected latencies, delays and failures; stalled jobs move exactly
 * their counters and end their end-to-end time.
 */
import t, { type Test } from 'tap';
import { startPipeline } from '../helpers/pipeline';
import { type Sample, scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { BUCKETS } from '../../services/common/telemetry/registry';

const notification = { channel: 'push', to: 'device-1', template: 'ping' };

interface JobTimes {
  timestamp: number;
  opts: { delay?: number };
  finishedOn?: number;
}

/** End to end as the job itself recorded it: from eligible (enqueue + delay) to finished. */
const e2eOf = (j: JobTimes) => (j.finishedOn! - (j.timestamp + (j.opts.delay ?? 0))) / 1000;

/**
 * Every job's observation lies within one bucket of its own timestamps: for each boundary b[k], the histogram's
 * cumulative count sits between the measured counts at b[k-1] and b[k+1].
 */
function checkWithinOneBucket(t: Test, m: Sample[], labels: Record<string, string>, measured: number[]): void {
  const bounds = [...BUCKETS.jobE2e];
  const upTo = (le: number | undefined) => (le === undefined ? measured.length : measured.filter((v) => v <= le).length);
  const off: string[] = [];
  bounds.forEach((le, k) => {
    const h = valueOf(m, 'bullmq_job_e2e_seconds_bucket', { ...labels, le: String(le) });
    const lo = k === 0 ? 0 : upTo(bounds[k - 1]);
    const hi = upTo(bounds[k + 1]);
    if (h < lo || h > hi) off.push(`le=${le}: ${h} not in [${lo}, ${hi}]`);
  });
  t.same(off, [], `e2e ${JSON.stringify(labels)} within one bucket of the jobs' timestamps (${measured.map((v) => v.toFixed(3)).join(', ')} s)`);
}

t.test('wait, processing and end-to-end histograms match measured job timings', async (t) => {
  const p = await startPipeline(t);
  await p.setFaults('notifications', { latencyMs: 300 });
  const immediate = await Promise.all(Array.from({ length: 6 }, () => p.enqueue('notifications', { data: notification })));
  const delayed = await Promise.all(Array.from({ length: 2 }, () => p.enqueue('notifications', { data: notification, delayMs: 700 })));
  // Start the worker after enqueueing, so jobs really wait (measurable, non-zero wait times).
  await new Promise((r) => setTimeout(r, 400));
  const worker = await p.startWorker({ WORKER_QUEUES: 'notifications' });

  const jobs = [];
  for (const id of [...immediate, ...delayed]) jobs.push(await p.waitForState('notifications', id, 'completed'));
  const job = async (id: string) => (await p.app.queues.notifications.getJob(id))!;
  let waitSum = 0;
  let procSum = 0;
  for (const id of [...immediate, ...delayed]) {
    const j = await job(id);
    waitSum += (j.processedOn! - (j.timestamp + (j.opts.delay ?? 0))) / 1000;
    procSum += (j.finishedOn! - j.processedOn!) / 1000;
  }
  const m = await scrape(worker.metricsUrl);
  const q = { queue: 'notifications' };
  t.equal(valueOf(m, 'bullmq_job_wait_seconds_count', q), 8, 'one wait observation per job');
  t.equal(valueOf(m, 'bullmq_job_processing_seconds_count', { ...q, status: 'completed' }), 8, 'one processing observation per attempt');
  t.equal(valueOf(m, 'bullmq_job_processing_seconds_count', { ...q, status: 'failed' }), 0);
  const waitHist = valueOf(m, 'bullmq_job_wait_seconds_sum', q);
  const procHist = valueOf(m, 'bullmq_job_processing_seconds_sum', { ...q, status: 'completed' });
  t.comment(`wait sum: histogram ${waitHist.toFixed(3)} s vs measured ${waitSum.toFixed(3)} s; processing ${procHist.toFixed(3)} vs ${procSum.toFixed(3)}`);
  t.ok(Math.abs(waitHist - waitSum) < 8 * 0.03, 'wait sum within 30 ms per job of BullMQ timestamps');
  t.ok(Math.abs(procHist - procSum) < 8 * 0.03, 'processing sum within 30 ms per job');
  t.ok(procHist >= 8 * 0.3, 'every attempt took at least the injected 300 ms');
  // Buckets: 300 ms latency lands in (0.25, 0.5]; the delayed jobs' wait excludes their 700 ms delay.
  t.equal(valueOf(m, 'bullmq_job_processing_seconds_bucket', { ...q, status: 'completed', le: '0.25' }), 0);
  t.equal(valueOf(m, 'bullmq_job_processing_seconds_bucket', { ...q, status: 'completed', le: '0.5' }), 8);
  t.equal(valueOf(m, 'bullmq_jobs_completed_total', q), 8);
  const waitsUnder250ms = valueOf(m, 'bullmq_job_wait_seconds_bucket', { ...q, le: '0.25' });
  const measuredUnder250ms = (await Promise.all([...immediate, ...delayed].map(job))).filter(
    (j) => (j.processedOn! - (j.timestamp + (j.opts.delay ?? 0))) / 1000 <= 0.25,
  ).length;
  t.ok(Math.abs(waitsUnder250ms - measuredUnder250ms) <= 1, `le=0.25 wait bucket ${waitsUnder250ms} ≈ measured ${measuredUnder250ms}`);

  // End to end: once per job, from eligible to finished, against each job's own timestamps.
  const completedE2e = (await Promise.all([...immediate, ...delayed].map(job))).map(e2eOf);
  t.equal(valueOf(m, 'bullmq_job_e2e_seconds_count', { ...q, status: 'completed' }), 8, 'one e2e observation per job');
  t.equal(valueOf(m, 'bullmq_job_e2e_seconds_count', { ...q, status: 'failed' }), 0);
  const e2eHist = valueOf(m, 'bullmq_job_e2e_seconds_sum', { ...q, status: 'completed' });
  const e2eSum = completedE2e.reduce((a, v) => a + v, 0);
  t.comment(`e2e sum: histogram ${e2eHist.toFixed(3)} s vs measured ${e2eSum.toFixed(3)} s`);
  t.ok(Math.abs(e2eHist - e2eSum) < 8 * 0.03, 'e2e sum within 30 ms per job of BullMQ timestamps');
  t.ok(completedE2e.every((v) => v >= 0.3), 'every e2e includes the injected 300 ms');
  checkWithinOneBucket(t, m, { ...q, status: 'completed' }, completedE2e);

  // Failed for good: notifications allow 2 attempts; e2e is observed once, at the last one, including the backoff.
  await p.setFaults('notifications', { latencyMs: 100, failureRate: 1 });
  const failing = await Promise.all(Array.from({ length: 3 }, () => p.enqueue('notifications', { data: notification })));
  for (const id of failing) await p.waitForState('notifications', id, 'failed', 20_000);
  const failedJobs = await Promise.all(failing.map(job));
  t.ok(failedJobs.every((j) => j.attemptsMade === 2), 'each failing job used both attempts');
  const m2 = await scrape(worker.metricsUrl);
  t.equal(valueOf(m2, 'bullmq_job_processing_seconds_count', { ...q, status: 'failed' }), 6, 'two failed attempts per job');
  t.equal(valueOf(m2, 'bullmq_job_e2e_seconds_count', { ...q, status: 'failed' }), 3, 'but one e2e observation per job');
  t.equal(valueOf(m2, 'bullmq_job_e2e_seconds_count', { ...q, status: 'completed' }), 8, 'completed series unchanged');
  checkWithinOneBucket(t, m2, { ...q, status: 'failed' }, failedJobs.map(e2eOf));
});

t.test('stalled jobs: counted as stalled, then failed with reason "stalled" past maxStalledCount', async (t) => {
  const p = await startPipeline(t);
  const fast = { WORKER_QUEUES: 'payments', WORKER_LOCK_DURATION_MS: '800', WORKER_STALLED_INTERVAL_MS: '400', WORKER_MAX_STALLED_COUNT: '1' };
  await p.setFaults('payments', { latencyMs: 5000 });
  const id = await p.enqueue('payments', { data: { amount: 1, currency: 'EUR', account: 'a' } });
  const w1 = await p.startWorker(fast);
  await waitFor(async () => (await p.app.queues.payments.getJobCounts('active')).active === 1, { what: 'active' });
  await w1.stop('SIGKILL');
  const w2 = await p.startWorker(fast);
  // The dead worker's job stays in "active" until a stalled check moves it: wait for the second start.
  await waitFor(async () => ((await p.app.queues.payments.getJob(id))?.attemptsStarted ?? 0) >= 2, { what: 'picked up again', timeoutMs: 10_000 });
  await w2.stop('SIGKILL');
  const w3 = await p.startWorker(fast);
  const failed = await p.waitForState('payments', id, 'failed', 15_000);
  t.match(failed.failedReason, /stalled more than allowable limit/);
  const total = async (name: string, labels: Record<string, string>) =>
    valueOf(await scrape(w3.metricsUrl), name, labels);
  t.equal(await total('bullmq_jobs_failed_total', { queue: 'payments', reason: 'stalled' }), 1, 'failed{reason=stalled} once');
  t.ok((await total('bullmq_jobs_stalled_total', { queue: 'payments' })) >= 1, 'stalled counted');
  t.equal(await total('bullmq_jobs_completed_total', { queue: 'payments' }), 0);
  // Failed for good without any attempt finishing: still one end-to-end observation, from its own timestamps.
  const m = await scrape(w3.metricsUrl);
  t.equal(valueOf(m, 'bullmq_job_e2e_seconds_count', { queue: 'payments', status: 'failed' }), 1, 'e2e{status=failed} once');
  t.equal(valueOf(m, 'bullmq_job_e2e_seconds_count', { queue: 'payments', status: 'completed' }), 0);
  const stalledJob = (await p.app.queues.payments.getJob(id))!;
  checkWithinOneBucket(t, m, { queue: 'payments', status: 'failed' }, [e2eOf(stalledJob)]);
});
