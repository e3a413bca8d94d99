/**
 * Webhook isolation with real HTTP targets and a real worker process: one customer's endpoint cannot hold up
 * another's.
 * - A target answering 429 Retry-After: 20 delays only its own job (moved to delayed, no attempt used); other
 *   targets' deliveries complete meanwhile, and the 429 target is not called again before its Retry-After.
 * - A target that keeps answering 429 fails its job as `rate_limited` after 10 deferrals, counted.
 * - 8 targets (8 hosts) that never answer hold at most WEBHOOK_MAX_PER_HOST deliveries each; a healthy target's
 *   deliveries complete while all of them hang.
 * Figures (the healthy target's enqueue → delivered time) are printed, not asserted: see docs/reliability.md.
 */
import http from 'node:http';
import t from 'tap';
import { startPipeline, type Pipeline } from '../helpers/pipeline';
import { serveOnLoopback, startReceiver } from '../helpers/receiver';
import { scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { MAX_RATE_LIMIT_DEFERRALS } from '../../services/worker/deferral';

interface Target {
  url: string;
  /** Requests received so far. */
  hits: number;
  /** Requests whose response has not been sent yet. */
  inFlight: number;
  maxInFlight: number;
  close(): Promise<void>;
}

/** A target on its own port (its own host:port for the per-host limit) answering with `answer`, or never. */
async function startTarget(t: { teardown(fn: () => unknown): void }, answer?: (res: http.ServerResponse) => void): Promise<Target> {
  const target: Target = { url: '', hits: 0, inFlight: 0, maxInFlight: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    target.hits++;
    target.inFlight++;
    target.maxInFlight = Math.max(target.maxInFlight, target.inFlight);
    res.once('close', () => target.inFlight--);
    req.resume();
    req.once('end', () => answer?.(res));
  });
  Object.assign(target, await serveOnLoopback(server));
  t.teardown(() => target.close());
  return target;
}

const hook = (url: string, event: string) => ({ data: { url, event, payload: { event } } });

/** Enqueue → delivered (BullMQ's own timestamps), ms, for completed jobs. */
async function deliveredAfterMs(p: Pipeline, ids: string[]): Promise<number[]> {
  const jobs = await Promise.all(ids.map((id) => p.app.queues.webhooks.getJob(id)));
  return jobs.map((j) => (j!.finishedOn ?? NaN) - j!.timestamp);
}

t.test('a target answering 429 Retry-After: 20 delays only its own job; other targets keep being delivered', async (t) => {
  const p = await startPipeline(t);
  const healthy = await startReceiver();
  t.teardown(() => healthy.close());
  const limited = await startTarget(t, (res) => res.writeHead(429, { 'retry-after': '20' }).end());
  const worker = await p.startWorker({ WORKER_QUEUES: 'webhooks' });

  const limitedId = await p.enqueue('webhooks', hook(limited.url, 'limited'));
  const deferred = await p.waitForState('webhooks', limitedId, 'delayed');
  t.equal(deferred.attemptsMade, 0, '429 used no attempt');
  const limitedJob = await p.app.queues.webhooks.getJob(limitedId);
  t.ok(limitedJob!.delay >= 19_000 && limitedJob!.delay <= 20_000, `delayed by Retry-After (${limitedJob!.delay} ms)`);

  const ids: string[] = [];
  for (let i = 0; i < 10; i++) ids.push(await p.enqueue('webhooks', hook(healthy.url, `healthy.${i}`)));
  for (const id of ids) await p.waitForState('webhooks', id, 'completed');
  t.equal(healthy.deliveries.length, 10, 'every healthy delivery made');
  t.equal((await p.job('webhooks', limitedId)).state, 'delayed', 'all delivered while the 429 job is still delayed');
  t.equal(limited.hits, 1, 'the 429 target was not called again before its Retry-After');

  const m = await scrape(worker.metricsUrl);
  t.equal(valueOf(m, 'bullmq_rate_limit_hits_total', { queue: 'webhooks' }), 1, 'the deferral counted as a rate-limit hit');
  t.equal(valueOf(m, 'bullmq_job_retries_total', { queue: 'webhooks' }), 0, 'no retry');
  const delays = await deliveredAfterMs(p, ids);
  t.comment(`429 Retry-After: 20 on one target → that job delayed ${limitedJob!.delay} ms (attempts used 0); ` +
    `10 deliveries to another target: enqueue → delivered max ${Math.max(...delays)} ms, ` +
    `median ${[...delays].sort((a, b) => a - b)[5]} ms, all while the 429 job waited`);
});

t.test(`a target that keeps answering 429 fails its job as rate_limited after ${MAX_RATE_LIMIT_DEFERRALS} deferrals`, async (t) => {
  const p = await startPipeline(t);
  const limited = await startTarget(t, (res) => res.writeHead(429, { 'retry-after': '1' }).end());
  const worker = await p.startWorker({ WORKER_QUEUES: 'webhooks' });
  const id = await p.enqueue('webhooks', hook(limited.url, 'limited'));
  const failed = await p.waitForState('webhooks', id, 'failed', 60_000);
  t.match(failed.failedReason, new RegExp(`429\\) after ${MAX_RATE_LIMIT_DEFERRALS} deferrals`), 'failed for good, saying why');
  t.equal(limited.hits, MAX_RATE_LIMIT_DEFERRALS + 1, `${MAX_RATE_LIMIT_DEFERRALS} deferred deliveries, then the failing one`);
  const m = await scrape(worker.metricsUrl);
  t.equal(valueOf(m, 'bullmq_jobs_failed_total', { queue: 'webhooks', reason: 'rate_limited' }), 1, 'counted as rate_limited');
  t.equal(valueOf(m, 'bullmq_rate_limit_hits_total', { queue: 'webhooks' }), MAX_RATE_LIMIT_DEFERRALS, 'each deferral counted');
  t.equal(valueOf(m, 'bullmq_job_retries_total', { queue: 'webhooks' }), 0, 'no attempt used by the deferrals');
  const job = await p.app.queues.webhooks.getJob(id);
  t.comment(`always-429 target (Retry-After: 1): ${limited.hits} deliveries, failed rate_limited ${job!.finishedOn! - job!.timestamp} ms after enqueue`);
});

t.test('8 targets that never answer: at most 2 deliveries per host, a healthy target is delivered while they hang', async (t) => {
  const p = await startPipeline(t);
  const healthy = await startReceiver();
  t.teardown(() => healthy.close());
  const hanging = await Promise.all(Array.from({ length: 8 }, () => startTarget(t)));
  const worker = await p.startWorker({ WORKER_QUEUES: 'webhooks' });

  // 3 jobs per hanging host: the third must not get a delivery slot while the first two hang.
  for (const target of hanging) for (let i = 0; i < 3; i++) await p.enqueue('webhooks', hook(target.url, `hang.${i}`));
  await waitFor(() => hanging.every((h) => h.inFlight === 2), { what: '2 hanging deliveries at each of the 8 hosts' });
  await waitFor(async () => valueOf(await scrape(worker.metricsUrl), 'webhook_host_busy_deferrals_total') > 0, {
    what: 'a third job deferred because its host is busy',
  });

  const ids: string[] = [];
  for (let i = 0; i < 10; i++) ids.push(await p.enqueue('webhooks', hook(healthy.url, `healthy.${i}`)));
  for (const id of ids) await p.waitForState('webhooks', id, 'completed');
  t.equal(healthy.deliveries.length, 10, 'every healthy delivery made');
  t.same(hanging.map((h) => h.inFlight), Array(8).fill(2), 'delivered while all 16 hanging deliveries still hang');
  t.same(hanging.map((h) => h.maxInFlight), Array(8).fill(2), `never more than WEBHOOK_MAX_PER_HOST (2) at one host`);
  const delays = await deliveredAfterMs(p, ids);
  const deferrals = valueOf(await scrape(worker.metricsUrl), 'webhook_host_busy_deferrals_total');
  t.comment(`8 hanging targets × 3 jobs: ${hanging.map((h) => h.maxInFlight).join('/')} in flight per host at most; ` +
    `10 deliveries to a healthy target: enqueue → delivered max ${Math.max(...delays)} ms, ` +
    `median ${[...delays].sort((a, b) => a - b)[5]} ms; ${deferrals} host-busy deferrals so far`);
});

t.test('a burst to one fast host: every delivery made, never more than 2 at once', async (t) => {
  const p = await startPipeline(t);
  const fast = await startTarget(t, (res) => res.writeHead(200).end());
  const worker = await p.startWorker({ WORKER_QUEUES: 'webhooks' });
  const N = 300;
  const started = Date.now();
  await p.app.queues.webhooks.addBulk(
    Array.from({ length: N }, (_, i) => ({ name: 'webhooks', data: { payload: { url: fast.url, event: 'burst', payload: { i } }, meta: {} } })),
  );
  await waitFor(async () => (await p.app.queues.webhooks.getJobCounts('completed')).completed === N, {
    what: `${N} deliveries completed`,
    timeoutMs: 60_000,
    intervalMs: 100,
  });
  const tookMs = Date.now() - started;
  t.equal(fast.hits, N, 'each delivered once');
  t.ok(fast.maxInFlight <= 2, `at most WEBHOOK_MAX_PER_HOST in flight (${fast.maxInFlight})`);
  const deferrals = valueOf(await scrape(worker.metricsUrl), 'webhook_host_busy_deferrals_total');
  t.comment(`${N} deliveries to one fast host, one worker: all delivered in ${tookMs} ms, max ${fast.maxInFlight} in flight, ${deferrals} host-busy deferrals`);
});
