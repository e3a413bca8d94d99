/**
 * Per-job deferral: when only this job has to wait — its webhook target answered 429, or its target host already
 * has WEBHOOK_MAX_PER_HOST deliveries in flight — the job alone goes back to delayed (run-attempt.ts moves it),
 * instead of pausing the whole queue with Worker#rateLimit. A deferral consumes no attempt, so 429 deferrals are
 * bounded here: a target that keeps answering 429 fails its job as `rate_limited` after MAX_RATE_LIMIT_DEFERRALS
 * deferrals or MAX_RATE_LIMIT_DEFERRAL_WINDOW_MS after the first one, whichever comes first. Waits for a dependency
 * (open circuit, quota) are bounded per queue by the catalog (boundOutboundWait).
 */
import type { JobEnvelope } from '../common/job-envelope';
import { CircuitOpenError, JobDeferredError, RateLimitExhaustedError, RateLimitedError } from './errors';

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

/**
 * A job waiting for its dependency (circuit open, or its quota used up: services/worker/outbound/call.ts) keeps
 * its attempts, but not forever: the first wait is stamped in the job (meta.outboundWaitSince), and past the
 * queue's bound (catalog `outbound.maxWaitMs`) the job fails — `circuit_open` for a circuit, `rate_limited` for a
 * quota — instead of waiting again.
 */
export async function boundOutboundWait(
  job: DeferrableJob,
  deferral: JobDeferredError,
  maxWaitMs: number,
  now = Date.now(),
): Promise<JobDeferredError | CircuitOpenError | RateLimitExhaustedError> {
  const since = job.data.meta.outboundWaitSince;
  if (since === undefined) {
    await job.updateData({ ...job.data, meta: { ...job.data.meta, outboundWaitSince: now } });
    return deferral;
  }
  if (now - since + deferral.delayMs <= maxWaitMs) return deferral;
  const minutes = Math.round((now - since) / 60_000);
  return deferral.kind === 'circuit_open'
    ? new CircuitOpenError(`dependency circuit still open after ${minutes} min of waiting (bound ${Math.round(maxWaitMs / 60_000)} min); not retried`)
    : new RateLimitExhaustedError(`outbound quota still used up after ${minutes} min of waiting; not retried`);
}

/**
 * What an attempt's error means for its job, before it is classified (run-attempt.ts): a 429 that only this job
 * must wait out becomes its bounded deferral; a wait for the dependency is bounded by the queue's catalog entry.
 */
export async function settleDeferral(job: DeferrableJob, err: unknown, maxOutboundWaitMs: number): Promise<unknown> {
  if (err instanceof RateLimitedError && err.scope === 'job') return deferAfterRateLimit(job, err.retryAfterMs);
  if (err instanceof JobDeferredError && (err.kind === 'circuit_open' || err.kind === 'quota')) {
    return boundOutboundWait(job, err, maxOutboundWaitMs);
  }
  return err;
}
