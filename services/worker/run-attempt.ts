/**
 * Runs one attempt of a job around its processor: the `process <queue>` consumer span, the queue's timeouts
 * (soft: counted, logged and marked on the span, the attempt runs on; hard: abort signal + race, so a stuck call
 * cannot hold the slot), BullMQ's cancellation signal, and the job metrics. The queue's effective policy
 * (common/config/queue-policy.ts) comes whole: timeouts and attempts are read from it, nowhere else.
 *
 * The attempt first decides its outcome — completed · retried · failed{reason} · rate limited · deferred — and
 * only then records it (metrics, span, log), every recording call guarded: telemetry cannot turn a completed job
 * into a retry or hide a failure (test/telemetry/outcome-isolation.test.ts).
 */
import { type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, context, trace, INVALID_SPAN_CONTEXT } from '@opentelemetry/api';
import { DelayedError, UnrecoverableError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { EffectiveQueuePolicy, TraceMode } from '../common/config';
import { failureReasonOf } from '../common/failure-reason';
import { type PayloadOf, QUEUE_CATALOG, type QueueName } from '../common/queue-catalog';
import { type FailureReason, type JobMetrics, guardJobMetrics } from '../common/telemetry/job-metrics';
import { createTelemetryGuard } from '../common/telemetry/guard';
import { BULLMQ_ATTRIBUTES as A } from '../common/telemetry/semconv';
import {
  contextWith,
  extractTraceContext,
  messagingAttributes,
  messagingSpanName,
  producerLinks,
  recordError,
  sampledTraceId,
  traceFields,
  tracer,
} from '../common/telemetry/trace-context';
import { type DeferralCause, JobCancelledError, JobDeferredError, JobTimeoutError, RateLimitedError } from './errors';
import { settleDeferral } from './deferral';
import type { Processor, ProcessorDeps, QueueJob } from './processors/types';

export interface AttemptRunnerDeps {
  metrics: JobMetrics;
  log: Logger;
  /** Engages the worker's rate limiter for the whole queue (BullMQ Worker#rateLimit). */
  rateLimit(ms: number): Promise<void>;
  processorDeps: Omit<ProcessorDeps, 'signal' | 'log' | 'traceContext'>;
  /** OTEL_BULLMQ_TRACE_MODE: attempt span as the producer span's child (default) or in its own trace, linked. */
  traceMode?: TraceMode;
}

type AttemptOutcome =
  | { kind: 'completed' }
  /** Provider/target 429: the queue's limiter is engaged and the job re-runs without using an attempt. */
  | { kind: 'rate_limited'; retryAfterMs: number }
  /**
   * Only this job waits: a webhook target's 429 or a busy target host (JobDeferredError → moved to delayed here),
   * or the processor moved it itself (DelayedError). Not a failure, no attempt used.
   */
  | { kind: 'deferred'; cause?: DeferralCause; delayMs?: number }
  | { kind: 'failed'; err: unknown; reason: FailureReason; willRetry: boolean };

/** When the job became eligible to run: enqueue time plus its delay. Wait and end-to-end times start here. */
export function eligibleAt(job: Pick<QueueJob, 'timestamp' | 'opts'>): number {
  return job.timestamp + (job.opts.delay ?? 0);
}

function classifyFailure(err: unknown, attempt: number, maxAttempts: number): AttemptOutcome {
  if (err instanceof RateLimitedError) return { kind: 'rate_limited', retryAfterMs: err.retryAfterMs };
  if (err instanceof JobDeferredError) return { kind: 'deferred', cause: err.kind, delayMs: err.delayMs };
  if (err instanceof DelayedError) return { kind: 'deferred' };
  const willRetry = !(err instanceof UnrecoverableError) && attempt < maxAttempts;
  return { kind: 'failed', err, reason: failureReasonOf(err), willRetry };
}

export function createAttemptRunner<Q extends QueueName>(policy: EffectiveQueuePolicy, processor: Processor<Q>, deps: AttemptRunnerDeps) {
  const { queue, timeoutMs, softTimeoutMs, attempts: defaultAttempts } = policy;
  const traceMode = deps.traceMode ?? 'child';
  const safely = createTelemetryGuard((what, err) =>
    deps.log.error({ err, what }, 'telemetry call failed; ignored (the job outcome is unaffected)'),
  );
  const metrics = guardJobMetrics(deps.metrics, safely);

  /** The attempt's CONSUMER span, linked to the producer span; its child unless the trace mode is `link`. */
  function startSpan(job: QueueJob, attempt: number): { span: Span; ctx: Context } {
    const started = safely('start span', () => {
      const producer = extractTraceContext(job.data?.meta?.trace);
      const parent = traceMode === 'link' ? ROOT_CONTEXT : producer;
      const span = tracer.startSpan(
        messagingSpanName('process', queue),
        {
          kind: SpanKind.CONSUMER,
          attributes: { ...messagingAttributes('process', queue, String(job.id)), [A.attempt]: attempt },
          links: producerLinks(producer),
        },
        parent,
      );
      return { span, ctx: contextWith(span, parent) };
    });
    if (started) return started;
    const span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT); // non-recording: every call is a no-op
    return { span, ctx: contextWith(span) };
  }

  function record(job: QueueJob, span: Span, outcome: AttemptOutcome, startedAt: number, traceId: string | undefined, log: () => Logger): void {
    const finishedAt = Date.now();
    const seconds = (finishedAt - startedAt) / 1000;
    const e2eSeconds = (finishedAt - eligibleAt(job)) / 1000;
    switch (outcome.kind) {
      case 'completed':
        metrics.observeProcessing(queue, 'completed', seconds, traceId);
        metrics.completed(queue);
        metrics.observeE2e(queue, 'completed', e2eSeconds, traceId);
        safely('span status', () => span.setStatus({ code: SpanStatusCode.OK }));
        break;
      case 'rate_limited':
        metrics.rateLimited(queue, 'dependency');
        safely('span rate limit', () => {
          span.addEvent('rate_limited', { retry_after_ms: outcome.retryAfterMs });
          span.setAttribute(A.rateLimited, true);
        });
        break;
      case 'deferred':
        // A target's 429 counts as a rate-limit hit like a provider's does (deferral.ts); so does the own quota.
        if (outcome.cause === 'rate_limited') metrics.rateLimited(queue, 'dependency');
        if (outcome.cause === 'quota') metrics.rateLimited(queue, 'quota');
        safely('span deferred', () => {
          span.addEvent('deferred', { [A.deferred]: outcome.cause ?? 'processor', delay_ms: outcome.delayMs ?? 0 });
          if (outcome.cause) span.setAttribute(A.deferred, outcome.cause);
        });
        break;
      case 'failed': {
        const { err, reason, willRetry } = outcome;
        metrics.observeProcessing(queue, 'failed', seconds, traceId);
        if (willRetry) {
          metrics.retried(queue);
        } else {
          metrics.failed(queue, reason);
          metrics.observeE2e(queue, 'failed', e2eSeconds, traceId);
        }
        safely('span error', () => {
          recordError(span, err);
          span.setAttribute(A.failureReason, reason);
          span.setAttribute(A.willRetry, willRetry);
        });
        safely('failure log', () => log().warn({ err, reason, willRetry }, 'job attempt failed'));
        break;
      }
    }
  }

  /** Still running at the soft timeout: counted, in the job's own log (console) and on the span; it runs on. */
  function softTimedOut(job: QueueJob, span: Span, log: () => Logger): void {
    metrics.softTimeout(queue);
    safely('span soft timeout', () => span.addEvent('soft_timeout', { [A.softTimeoutMs]: softTimeoutMs, [A.timeoutMs]: timeoutMs }));
    safely('soft timeout log', () => log().warn({ softTimeoutMs, timeoutMs }, 'attempt still running at its soft timeout'));
    safely('soft timeout job log', () => {
      job.log(`soft timeout: attempt ${job.attemptsMade + 1} still running after ${softTimeoutMs} ms (hard timeout ${timeoutMs} ms)`)
        .catch((err: unknown) => log().warn({ err }, 'soft timeout job log line not written'));
    });
  }

  /**
   * `token` is the job's lock token (needed to move it to delayed); `cancel` is BullMQ's processor signal, aborted
   * by Worker#cancelJob / cancelAllJobs. BullMQ only passes it to a processor declaring three parameters.
   */
  return async function runAttempt(job: QueueJob<PayloadOf<Q>>, token?: string, cancel?: AbortSignal): Promise<unknown> {
    const startedAt = Date.now();
    const attempt = job.attemptsMade + 1;
    const { span, ctx } = startSpan(job, attempt);
    const traceId = safely('trace id', () => sampledTraceId(span));
    // Wait time once per job: attemptsStarted only ever grows (retries, stalls, rate-limit re-runs included).
    if (job.attemptsStarted <= 1) metrics.observeWait(queue, (startedAt - eligibleAt(job)) / 1000, traceId);

    // Built on first use: most attempts never log, and a pino child (with redaction) per attempt is a measurable
    // share of the worker's CPU (docs/scaling.md, "Settings chosen by measurement").
    let attemptLog: Logger | undefined;
    const log = () =>
      (attemptLog ??= deps.log.child({ jobId: job.id, attempt, ...safely('trace fields', () => traceFields(span)) }));

    // The processor's one signal: aborted by the hard timeout and by a BullMQ cancellation alike, so providers and
    // the webhook client stop their outbound call for either.
    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    let onCancel: (() => void) | undefined;
    const stopped = new Promise<never>((_, reject) => {
      const stop = (err: Error) => {
        abort.abort(err);
        reject(err);
      };
      const hard = () => stop(new JobTimeoutError(timeoutMs));
      // One timer at a time: the soft one arms the hard one for the rest of the timeout.
      timer = softTimeoutMs > 0 && softTimeoutMs < timeoutMs
        ? setTimeout(() => {
            timer = setTimeout(hard, timeoutMs - softTimeoutMs);
            softTimedOut(job, span, log);
          }, softTimeoutMs)
        : setTimeout(hard, timeoutMs);
      if (cancel) {
        onCancel = () => stop(new JobCancelledError(cancel.reason));
        if (cancel.aborted) onCancel();
        else cancel.addEventListener('abort', onCancel, { once: true });
      }
    });

    let outcome: AttemptOutcome = { kind: 'completed' };
    try {
      // Inside the attempt's context: with a context manager that stores it (auto-instrumentation mode,
      // common/telemetry/tracing.ts), library spans and spans a processor starts nest under this attempt.
      return await context.with(ctx, () =>
        Promise.race([
          processor(job, {
            ...deps.processorDeps,
            signal: abort.signal,
            traceContext: ctx,
            get log() {
              return log();
            },
          }),
          stopped,
        ]),
      );
    } catch (caught) {
      // A job-scoped 429 or a wait for the dependency becomes a bounded deferral (deferral.ts).
      let err: unknown;
      try {
        err = await settleDeferral(job, caught, QUEUE_CATALOG[queue].outbound.maxWaitMs);
      } catch (settleErr) {
        err = settleErr;
      }
      outcome = classifyFailure(err, attempt, job.opts.attempts ?? defaultAttempts);
      if (err instanceof JobDeferredError) {
        // Only this job waits (BullMQ's documented "delay a job while processing" pattern): no attempt consumed,
        // the rest of the queue keeps running (deferral.ts).
        await job.moveToDelayed(Date.now() + err.delayMs, token);
        throw new DelayedError();
      }
      if (outcome.kind === 'rate_limited') {
        await deps.rateLimit(outcome.retryAfterMs);
        throw Worker.RateLimitError();
      }
      abort.abort(err);
      throw err;
    } finally {
      clearTimeout(timer);
      if (onCancel) cancel?.removeEventListener('abort', onCancel);
      safely('record outcome', () => record(job, span, outcome, startedAt, traceId, log));
      safely('span end', () => span.end());
    }
  };
}
