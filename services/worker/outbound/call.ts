/**
 * The one wrapper every outbound call crosses (provider adapters: providers/guarded.ts; webhook deliveries:
 * webhook/client.ts): circuit → quota → call → record. The quota comes second because its token IS the call's
 * start: taken last, nothing (no Redis round trip, no host slot wait) separates the counted start from the request. Processors know nothing of it beyond the errors it throws:
 * - JobDeferredError('quota'): not sent yet, the quota is used up beyond OUTBOUND_POLICY.quotaWaitInWorkerMs
 *   (a shorter wait happens here, in the worker: the quota is used, not starved, and a delayed job would cost
 *   Redis round trips for a sub-second wait);
 * - JobDeferredError('circuit_open'): not sent, the circuit is open; the job comes back at the next probe time
 *   plus jitter (run-attempt.ts moves it to delayed, no attempt used; deferral.ts bounds the wait per queue);
 * - RateLimitedError scope `job` for a 429 (only this job waits), scope `queue` when the dependency answers 429 to
 *   nearly every call (the queue pauses, Worker#rateLimit).
 * Every decision is a metric (common/telemetry/outbound-metrics.ts) and a span event on the attempt's span.
 */
import { type Context, trace } from '@opentelemetry/api';
import { UnrecoverableError } from 'bullmq';
import { OUTBOUND_POLICY, type OutboundDependency } from '../../common/queue-catalog';
import type { OutboundMetrics } from '../../common/telemetry/outbound-metrics';
import type { TelemetryGuard } from '../../common/telemetry/guard';
import { JobDeferredError, RateLimitedError } from '../errors';
import type { Admission, CircuitBreakers } from './circuit';
import type { OutboundQuotas, QuotaDecision } from './quota';

const TOKEN: QuotaDecision = Object.freeze({ ok: true });

export interface OutboundCallOptions {
  /** The attempt's abort signal (its timeout, or a cancellation): a wait for quota stops with it. */
  signal?: AbortSignal;
  /** The attempt's context: decisions become events on its span. */
  traceContext?: Context;
}

/** Share of a circuit-open deferral added at random, so the waiting jobs do not all come back at the probe time. */
const JITTER_SHARE = 0.2;
const MAX_JITTER_MS = 2_000;

export type CallVerdict = 'success' | 'failure' | 'rate_limited';

/**
 * What a call's error says about the dependency: a 429 is rate_limited; a request refused for good (4xx other than
 * 408/429, UnrecoverableError) is the caller's fault — the dependency answered; anything else (5xx, 408, timeout,
 * network, abort) is a dependency failure.
 */
export function verdictOf(err: unknown): CallVerdict {
  if (err instanceof RateLimitedError) return 'rate_limited';
  if (err instanceof UnrecoverableError) return 'success';
  return 'failure';
}

export class OutboundBoundary {
  constructor(
    private readonly circuits: CircuitBreakers,
    private readonly quotas: OutboundQuotas,
    private readonly metrics: OutboundMetrics,
    private readonly safely: TelemetryGuard,
    private readonly random: () => number = Math.random,
  ) {}

  private event(ctx: Context | undefined, name: string, dependency: OutboundDependency, target: string, attributes: Record<string, string | number> = {}): void {
    if (!ctx) return;
    this.safely('outbound span event', () => trace.getSpan(ctx)?.addEvent(name, { 'outbound.dependency': dependency, 'outbound.target': target, ...attributes }));
  }

  private count(dependency: OutboundDependency, outcome: Parameters<OutboundMetrics['request']>[1]): void {
    this.safely('outbound metric', () => this.metrics.request(dependency, outcome));
  }

  async call<T>(dependency: OutboundDependency, target: string, fn: () => Promise<T>, opts: OutboundCallOptions = {}): Promise<T> {
    const ctx = opts.traceContext;

    // The closed path (circuit closed and fresh in memory, a leased token at hand, a success) awaits nothing but
    // the call itself: the bench's outbound stage measures what is left.
    const admission: Admission = this.circuits.admitCached(dependency, target) ?? (await this.circuits.admit(dependency, target));
    if (admission.kind === 'open') {
      const delayMs = this.untilProbe(admission.retryAt);
      this.count(dependency, 'short_circuited');
      this.event(ctx, 'outbound.short_circuited', dependency, target, { 'outbound.circuit_state': admission.state, 'outbound.retry_after_ms': delayMs });
      throw new JobDeferredError(delayMs, 'circuit_open', `circuit of ${dependency} (${target}) is ${admission.state}; deferred ${delayMs} ms`);
    }

    // The quota token is the call's start, so it is taken last, right before the call: a short-circuited call uses
    // none, and no Redis round trip sits between the start the quota counted and the request going out.
    let quota: QuotaDecision = TOKEN;
    try {
      if (!this.quotas.takeLeased(dependency, target)) quota = await this.quotas.take(dependency, target, OUTBOUND_POLICY.quotaWaitInWorkerMs, opts.signal);
    } catch (err) {
      await this.circuits.cancel(dependency, target, admission); // aborted while waiting: a probe not sent
      throw err;
    }
    if (!quota.ok) {
      await this.circuits.cancel(dependency, target, admission);
      const delayMs = quota.retryAfterMs + Math.round(this.random() * Math.min(quota.retryAfterMs, 1_000));
      this.count(dependency, 'throttled');
      this.event(ctx, 'outbound.throttled', dependency, target, { 'outbound.retry_after_ms': delayMs });
      throw new JobDeferredError(delayMs, 'quota', `outbound quota of ${dependency} (${target}) used up; deferred ${delayMs} ms`);
    }
    if (admission.kind === 'probe') this.event(ctx, 'outbound.probe', dependency, target);

    let result: T;
    try {
      result = await fn();
    } catch (err) {
      const verdict = verdictOf(err);
      this.count(dependency, verdict);
      // A 429 says the dependency is alive: it counts for the circuit as an answer, and for the quota as a brake.
      await this.circuits.record(dependency, target, admission, verdict !== 'failure');
      if (admission.kind === 'probe') this.event(ctx, 'outbound.probe_result', dependency, target, { 'outbound.probe_ok': verdict === 'failure' ? 0 : 1 });
      if (err instanceof RateLimitedError) throw await this.rateLimited(dependency, target, err, ctx);
      // A failed probe only confirms the known outage: its job waits for the next probe like the others, keeping
      // its attempts (else the jobs that happen to probe would use theirs up during a long outage).
      if (admission.kind === 'probe' && verdict === 'failure') throw this.probeFailed(dependency, target, err);
      throw err;
    }
    this.count(dependency, 'success');
    const recorded = this.circuits.record(dependency, target, admission, true);
    if (recorded) await recorded;
    if (admission.kind === 'probe') this.event(ctx, 'outbound.probe_result', dependency, target, { 'outbound.probe_ok': 1 });
    return result;
  }

  /** Until the next probe time, plus jitter so the waiting jobs do not all come back at once. */
  private untilProbe(retryAt: number): number {
    const waitMs = Math.max(0, retryAt - Date.now());
    return waitMs + Math.round(this.random() * Math.min(MAX_JITTER_MS, Math.max(100, waitMs * JITTER_SHARE)));
  }

  private probeFailed(dependency: OutboundDependency, target: string, err: unknown): unknown {
    const retryAt = this.circuits.nextProbeAt(dependency, target);
    if (retryAt === undefined) return err;
    const delayMs = this.untilProbe(retryAt);
    return new JobDeferredError(delayMs, 'circuit_open', `probe of ${dependency} (${target}) failed (${(err as Error)?.message ?? String(err)}); circuit re-opened, deferred ${delayMs} ms`);
  }

  private async rateLimited(
    dependency: OutboundDependency,
    target: string,
    err: RateLimitedError,
    ctx: Context | undefined,
  ): Promise<RateLimitedError> {
    const { pause, cut } = await this.quotas.rateLimited(dependency, target, err.retryAfterMs);
    // Pausing the whole queue fits a provider shared by the queue; a webhook host is one customer's: never.
    const scope = pause && dependency !== 'webhook_host' ? 'queue' : 'job';
    this.event(ctx, 'outbound.rate_limited', dependency, target, { 'outbound.retry_after_ms': err.retryAfterMs, 'outbound.rate_cut': cut ? 1 : 0, 'outbound.scope': scope });
    return new RateLimitedError(err.retryAfterMs, err.message, scope);
  }
}
