/**
 * BullMQ job options of a catalog queue: retries, backoff and retention come from its policy in
 * queue-catalog.ts. The API's queues (services/api/plugins/app/queues.ts) and the bench's plain-BullMQ
 * reference (bench/baseline.ts) both use this, so the reference measures exactly what the product sets.
 */
import type { DefaultJobOptions } from 'bullmq';
import { QUEUE_CATALOG, type QueueName, RETENTION } from './queue-catalog';
import { RETRY_BACKOFF_TYPE } from './retry-backoff';

export interface FailedRetention {
  /** Seconds a job that failed for good stays inspectable and replayable (FAILED_RETENTION_S). */
  age: number;
  /** Most such jobs kept per queue (FAILED_RETENTION_COUNT). */
  count: number;
}

export function jobOptionsFor(queue: QueueName, failedRetention: FailedRetention = RETENTION.failed): DefaultJobOptions {
  const { policy } = QUEUE_CATALOG[queue];
  return {
    attempts: policy.attempts,
    // Exponential with jitter, longer after a timeout: computed by the worker's strategy (retry-backoff.ts).
    backoff: { type: RETRY_BACKOFF_TYPE, delay: policy.backoffDelayMs, jitter: policy.backoffJitter },
    removeOnComplete: { ...RETENTION.completed },
    removeOnFail: { ...failedRetention },
    // One stack trace per failed job (the last attempt's), not one per attempt: it is what the console shows and
    // what the failures API classifies, and each extra trace is ~1 KB per dead letter (docs/console.md).
    stackTraceLimit: 1,
  };
}
