/**
 * bullmq_worker_concurrency: a real worker process exports its Worker's concurrency for each queue it consumes
 * (env override or catalog default) and nothing for the queues it does not — the slots BullMQWorkersSaturated
 * sums over replicas.
 */
import t from 'tap';
import { baseEnv, startWorker } from '../helpers/services';
import { deletePrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { scrape } from '../helpers/http';
import { QUEUE_CATALOG } from '../../services/common/queue-catalog';

t.test('each worker exports the concurrency of the queues it consumes', async (t) => {
  const prefix = uniquePrefix('capacity');
  const env = baseEnv(SHARED_REDIS_URL, prefix);
  const worker = await startWorker({ ...env, WORKER_QUEUES: 'payments,notifications', WORKER_CONCURRENCY_PAYMENTS: '7' });
  t.teardown(async () => {
    await worker.stop();
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });
  const series = (await scrape(worker.metricsUrl)).filter((s) => s.name === 'bullmq_worker_concurrency');
  const byQueue = Object.fromEntries(series.map((s) => [s.labels.queue, s.value]));
  t.same(byQueue, { payments: 7, notifications: QUEUE_CATALOG.notifications.policy.concurrency }, 'the env override, the catalog default, no series for webhooks');
});
