/**
 * Replay metrics (API side): bullmq_jobs_replayed_total{queue}, failed jobs an operator sent back to the queue —
 * through POST /v1/admin/queues/:queue/failures/retry or the console's Retry buttons. Labels are bounded (catalog
 * queue names); who replayed is in the audit log line, never in a label.
 */
import { boundedCounter, type MetricsRegistry } from './registry';

export interface ReplayMetrics {
  replayed(queue: string, count: number): void;
}

export function createReplayMetrics(registry: MetricsRegistry, queues: readonly string[]): ReplayMetrics {
  const replayed = boundedCounter(registry, 'bullmq_jobs_replayed_total', 'Failed jobs retried by an operator (failures API or console), keeping their id, with a fresh set of attempts.', { queue: queues });
  return {
    replayed: (queue, count) => {
      if (count > 0) replayed.inc({ queue }, count);
    },
  };
}

export const noopReplayMetrics: ReplayMetrics = { replayed: () => undefined };
