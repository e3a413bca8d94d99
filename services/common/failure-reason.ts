/**
 * The one classification of a job failure into the bounded `reason` of the metrics contract. The worker applies
 * it to the error an attempt threw (bullmq_jobs_failed_total{reason}); the failures API applies it to what BullMQ
 * kept of that error on the failed job (the error name, first line of the last stack trace, and failedReason),
 * so a dashboard's "timeout" and the console's "timeout" group are the same thing.
 *
 * Classification is by error *name* (each class in services/worker/errors.ts sets its own) and, for BullMQ's
 * stalled failure, by message: both survive the trip through Redis, where the class itself does not.
 */
export const FAILURE_REASONS = ['timeout', 'provider_error', 'rejected', 'stalled', 'rate_limited', 'circuit_open', 'other'] as const;
export type FailureReason = (typeof FAILURE_REASONS)[number];

/** BullMQ's deferred failure for a job that stalled more than maxStalledCount times (set in its Lua scripts). */
export const STALLED_FAILURE_MESSAGE = 'job stalled more than allowable limit';

const BY_NAME: Record<string, FailureReason> = {
  JobTimeoutError: 'timeout',
  ProviderError: 'provider_error',
  RateLimitedError: 'rate_limited',
  // A webhook job deferred by its target's 429s too often or too long (services/worker/deferral.ts).
  RateLimitExhaustedError: 'rate_limited',
  UnrecoverableError: 'rejected',
  // A job whose dependency's circuit stayed open past its queue's wait bound (services/worker/deferral.ts).
  CircuitOpenError: 'circuit_open',
};

export function classifyFailure(name: string | undefined, message: string | undefined): FailureReason {
  if (message === STALLED_FAILURE_MESSAGE) return 'stalled';
  return (name !== undefined && Object.prototype.hasOwnProperty.call(BY_NAME, name) ? BY_NAME[name] : undefined) ?? 'other';
}

/** Reason of a live error (the worker's view). */
export function failureReasonOf(err: unknown): FailureReason {
  return err instanceof Error ? classifyFailure(err.name, err.message) : 'other';
}

/** What BullMQ stores of a failed job: `failedReason` (the message) and `stacktrace` (one `err.stack` per failure). */
export interface StoredFailure {
  failedReason?: string | null;
  stacktrace?: readonly string[] | null;
}

/** The error name a stored stack starts with ("JobTimeoutError: attempt timed out…" → "JobTimeoutError"). */
export function storedErrorName(job: StoredFailure): string | undefined {
  const last = job.stacktrace && job.stacktrace.length > 0 ? job.stacktrace[job.stacktrace.length - 1] : undefined;
  const match = last ? /^([A-Za-z_$][\w$]*)(?::|\s*$)/.exec(last.split('\n', 1)[0]!) : null;
  return match?.[1];
}

/** Reason of a failed job as stored in Redis (the failures API's view). */
export function storedFailureReason(job: StoredFailure): FailureReason {
  return classifyFailure(storedErrorName(job), job.failedReason ?? undefined);
}
