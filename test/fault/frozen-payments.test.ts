/**
 * Fault test: Redis frozen (SIGSTOP) in the middle of a burst of payments, each with its own Idempotency-Key.
 * Requests caught by the freeze answer 503 — some after Redis had already received their writes, which it
 * applies on SIGCONT (the outcome the 503 calls unknown). After the thaw every non-202 is retried with its key,
 * as a correct client does. Charges in the simulated provider must equal the number of distinct keys: none
 * twice, none lost. A payment without a key is refused up front (it could not be retried safely).
 */
import t from 'tap';
import { baseEnv, startApi, startWorker } from '../helpers/services';
import { startRedisServer } from '../helpers/redis';
import { call, type JsonResponse } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { providerCharges } from '../helpers/charges';
import { ms, payment, paymentKey, pool, queueHandle, redisClient } from './lib';

const PAYMENTS = 60;
const FREEZE_AFTER_ACKS = 15;
const FROZEN_MS = 3_000;

t.test('Redis frozen during a burst of keyed payments: retries with the same key → charges = distinct keys, 0 lost', async (t) => {
  const redis = await startRedisServer({ appendonly: false });
  t.teardown(() => redis.stop());
  const prefix = 'frozen-pay';
  const env = baseEnv(redis.url, prefix, { API_RATE_LIMIT_MAX: '0' });
  const api = await startApi(env);
  t.teardown(() => api.stop('SIGKILL'));
  const worker = await startWorker({ ...env, WORKER_QUEUES: 'payments' });
  t.teardown(() => worker.stop('SIGKILL'));
  const queue = queueHandle(t, redis.url, prefix);
  const store = redisClient(t, redis.url);
  const post = (i: number) => call('POST', `${api.url}/v1/queues/payments/jobs`, payment(i, 'frozen'), paymentKey(i, 'frozen'));

  const unkeyed = await call('POST', `${api.url}/v1/queues/payments/jobs`, payment(999, 'frozen'));
  t.equal(unkeyed.status, 400, 'a payment without Idempotency-Key → 400');
  t.equal(unkeyed.body.code, 'IDEMPOTENCY_KEY_REQUIRED');

  // The burst: Redis is frozen once FREEZE_AFTER_ACKS payments are acknowledged, thawed FROZEN_MS later.
  let acks = 0;
  let frozenAt: number | undefined;
  let thawed: Promise<void> | undefined;
  const first: JsonResponse[] = await pool(Array.from({ length: PAYMENTS }, (_, i) => i), 8, async (i) => {
    const res = await post(i);
    if (res.status === 202 && ++acks === FREEZE_AFTER_ACKS && frozenAt === undefined) {
      redis.signal('SIGSTOP');
      frozenAt = performance.now();
      thawed = new Promise((resolve) => setTimeout(() => { redis.signal('SIGCONT'); resolve(); }, FROZEN_MS));
    }
    return res;
  });
  await thawed;
  const refused = first.map((r, i) => ({ r, i })).filter(({ r }) => r.status !== 202);
  const unknownOutcome = refused.filter(({ r }) => r.status === 503 && /outcome is unknown/.test(r.body?.message ?? '')).length;
  t.ok(frozenAt !== undefined, 'Redis was frozen mid-burst');
  t.ok(refused.length > 0, `${refused.length} payments refused while Redis was frozen`);
  t.same([...new Set(refused.map(({ r }) => r.status))], [503], 'every refusal is a 503');
  t.ok(refused.every(({ r }) => r.headers['retry-after'] !== undefined), 'every 503 carries Retry-After');
  t.ok(unknownOutcome > 0, `${unknownOutcome} of the 503s say the outcome is unknown`);

  // Retry every refusal with its own key until accepted, as the 503 asks.
  const retried = await Promise.all(
    refused.map(({ i }) =>
      waitFor(async () => {
        const res = await post(i);
        return res.status === 202 ? res : undefined;
      }, { what: `payment ${i} accepted on retry`, timeoutMs: 15_000, intervalMs: 200 }),
    ),
  );
  const replayedOnRetry = retried.filter((r) => r.headers['idempotent-replayed'] === 'true').length;
  const ids = new Map<number, string>();
  first.forEach((r, i) => r.status === 202 && ids.set(i, r.body.id));
  refused.forEach(({ i }, n) => ids.set(i, retried[n]!.body.id));
  t.equal(new Set(ids.values()).size, PAYMENTS, `${PAYMENTS} distinct job ids, one per key`);

  await waitFor(async () => (await queue.getJobCounts('completed')).completed === PAYMENTS, {
    what: `${PAYMENTS} payments completed`,
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
  t.equal(Object.values(counts).reduce((a, b) => a + b, 0), PAYMENTS, `exactly ${PAYMENTS} jobs (${JSON.stringify(counts)})`);
  const charges = Object.keys(await providerCharges(store, prefix)).length;
  t.equal(charges, PAYMENTS, `charges = distinct keys (${PAYMENTS})`);
  const lost = [...ids.values()].filter((id) => !id).length;
  t.equal(lost, 0, '0 lost');
  t.comment(
    `${PAYMENTS} keyed payments, Redis frozen ${FROZEN_MS} ms after ${FREEZE_AFTER_ACKS} acks: ${refused.length} answered 503 ` +
      `(${unknownOutcome} "outcome unknown"), all retried with their key (${replayedOnRetry} answered as replays) → ` +
      `${PAYMENTS} jobs, ${charges} charges, 0 lost; done ${ms(frozenAt!)} ms after the freeze`,
  );
});
