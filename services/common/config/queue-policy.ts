/**
 * A queue's effective policy: its catalog policy (services/common/queue-catalog.ts) with the worker's environment
 * overrides applied, assembled once at boot and handed whole to the queue's Worker options, its attempt runner
 * (timeouts) and its retry backoff. Nothing downstream re-reads the catalog or the environment for these values.
 */
import { QUEUE_CATALOG, type QueueName, type QueuePolicy } from '../queue-catalog';

/** What the environment may override (WORKER_CONCURRENCY_<QUEUE>, WORKER_TIMEOUT_MS_<QUEUE>, WORKER_* stall settings). */
export type QueuePolicyOverrides = Partial<Pick<QueuePolicy, 'concurrency' | 'timeoutMs' | 'lockDurationMs' | 'stalledIntervalMs' | 'maxStalledCount'>>;

export interface EffectiveQueuePolicy extends Readonly<QueuePolicy> {
  readonly queue: QueueName;
  /** softTimeoutRatio × timeoutMs, rounded: when a still-running attempt counts as a soft timeout. */
  readonly softTimeoutMs: number;
}

export function effectiveQueuePolicy(queue: QueueName, overrides: QueuePolicyOverrides = {}): EffectiveQueuePolicy {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as QueuePolicyOverrides;
  const policy: QueuePolicy = { ...QUEUE_CATALOG[queue].policy, ...defined };
  return Object.freeze({ ...policy, queue, softTimeoutMs: Math.round(policy.timeoutMs * policy.softTimeoutRatio) });
}
