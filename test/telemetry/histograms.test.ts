/**
 * Ground truth: job wait and processing histograms agree with what BullMQ recorded for each job (timestamps
 * read back independently), for injected latencies and delays; stalled jobs move exactly their counters.
 */
import t from 'tap';
import { startPipeline } from '../helpers/pipeline';
import { scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';

const notification = { channel: 'push', to: 'device-1', template: 'ping' };

t.test('wait and processing histograms match measured job timings', async (t) => {
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
});
