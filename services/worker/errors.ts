/**
 * Errors a processor throws, each mapped to one failure reason and one retry decision:
 * - JobTimeoutError: the attempt exceeded the queue's timeout → retried with backoff, reason "timeout".
 * - ProviderError: provider/target failed transiently (5xx, 408, network) → retried, reason "provider_error".
 * - RateLimitedError: provider/target answered 429 → queue rate limiter engaged, job retried without
 *   consuming an attempt; not a failure.
 * - UnrecoverableError (BullMQ): the request itself is wrong (4xx, refused target) → failed at once, "rejected".
 */
import { UnrecoverableError } from 'bullmq';
import type { FailureReason } from '../common/telemetry/job-metrics';

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

/** BullMQ's deferred failure for a job that stalled more than maxStalledCount times. */
export const STALLED_FAILURE_MESSAGE = 'job stalled more than allowable limit';

export function failureReason(err: unknown): FailureReason {
  if (err instanceof JobTimeoutError) return 'timeout';
  if (err instanceof ProviderError) return 'provider_error';
  if (err instanceof Error && err.message === STALLED_FAILURE_MESSAGE) return 'stalled';
  if (err instanceof UnrecoverableError) return 'rejected';
  return 'other';
}
