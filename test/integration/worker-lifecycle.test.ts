/** Worker lifecycle: graceful shutdown finishes active jobs; a SIGKILLed worker's jobs are recovered by another. */
import t from 'tap';
import { Redis } from 'ioredis';
import { startPipeline } from '../helpers/pipeline';
import { SHARED_REDIS_URL, startRedisServer } from '../helpers/redis';
import { waitFor } from '../helpers/wait';
import { baseEnv, startApi, startWorker } from '../helpers/services';
import { providerCharges } from '../helpers/charges';

const payment = (i: number) => ({ data: { amount: 100 + i, currency: 'EUR', account: `acct_${i}`, reference: `ref-${i}` } });

t.test('SIGTERM: stops taking jobs, finishes the active ones, exits 0', async (t) => {
  const p = await startPipeline(t);
  const worker = await p.startWorker({ WORKER_QUEUES: 'payments', SHUTDOWN_GRACE_MS: '10000' });
  await p.setFaults('payments', { latencyMs: 1500 });
  const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => p.enqueue('payments', payment(i))));
  await waitFor(async () => (await p.app.queues.payments.getJobCounts('active')).active === 5, { what: '5 active jobs' });
  const extra = await p.enqueue('payments', payment(99));
  const code = await worker.stop('SIGTERM');
  t.equal(code, 0, 'exit code 0');
  for (const id of ids) {
    const j = await p.job('payments', id);
    t.equal(j.state, 'completed', `job ${id} finished during shutdown`);
    t.equal(j.attemptsMade, 1);
  }
  t.not((await p.job('payments', extra)).state, 'completed', 'no new job taken after SIGTERM');
  t.ok(worker.logs.some((l) => l.msg === 'shutdown complete'));
});

t.test('SIGKILL: another worker recovers the active jobs (short lock), each payment applied once', async (t) => {
  const p = await startPipeline(t);
  const fast = { WORKER_QUEUES: 'payments', WORKER_LOCK_DURATION_MS: '1000', WORKER_STALLED_INTERVAL_MS: '500' };
  const first = await p.startWorker(fast);
  await p.setFaults('payments', { latencyMs: 1500 });
  const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => p.enqueue('payments', payment(i))));
  await waitFor(async () => (await p.app.queues.payments.getJobCounts('active')).active === 5, { what: '5 active jobs' });
  await first.stop('SIGKILL');
  const second = await p.startWorker(fast);
  for (const id of ids) t.equal((await p.waitForState('payments', id, 'completed', 20_000)).state, 'completed', `job ${id} recovered`);
  const redis = new Redis(SHARED_REDIS_URL);
  t.teardown(() => redis.disconnect());
  const charges = await providerCharges(redis, p.prefix);
  t.equal(Object.keys(charges).length, ids.length, 'one charge per payment');
  t.equal(new Set(Object.values(charges)).size, ids.length, 'distinct charges');
  t.ok(second.logs.some((l) => /stalled/.test(String(l.msg))), 'recovery logged as stalled');
});

t.test('an evicting Redis is refused at startup with the reason', async (t) => {
  const redis = await startRedisServer({ maxmemoryPolicy: 'allkeys-lru' });
  t.teardown(() => redis.stop());
  const env = baseEnv(redis.url, 'evict');
  await t.rejects(startWorker(env), /noeviction/, 'worker exits explaining noeviction');
  await t.rejects(startApi(env), /noeviction/, 'api exits explaining noeviction');
});
