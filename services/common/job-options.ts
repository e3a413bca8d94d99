/**
 * BullMQ job options of a catalog queue: retries, backoff and retention come from its policy in
 * queue-catalog.ts. The API's queues (services/api/plugins/app/queues.ts) and the bench's plain-BullMQ
 * reference (bench/baseline.ts) both use this, so the reference measures exactly what the product sets.
 */
import type { DefaultJobOptions } from 'bullmq';
import { QUEUE_CATALOG, QueueName, RETENTION } from './queue-catalog';

export function jobOptionsFor(queue: QueueName): DefaultJobOptions {
  const { policy } = QUEUE_CATALOG[queue];
  return {
    attempts: policy.attempts,
    backoff: { type: 'exponential', delay: policy.backoffDelayMs, jitter: policy.backoffJitter },
    removeOnComplete: { ...RETENTION.completed },
    removeOnFail: { ...RETENTION.failed },
  };
}
