/**
 * Fault tests 1 and 2: real worker processes SIGKILLed with jobs in flight.
 * 1. ≥ 50 active payments, worker SIGKILLed, another started: all complete, 0 lost, every payment applied once
 *    (provider's own record and the processor's ledger both hold exactly one charge per payment).
 * 2. The same jobs' worker SIGKILLed twice: with maxStalledCount 1 they end failed with BullMQ's stalled reason,
 *    counted as bullmq_jobs_failed_total{reason="stalled"}.
 * Short locks (1 s) and stalled checks (0.5 s) so recovery takes seconds, not the production 30 s.
 */
import t from 'tap';
import { startPipeline } from '../helpers/pipeline';
import { SHARED_REDIS_URL } from '../helpers/redis';
import { scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { enqueueWithRetry, payment, redisClient, ms } from './lib';
import type { Pipeline } from '../helpers/pipeline';
import { ledgerEntries, providerCharges } from '../helpers/charges';
import { ledgerKeyFor } from '../../services/worker/payment-ledger';

const enqueue = (p: Pipeline, body: object, key: string) =>
  enqueueWithRetry(async (headers) => {
    const res = await p.app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...p.auth, ...headers }, payload: body });
    return { status: res.statusCode, body: res.json() };
  }, key);

const FAST_STALL = { WORKER_QUEUES: 'payments', WORKER_LOCK_DURATION_MS: '1000', WORKER_STALLED_INTERVAL_MS: '500', WORKER_MAX_STALLED_COUNT: '1' };

t.test('SIGKILL with 60 active payments: another worker completes all, each charged once', async (t) => {
  const N = 60;
  const p = await startPipeline(t, { API_RATE_LIMIT_MAX: '0' });
  const redis = redisClient(t, SHARED_REDIS_URL);
  await p.setFaults('payments', { latencyMs: 3000 });
  const env = { ...FAST_STALL, WORKER_CONCURRENCY_PAYMENTS: String(N) };
  const first = await p.startWorker(env);
  const ids = await Promise.all(Array.from({ length: N }, (_, i) => enqueue(p, payment(i, 'crash1'), `crash1-${i}`)));
  await waitFor(async () => (await p.app.queues.payments.getJobCounts('active')).active === N, { what: `${N} active`, timeoutMs: 15_000 });
  t.equal(Object.keys(await providerCharges(redis, p.prefix)).length, 0, 'killed before any charge went through');

  t.equal(await first.stop('SIGKILL'), 'SIGKILL', 'worker killed');
  const killedAt = performance.now();
  const second = await p.startWorker(env);

  const states = await waitFor(
    async () => {
      const jobs = await Promise.all(ids.map((id) => p.job('payments', id)));
      return jobs.every((j) => j.state === 'completed') ? jobs : undefined;
    },
    { what: 'all recovered jobs completed', timeoutMs: 25_000, intervalMs: 250 },
  );
  const recoveredMs = ms(killedAt);
  const lost = N - states.filter((j) => j.state === 'completed').length;

  const charges = await providerCharges(redis, p.prefix);
  const ledger = await ledgerEntries(redis, p.prefix);
  // ledger key = the intent: (client, Idempotency-Key) as the API stored them in each job
  const jobs = await Promise.all(ids.map((id) => p.app.queues.payments.getJob(id)));
  const expectedKeys = jobs.map((j, i) => {
    t.equal(j?.data.meta.idempotencyKey, `crash1-${i}`, 'the job carries its Idempotency-Key');
    return ledgerKeyFor(j!, j!.data.meta);
  }).sort();
  t.same(Object.keys(charges).sort(), expectedKeys, 'provider: exactly one applied charge per payment');
  t.same(Object.keys(ledger).sort(), expectedKeys, 'ledger: exactly one entry per payment');
  const mismatched = expectedKeys.filter((k) => (JSON.parse(ledger[k]!) as { chargeId: string }).chargeId !== charges[k]);
  t.same(mismatched, [], 'ledger charge ids are the provider charge ids');
  const returned = new Set(states.map((j) => j.returnValue.chargeId));
  t.equal(returned.size, N, 'each job reports its own single charge');

  const m = await scrape(second.metricsUrl);
  const stalled = valueOf(m, 'bullmq_jobs_stalled_total', { queue: 'payments' });
  t.equal(stalled, N, 'the new worker counted every recovered job as stalled');
  t.equal(lost, 0);
  t.comment(`lost ${lost} of ${N} active jobs after SIGKILL; ${Object.keys(charges).length} charges for ${N} payments (0 duplicates); all completed ${recoveredMs} ms after the kill; ${stalled} counted stalled`);
});

t.test('the same jobs\' worker SIGKILLed twice: jobs fail with the stalled reason and are counted', async (t) => {
  const N = 10;
  const p = await startPipeline(t, { API_RATE_LIMIT_MAX: '0' });
  const redis = redisClient(t, SHARED_REDIS_URL);
  await p.setFaults('payments', { latencyMs: 6000 });
  const env = { ...FAST_STALL, WORKER_CONCURRENCY_PAYMENTS: String(N) };
  const a = await p.startWorker(env);
  const ids = await Promise.all(Array.from({ length: N }, (_, i) => enqueue(p, payment(i, 'crash2'), `crash2-${i}`)));
  await waitFor(async () => (await p.app.queues.payments.getJobCounts('active')).active === N, { what: `${N} active on A` });
  await a.stop('SIGKILL');

  const b = await p.startWorker(env);
  // B has them when every job was started a second time (attemptsStarted only grows) and is active again.
  await waitFor(
    async () => {
      const jobs = await Promise.all(ids.map((id) => p.app.queues.payments.getJob(id)));
      const states = await Promise.all(jobs.map(async (j) => j?.getState()));
      return jobs.every((j, i) => j && j.attemptsStarted >= 2 && states[i] === 'active');
    },
    { what: 'jobs re-taken by worker B', timeoutMs: 15_000, intervalMs: 100 },
  );
  const stalledOnB = valueOf(await scrape(b.metricsUrl), 'bullmq_jobs_stalled_total', { queue: 'payments' });
  t.equal(stalledOnB, N, 'worker B counted the first stall of each job');
  await b.stop('SIGKILL');

  const c = await p.startWorker(env);
  const failed = await waitFor(
    async () => {
      const jobs = await Promise.all(ids.map((id) => p.job('payments', id)));
      return jobs.every((j) => j.state === 'failed') ? jobs : undefined;
    },
    { what: 'all jobs failed as stalled', timeoutMs: 20_000, intervalMs: 200 },
  );
  for (const j of failed) t.match(j.failedReason, /stalled more than allowable limit/, `job ${j.id} failed as stalled`);
  const m = await scrape(c.metricsUrl);
  const counted = valueOf(m, 'bullmq_jobs_failed_total', { queue: 'payments', reason: 'stalled' });
  t.equal(counted, N, 'bullmq_jobs_failed_total{reason="stalled"} counts every one');
  t.equal(Object.keys(await providerCharges(redis, p.prefix)).length, 0, 'no charge applied by the killed attempts');
  t.comment(`${failed.length} of ${N} twice-killed jobs failed with "job stalled more than allowable limit"; counted stalled failures ${counted}; stall events ${stalledOnB} on the second worker`);
});
