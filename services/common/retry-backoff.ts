/**
 * Timeout-aware retries. Jobs carry `backoff: { type: RETRY_BACKOFF_TYPE, delay, jitter }` (job-options.ts); the
 * worker computes each retry's delay with retryBackoffStrategy, given to BullMQ as the Worker's
 * `settings.backoffStrategy` (BullMQ calls it, with the attempt's error, for every backoff type it does not
 * know itself). Errors back off exponentially with jitter, exactly like BullMQ's built-in `exponential`; a
 * timeout waits `timeoutBackoffFactor` times as long: a dependency that let an attempt hang is most likely
 * overloaded, and a quick retry only adds to its queue.
 */
import type { BackoffStrategy, MinimalJob } from 'bullmq';
import { failureReasonOf } from './failure-reason';

/** The backoff type name jobs carry; unknown to BullMQ, so it asks the Worker's strategy. */
export const RETRY_BACKOFF_TYPE = 'timeout-aware';

export interface RetryBackoffPolicy {
  /** Multiplier on the delay of a retry that follows a timeout (catalog policy, queue-catalog.ts). */
  timeoutBackoffFactor: number;
}

/**
 * The delay before the retry after `attemptsMade` attempts: base × 2^(attemptsMade−1), × the timeout factor when
 * the last attempt timed out, then the job's jitter share randomised downwards (BullMQ's exponential formula).
 */
export function retryDelayMs(
  attemptsMade: number,
  base: { delay: number; jitter: number },
  timedOut: boolean,
  factor: number,
  random: () => number = Math.random,
): number {
  const max = Math.round(2 ** Math.max(0, attemptsMade - 1) * base.delay * (timedOut ? factor : 1));
  return base.jitter > 0 ? Math.floor(random() * max * base.jitter + max * (1 - base.jitter)) : max;
}

export function retryBackoffStrategy(policy: RetryBackoffPolicy): BackoffStrategy {
  return (attemptsMade: number, _type?: string, err?: Error, job?: MinimalJob) => {
    const backoff = job?.opts.backoff;
    const base = typeof backoff === 'object' ? { delay: backoff.delay ?? 0, jitter: backoff.jitter ?? 0 } : { delay: backoff ?? 0, jitter: 0 };
    return retryDelayMs(attemptsMade, base, failureReasonOf(err) === 'timeout', policy.timeoutBackoffFactor);
  };
}
