/**
 * Errors a processor throws, each mapped to one failure reason and one retry decision:
 * - JobTimeoutError: the attempt exceeded the queue's timeout → retried with backoff, reason "timeout".
 * - ProviderError: provider/target failed transiently (5xx, 408, network) → retried, reason "provider_error".
 * - RateLimitedError: a provider shared by the whole queue answered 429 → queue rate limiter engaged, job retried
 *   without consuming an attempt; not a failure.
 * - JobDeferredError: only this job must wait (its webhook target answered 429, or its target host is at its
 *   concurrency limit) → the job alone moves to delayed, no attempt consumed; not a failure.
 * - RateLimitExhaustedError: a job deferred by its target's 429s too often or too long, or kept waiting by its own
 *   outbound quota past its queue's bound → failed at once, "rate_limited".
 * - CircuitOpenError: a job whose dependency's circuit stayed open past its queue's wait bound (catalog
 *   `outbound.maxWaitMs`) → failed at once, "circuit_open".
 * - JobCancelledError: the attempt was cancelled through BullMQ's processor signal → failed at once, not retried.
 * - UnrecoverableError (BullMQ): the request itself is wrong (4xx, refused target, malformed job, a payment that
 *   conflicts with another) → failed at once, "rejected".
 * Reasons are read by name with failureReasonOf (services/common/failure-reason.ts), the function the failures
 * API applies to the stored failed job, so the metric's reason and the console's group always agree.
 */
import { UnrecoverableError } from 'bullmq';
import { STALLED_FAILURE_MESSAGE } from '../common/failure-reason';

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

/**
 * scope `queue`: the dependency refuses (nearly) everything, pause the whole queue (Worker#rateLimit); `job`: only
 * this job waits out the Retry-After (the outbound boundary, services/worker/outbound/call.ts, decides which).
 */
export class RateLimitedError extends Error {
  override name = 'RateLimitedError';
  constructor(
    readonly retryAfterMs: number,
    message = `rate limited, retry after ${retryAfterMs} ms`,
    readonly scope: 'queue' | 'job' = 'queue',
  ) {
    super(message);
  }
}

/**
 * Why a job alone was put back to delayed: its target's 429, its target host already at WEBHOOK_MAX_PER_HOST, its
 * dependency's circuit open, or its dependency's quota used up for now (services/worker/outbound/call.ts).
 */
export type DeferralCause = 'rate_limited' | 'host_busy' | 'circuit_open' | 'quota';

export class JobDeferredError extends Error {
  override name = 'JobDeferredError';
  constructor(readonly delayMs: number, readonly kind: DeferralCause, message = `deferred ${delayMs} ms (${kind})`) {
    super(message);
  }
}

/**
 * The attempt was cancelled through BullMQ (Worker#cancelJob / cancelAllJobs aborted the processor's signal):
 * unrecoverable, as BullMQ's cancellation guide asks, so a cancelled job is not run again by a retry.
 */
export class JobCancelledError extends UnrecoverableError {
  override name = 'JobCancelledError';
  constructor(reason: unknown) {
    const why = reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : undefined;
    super(why ? `attempt cancelled: ${why}` : 'attempt cancelled');
  }
}

/** Unrecoverable: retrying cannot help once the bound on a target's 429 deferrals is reached. */
export class RateLimitExhaustedError extends UnrecoverableError {
  override name = 'RateLimitExhaustedError';
}

/** Unrecoverable: the dependency's circuit stayed open longer than the job's queue lets it wait. */
export class CircuitOpenError extends UnrecoverableError {
  override name = 'CircuitOpenError';
}

export { UnrecoverableError };

export { STALLED_FAILURE_MESSAGE };
