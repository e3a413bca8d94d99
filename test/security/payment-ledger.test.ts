/**
 * The payments ledger against a real worker process and real Redis: a charge is identified by (client,
 * Idempotency-Key) and bound to amount, currency and account; `reference` is unique per account. Two different
 * payments never share a charge id, and a payment that conflicts with another fails for good as `rejected`
 * without reaching the provider.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { startPipeline, type Pipeline } from '../helpers/pipeline';
import { SHARED_REDIS_URL } from '../helpers/redis';
import { scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { providerCharges } from '../helpers/charges';
import { SimulatedPaymentProvider } from '../../services/worker/providers/simulated';
import { NO_FAULTS } from '../../services/common/faults';
import { UnrecoverableError } from '../../services/worker/errors';
import type { JobMeta } from '../../services/common/job-envelope';

function redisFor(t: { teardown(fn: () => unknown): void }): Redis {
  const redis = new Redis(SHARED_REDIS_URL);
  t.teardown(() => redis.disconnect());
  return redis;
}

const pay = (amount: number, account: string, reference?: string) => ({
  data: { amount, currency: 'EUR', account, ...(reference ? { reference } : {}) },
});

/** Adds a job straight to the queue with the meta the API would write: what a redelivered or re-sent intent looks like. */
async function addDirect(p: Pipeline, payload: object, meta: JobMeta, jobId: string): Promise<string> {
  return String((await p.app.queues.payments.add('payments', { payload, meta }, { jobId })).id);
}

t.test('the same reference with another account and amount is another payment: charged, its own charge id', async (t) => {
  const p = await startPipeline(t);
  const redis = redisFor(t);
  await p.startWorker({ WORKER_QUEUES: 'payments' });
  const first = await p.enqueue('payments', pay(1000, 'acct_a', 'order-1'));
  const second = await p.enqueue('payments', pay(2500, 'acct_b', 'order-1'));
  const a = await p.waitForState('payments', first, 'completed');
  const b = await p.waitForState('payments', second, 'completed');
  t.not(a.returnValue.chargeId, b.returnValue.chargeId, 'distinct charge ids');
  t.equal(b.returnValue.replayed, false, 'the second was charged, not answered with the first charge');
  // Without an Idempotency-Key (jobs written around the API) the reference is no intent either.
  const third = await addDirect(p, pay(1000, 'acct_a', 'order-2').data, {}, 'no-key-a');
  const fourth = await addDirect(p, pay(2500, 'acct_b', 'order-2').data, {}, 'no-key-b');
  const c = await p.waitForState('payments', third, 'completed');
  const d = await p.waitForState('payments', fourth, 'completed');
  t.not(c.returnValue.chargeId, d.returnValue.chargeId, 'without keys too: distinct charge ids');
  const charges = await providerCharges(redis, p.prefix);
  const expected = [a, b, c, d].map((j) => j.returnValue.chargeId as string).sort();
  t.same(Object.values(charges).sort(), expected, 'four charges applied, one per payment');
});

t.test('a reference reused on the same account by another payment fails for good as rejected, never charged', async (t) => {
  const p = await startPipeline(t);
  const redis = redisFor(t);
  const worker = await p.startWorker({ WORKER_QUEUES: 'payments' });
  const first = await p.enqueue('payments', pay(1000, 'acct_a', 'order-7'));
  const firstJob = await p.waitForState('payments', first, 'completed');

  const otherAmount = await p.enqueue('payments', pay(99_999, 'acct_a', 'order-7'));
  const sameDetails = await p.enqueue('payments', pay(1000, 'acct_a', 'order-7'));
  for (const id of [otherAmount, sameDetails]) {
    const failed = await p.waitForState('payments', id, 'failed');
    t.match(failed.failedReason, new RegExp(`reference "order-7" is already used on this account by another payment \\(job ${first}\\); not charged`));
    t.equal(failed.attemptsMade, 1, 'not retried');
    t.equal(failed.returnValue ?? null, null, 'no charge id reported');
  }
  const charges = await providerCharges(redis, p.prefix);
  t.same(Object.values(charges), [firstJob.returnValue.chargeId], 'only the first payment was charged');
  const m = await scrape(worker.metricsUrl);
  t.equal(valueOf(m, 'bullmq_jobs_failed_total', { queue: 'payments', reason: 'rejected' }), 2, 'counted as rejected');
});

t.test('concurrent payments claiming one reference: exactly one is charged', async (t) => {
  const p = await startPipeline(t, { API_RATE_LIMIT_MAX: '0' });
  const redis = redisFor(t);
  await p.startWorker({ WORKER_QUEUES: 'payments', WORKER_CONCURRENCY_PAYMENTS: '20' });
  const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => p.enqueue('payments', pay(100 + i, 'acct_c', 'order-race'))));
  const settled = await Promise.all(
    ids.map((id) =>
      waitFor(async () => {
        const job = await p.job('payments', id);
        return job.state === 'completed' || job.state === 'failed' ? job : undefined;
      }, { what: `payment ${id} settled` }),
    ),
  );
  const completed = settled.filter((j) => j.state === 'completed');
  const failed = settled.filter((j) => j.state === 'failed');
  t.equal(completed.length, 1, 'one payment holds the reference');
  t.equal(failed.length, 19, 'the others are rejected');
  t.ok(failed.every((j) => /already used on this account/.test(j.failedReason)), 'each says why');
  t.same(Object.values(await providerCharges(redis, p.prefix)), [completed[0].returnValue.chargeId], 'one charge applied');
  t.comment(`20 concurrent payments with one reference on one account: ${completed.length} charged, ${failed.length} rejected`);
});

t.test('an intent is (client, Idempotency-Key): re-sent it charges once; another client\'s same key is another payment', async (t) => {
  const p = await startPipeline(t);
  const redis = redisFor(t);
  const worker = await p.startWorker({ WORKER_QUEUES: 'payments' });
  const payload = { amount: 4200, currency: 'EUR', account: 'acct_d', reference: 'order-42' };
  const meta = { clientId: 'client-a', idempotencyKey: 'order-42-try' };
  // The first job ran although its client saw a 503; the client's retry became a second job with the same intent.
  const first = await addDirect(p, payload, meta, 'stored-despite-503');
  const firstJob = await p.waitForState('payments', first, 'completed');
  const retry = await addDirect(p, payload, meta, 'client-retry');
  const retryJob = await p.waitForState('payments', retry, 'completed');
  t.equal(retryJob.returnValue.chargeId, firstJob.returnValue.chargeId, 'the retry answers with the first charge');
  t.equal(retryJob.returnValue.replayed, true, 'as a replay');

  // Another client picking the same Idempotency-Key: its own intent, its own charge.
  const other = await addDirect(p, { ...payload, account: 'acct_e' }, { clientId: 'client-b', idempotencyKey: 'order-42-try' }, 'other-client');
  const otherJob = await p.waitForState('payments', other, 'completed');
  t.not(otherJob.returnValue.chargeId, firstJob.returnValue.chargeId, 'another client, another charge');

  // The same intent with other details is an error, not a silent merge.
  const mismatch = await addDirect(p, { ...payload, amount: 1 }, meta, 'same-key-other-amount');
  const failed = await p.waitForState('payments', mismatch, 'failed');
  t.match(failed.failedReason, /Idempotency-Key already used for a different payment \(job stored-despite-503/);
  t.equal(failed.attemptsMade, 1, 'not retried');

  const charges = await providerCharges(redis, p.prefix);
  t.equal(Object.keys(charges).length, 2, 'two charges: client-a once, client-b once');
  const m = await scrape(worker.metricsUrl);
  t.equal(valueOf(m, 'bullmq_jobs_failed_total', { queue: 'payments', reason: 'rejected' }), 1);
  t.comment(`same (client, key) sent twice → 1 charge, replayed; same key from another client → its own charge; same intent, other amount → rejected`);
});

t.test('a job without an Idempotency-Key is its own intent: redelivered, it charges once', async (t) => {
  const p = await startPipeline(t);
  const redis = redisFor(t);
  await p.startWorker({ WORKER_QUEUES: 'payments' });
  const id = await addDirect(p, { amount: 700, currency: 'USD', account: 'acct_f' }, {}, 'no-key');
  const done = await p.waitForState('payments', id, 'completed');
  // Redelivery (as after a crash): the same job runs again.
  const job = await p.app.queues.payments.getJob(id);
  await job!.retry('completed');
  await p.waitForState('payments', id, 'completed');
  const again = await p.job('payments', id);
  t.equal(again.returnValue.chargeId, done.returnValue.chargeId, 'same charge');
  t.equal(again.returnValue.replayed, true, 'answered from the ledger');
  t.equal(Object.keys(await providerCharges(redis, p.prefix)).length, 1, 'charged once');
});

t.test('the simulated provider refuses an idempotency key reused with other parameters (as real PSPs do)', async (t) => {
  const redis = redisFor(t);
  const prefix = `ledger-provider-${process.pid}-${Date.now()}`;
  t.teardown(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  });
  const provider = new SimulatedPaymentProvider(redis, prefix, { get: () => NO_FAULTS });
  const signal = new AbortController().signal;
  const req = { amount: 100, currency: 'EUR', account: 'acct_g', idempotencyKey: 'idem:client:k1' };
  const first = await provider.charge(req, { signal });
  t.match(await provider.charge(req, { signal }), { chargeId: first.chargeId, replayed: true }, 'same parameters: the first charge');
  await t.rejects(provider.charge({ ...req, amount: 101 }, { signal }), UnrecoverableError, 'other amount: refused for good');
  await t.rejects(provider.charge({ ...req, account: 'acct_h' }, { signal }), /400 idempotency key already used with different parameters/);
});
