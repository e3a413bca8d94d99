/**
 * Errors a processor throws, each mapped to one failure reason and one retry decision:
 * - JobTimeoutError: the attempt exceeded the queue's timeout → retried with backoff, reason "timeout".
 * - ProviderError: provider/target failed transiently (5xx, 408, network) → retried, reason "provider_error".
 * - RateLimitedError: provider/target answered 429 → queue rate limiter engaged, job retried without
 *   consuming an attempt; not a failure.
 * - UnrecoverableError (BullMQ): the request itself is wrong (4xx, refused target) → failed at once, "rejected".
 */
import { UnrecoverableError } from 'bullmq';
import { STALLED_FAILURE_MESSAGE, failureReasonOf } from '../common/failure-reason';

export class JobTimeoutError extends Error {
  override name = 'JobTimeoutError';
  constructor(readonly timeoutMs: number) {
    super(`attempt timed out after ${timeoutMs} ms`);
  }
}

export class ProviderError extends Error {
  override name = 'ProviderError';
  constructor(message: string, readonly status?: number) {
    super(message);
  }
}

export class RateLimitedError extends Error {
  override name = 'RateLimitedError';
  constructor(readonly retryAfterMs: number, message = `rate limited, retry after ${retryAfterMs} ms`) {
    super(message);
  }
}

export { UnrecoverableError };

export { STALLED_FAILURE_MESSAGE };

/**
 * Classified by error name (services/common/failure-reason.ts), the same function the failures API applies to
 * the stored failed job, so the metric's reason and the console's group always agree.
 */
export const failureReason = failureReasonOf;
