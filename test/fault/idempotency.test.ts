/**
 * 100 concurrent POSTs with one Idempotency-Key through the real API process → exactly one job,
 * every response naming it, and (with a worker running) exactly one charge.
 */
import t from 'tap';
import { baseEnv, startApi, startWorker } from '../helpers/services';
import { deletePrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { call } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { payment, queueHandle, redisClient } from './lib';
import { providerCharges } from '../helpers/charges';

t.test('100 concurrent POSTs with one Idempotency-Key → exactly one job, one charge', async (t) => {
  const prefix = uniquePrefix('idem');
  t.teardown(() => deletePrefix(SHARED_REDIS_URL, prefix));
  const env = baseEnv(SHARED_REDIS_URL, prefix, { API_RATE_LIMIT_MAX: '0' });
  const api = await startApi(env);
  t.teardown(() => api.stop('SIGKILL'));
  const worker = await startWorker({ ...env, WORKER_QUEUES: 'payments' });
  t.teardown(() => worker.stop('SIGKILL'));
  const queue = queueHandle(t, SHARED_REDIS_URL, prefix);
  const redis = redisClient(t, SHARED_REDIS_URL);

  const key = `order-${prefix}`;
  const responses = await Promise.all(
    Array.from({ length: 100 }, () => call('POST', `${api.url}/v1/queues/payments/jobs`, payment(1, 'idem'), { 'idempotency-key': key })),
  );
  const statuses = [...new Set(responses.map((r) => r.status))];
  const ids = [...new Set(responses.map((r) => r.body.id))];
  t.same(statuses, [202], 'all 100 accepted');
  t.equal(ids.length, 1, 'all 100 name the same job');

  await waitFor(async () => (await queue.getJob(ids[0]))?.getState().then((s) => s === 'completed'), { what: 'the job completed' });
  const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
  const jobs = Object.values(counts).reduce((a, b) => a + b, 0);
  t.equal(jobs, 1, `exactly one job in the queue (${JSON.stringify(counts)})`);
  const charges = Object.keys(await providerCharges(redis, prefix)).length;
  t.equal(charges, 1, 'exactly one charge');
  // Replaying the key after completion still returns the same job, in its real state.
  const replay = await call('POST', `${api.url}/v1/queues/payments/jobs`, payment(1, 'idem'), { 'idempotency-key': key });
  t.match(replay.body, { id: ids[0], state: 'completed' }, 'replay after completion: same job, state completed');
  t.comment(`100 concurrent POSTs with one Idempotency-Key → ${ids.length} job id, ${jobs} job in Redis, ${charges} charge`);
});
