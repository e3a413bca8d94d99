/**
 * Per-job deferral: when only this job has to wait — its webhook target answered 429, or its target host already
 * has WEBHOOK_MAX_PER_HOST deliveries in flight — the job alone goes back to delayed (run-attempt.ts moves it),
 * instead of pausing the whole queue with Worker#rateLimit. A deferral consumes no attempt, so 429 deferrals are
 * bounded here: a target that keeps answering 429 fails its job as `rate_limited` after MAX_RATE_LIMIT_DEFERRALS
 * deferrals or MAX_RATE_LIMIT_DEFERRAL_WINDOW_MS after the first one, whichever comes first.
 */
import type { JobEnvelope } from '../common/job-envelope';
import { JobDeferredError, RateLimitExhaustedError } from './errors';

export const MAX_RATE_LIMIT_DEFERRALS = 10;
export const MAX_RATE_LIMIT_DEFERRAL_WINDOW_MS = 3_600_000;

/**
 * A job whose host is at its limit retries after about a second (0.5–1.5 s, jittered so the waiting jobs of one
 * host do not come back together): long enough not to churn Redis, short against the 30 s a hanging target can hold.
 */
export const HOST_BUSY_DEFER_MS = 1_000;

export function hostBusyDeferral(host: string, random: () => number = Math.random): JobDeferredError {
  const ms = Math.round(HOST_BUSY_DEFER_MS * (0.5 + random()));
  return new JobDeferredError(ms, 'host_busy', `target host ${host} already has its maximum of deliveries in flight; retry in ${ms} ms`);
}

interface DeferrableJob {
  data: JobEnvelope<unknown>;
  updateData(data: JobEnvelope<unknown>): Promise<void>;
}

/**
 * The job's target answered 429 asking for `retryAfterMs`: records one more deferral in the job (meta) and returns
 * the deferral, or, past the bound, the error that fails the job for good.
 */
export async function deferAfterRateLimit(
  job: DeferrableJob,
  retryAfterMs: number,
  now = Date.now(),
): Promise<JobDeferredError | RateLimitExhaustedError> {
  const previous = job.data.meta.rateLimitDeferrals;
  const firstAt = previous?.firstAt ?? now;
  const count = previous?.count ?? 0;
  if (count >= MAX_RATE_LIMIT_DEFERRALS || now - firstAt >= MAX_RATE_LIMIT_DEFERRAL_WINDOW_MS) {
    const minutes = Math.round((now - firstAt) / 60_000);
    return new RateLimitExhaustedError(
      `target still rate limited (429) after ${count} deferrals over ${minutes} min; not retried`,
    );
  }
  await job.updateData({ ...job.data, meta: { ...job.data.meta, rateLimitDeferrals: { count: count + 1, firstAt } } });
  return new JobDeferredError(retryAfterMs, 'rate_limited', `target answered 429; deferred ${retryAfterMs} ms (${count + 1} of ${MAX_RATE_LIMIT_DEFERRALS})`);
}
