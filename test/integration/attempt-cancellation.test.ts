/**
 * BullMQ's processor signal reaches the outbound call: Worker#cancelJob on an attempt that waits for a webhook
 * target closes the request (the target sees the connection go before it answers), and the job fails at once as
 * cancelled — not retried, although the webhooks queue allows 5 attempts. The Worker is the product's own wiring
 * (queue-worker.ts) in this process, since cancelJob is a method of the Worker that runs the job.
 */
import t from 'tap';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { parseConfig } from '../../services/common/config';
import { createLogger } from '../../services/common/logger';
import { jobOptionsFor } from '../../services/common/job-options';
import { queueKeyPrefix } from '../../services/common/queue-keys';
import { noopJobMetrics } from '../../services/common/telemetry/job-metrics';
import { noopWebhookMetrics } from '../../services/common/telemetry/webhook-metrics';
import { createQueueWorker } from '../../services/worker/queue-worker';
import { WebhookClient } from '../../services/worker/webhook/client';
import type { ProcessorDeps } from '../../services/worker/processors/types';
import { deletePrefix, redisEnv, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { SIGNING_SECRET } from '../helpers/services';
import { startHangingTarget } from '../helpers/receiver';
import { waitFor } from '../helpers/wait';

t.test('Worker#cancelJob closes the attempt’s webhook request and fails the job without a retry', async (t) => {
  const target = await startHangingTarget();
  t.teardown(() => target.close());
  const { seen, url } = target;

  const prefix = uniquePrefix('cancel');
  const config = parseConfig({ ...redisEnv(SHARED_REDIS_URL), QUEUE_PREFIX: prefix, WEBHOOK_SIGNING_SECRET: SIGNING_SECRET, WEBHOOK_ALLOW_PRIVATE: 'true' });
  const connection = new Redis(SHARED_REDIS_URL, { maxRetriesPerRequest: null });
  const webhookClient = new WebhookClient({ signingSecret: SIGNING_SECRET, allowPrivate: true, maxRetryAfterMs: 60_000, maxPerHost: 2 });
  const worker = createQueueWorker('webhooks', {
    connection,
    config,
    metrics: noopJobMetrics,
    log: createLogger({ name: 'worker', level: 'silent' }),
    processorDeps: { webhookClient, webhookMetrics: noopWebhookMetrics } as unknown as Omit<ProcessorDeps, 'signal' | 'log' | 'traceContext'>,
  });
  const queue = new Queue('webhooks', { connection, prefix: queueKeyPrefix(config, 'webhooks') });
  t.teardown(async () => {
    await worker.close(true);
    await queue.close();
    await webhookClient.close();
    await deletePrefix(SHARED_REDIS_URL, prefix);
    connection.disconnect();
  });
  void worker.run();

  const job = await queue.add('webhooks', { payload: { url, event: 'order.created', payload: { id: 1 } }, meta: {} }, jobOptionsFor('webhooks'));
  await waitFor(() => seen.length === 1, { what: 'the delivery reached the target' });
  t.equal(worker.cancelJob(job.id!, 'operator cancelled'), true, 'the running job was cancelled');

  const closed = await waitFor(() => (seen[0]?.closedAt ? seen[0] : undefined), { what: 'the request closed', timeoutMs: 10_000 });
  t.equal(closed.answered, false, 'closed by the worker before the target answered');
  const failed = await waitFor(
    async () => ((await queue.getJobState(job.id!)) === 'failed' ? queue.getJob(job.id!) : undefined),
    { what: 'the cancelled job failed', timeoutMs: 10_000 },
  );
  t.equal(failed?.attemptsMade, 1, 'one attempt: a cancelled job is not retried');
  t.match(failed?.failedReason, /attempt cancelled: operator cancelled/);
  t.equal(seen.length, 1, 'no second delivery');
});
