/**
 * Fault injection is off unless FAULTS_ENABLED=true: a worker with it off never reads the stored fault settings,
 * so settings left in Redis (by a drill, or written by anyone) cannot fail, slow or rate-limit real jobs — e.g.
 * `rateLimitRate: 1`, which re-queues payments forever without using attempts. The control worker, with it on,
 * proves the stored settings are real and would bite.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { startPipeline } from '../helpers/pipeline';
import { SHARED_REDIS_URL } from '../helpers/redis';
import { scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { FaultStore } from '../../services/common/faults';

t.test('FAULTS_ENABLED=false: the worker ignores stored fault settings', async (t) => {
  const p = await startPipeline(t);
  const redis = new Redis(SHARED_REDIS_URL);
  t.teardown(() => redis.disconnect());
  const stored = { rateLimitRate: 1, failureRate: 1, latencyMs: 5_000 };
  await new FaultStore(redis, p.prefix).update('payments', stored);
  const body = (i: number) => ({ data: { amount: 100 + i, currency: 'EUR', account: `acct_${i}` } });

  const off = await p.startWorker({ WORKER_QUEUES: 'payments', FAULTS_ENABLED: 'false' });
  t.match(off.logs.find((l) => l.msg === 'worker started'), { faultInjection: false }, 'the worker says fault injection is off');
  const ids = await Promise.all([1, 2, 3].map((i) => p.enqueue('payments', body(i))));
  for (const id of ids) {
    const done = await p.waitForState('payments', id, 'completed');
    t.equal(done.attemptsMade, 1, 'completed on its first attempt');
  }
  const m = await scrape(off.metricsUrl);
  t.equal(valueOf(m, 'bullmq_rate_limit_hits_total', { queue: 'payments' }), 0, 'no simulated 429');
  t.equal(valueOf(m, 'bullmq_job_retries_total', { queue: 'payments' }), 0, 'no simulated failure');
  await off.stop();

  // Control: the same stored settings with fault injection on rate-limit the queue at once.
  const on = await p.startWorker({ WORKER_QUEUES: 'payments', FAULTS_ENABLED: 'true' });
  t.match(on.logs.find((l) => l.msg === 'worker started'), { faultInjection: true });
  await new FaultStore(redis, p.prefix).update('payments', { latencyMs: 0 });
  const looping = await p.enqueue('payments', body(4));
  await waitFor(async () => valueOf(await scrape(on.metricsUrl), 'bullmq_rate_limit_hits_total', { queue: 'payments' }) >= 2, {
    what: 'the control worker rate-limited by the stored settings',
  });
  const job = await p.job('payments', looping);
  t.not(job.state, 'completed', 'with injection on the same settings hold the payment back');
  t.equal(job.attemptsMade, 0, 'and re-queue it without using attempts (why the switch matters)');
  t.comment(`stored { rateLimitRate: 1, failureRate: 1, latencyMs: 5000 }: FAULTS_ENABLED=false → 3 of 3 payments completed on attempt 1, 0 rate-limit hits; FAULTS_ENABLED=true → rate-limited in a loop`);
});
