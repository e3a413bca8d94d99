/**
 * Runs one attempt of a job around its processor: consumer span (child of the producer span carried in the
 * job), the queue's timeout (abort signal + race, so a stuck call cannot hold the slot), and the job metrics.
 * Every outcome is classified once, here: completed · retried · failed{reason} · rate limited · deferred.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { DelayedError, UnrecoverableError, Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { QueueDefinition } from '../common/queue-catalog';
import type { JobMetrics } from '../common/telemetry/job-metrics';
import { MESSAGING, contextWith, extractTraceContext, recordError, sampledTraceId, traceFields, tracer } from '../common/telemetry/trace-context';
import { JobDeferredError, JobTimeoutError, RateLimitedError, failureReason } from './errors';
import type { Processor, ProcessorDeps, QueueJob } from './processors/types';

export interface AttemptRunnerDeps {
  metrics: JobMetrics;
  log: Logger;
  /** Engages the worker's rate limiter for the whole queue (BullMQ Worker#rateLimit). */
  rateLimit(ms: number): Promise<void>;
  processorDeps: Omit<ProcessorDeps, 'signal' | 'log' | 'traceContext'>;
}

export function createAttemptRunner(
  def: QueueDefinition,
  processor: Processor,
  deps: AttemptRunnerDeps,
  timeoutMs = def.policy.timeoutMs,
) {
  const queue = def.name;
  const defaultAttempts = def.policy.attempts;

  // `token` is the job's lock token, passed by BullMQ as the processor's 2nd argument (needed to move it to delayed).
  return async function runAttempt(job: QueueJob, token?: string): Promise<unknown> {
    const startedAt = Date.now();
    const attempt = job.attemptsMade + 1;
    const parent = extractTraceContext(job.data?.meta?.trace);
    const span = tracer.startSpan(
      `${queue} process`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          [MESSAGING.system]: 'bullmq',
          [MESSAGING.destination]: queue,
          [MESSAGING.operation]: 'process',
          [MESSAGING.messageId]: String(job.id),
          [MESSAGING.attempt]: attempt,
        },
      },
      parent,
    );
    const traceId = sampledTraceId(span);
    // Wait time once per job: attemptsStarted only ever grows (retries, stalls, rate-limit re-runs included).
    if (job.attemptsStarted <= 1) {
      deps.metrics.observeWait(queue, (startedAt - (job.timestamp + (job.opts.delay ?? 0))) / 1000, traceId);
    }

    const abort = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new JobTimeoutError(timeoutMs);
        abort.abort(err);
        reject(err);
      }, timeoutMs);
    });
    // Built on first use: most attempts never log, and a pino child (with redaction) per attempt costs ~2 % CPU.
    let attemptLog: Logger | undefined;
    const log = () => (attemptLog ??= deps.log.child({ jobId: job.id, attempt, ...traceFields(span) }));

    try {
      const result = await Promise.race([
        processor(job, {
          ...deps.processorDeps,
          signal: abort.signal,
          traceContext: contextWith(span),
          get log() {
            return log();
          },
        }),
        timedOut,
      ]);
      deps.metrics.observeProcessing(queue, 'completed', (Date.now() - startedAt) / 1000, traceId);
      deps.metrics.completed(queue);
      span.setStatus({ code: SpanStatusCode.OK });
      return result;
    } catch (err) {
      if (err instanceof JobDeferredError) {
        // Only this job waits (BullMQ's documented "delay a job while processing" pattern): no attempt consumed,
        // the rest of the queue keeps running. Target 429s count as rate-limit hits (see deferral.ts).
        if (err.kind === 'rate_limited') deps.metrics.rateLimited(queue);
        span.addEvent('deferred', { 'bullmq.deferral': err.kind, delay_ms: err.delayMs });
        span.setAttribute('bullmq.deferred', err.kind);
        await job.moveToDelayed(Date.now() + err.delayMs, token);
        throw new DelayedError();
      }
      if (err instanceof RateLimitedError) {
        deps.metrics.rateLimited(queue);
        span.addEvent('rate_limited', { retry_after_ms: err.retryAfterMs });
        span.setAttribute('bullmq.rate_limited', true);
        await deps.rateLimit(err.retryAfterMs);
        throw Worker.RateLimitError();
      }
      abort.abort(err);
      deps.metrics.observeProcessing(queue, 'failed', (Date.now() - startedAt) / 1000, traceId);
      const maxAttempts = job.opts.attempts ?? defaultAttempts;
      const willRetry = !(err instanceof UnrecoverableError) && attempt < maxAttempts;
      const reason = failureReason(err);
      if (willRetry) deps.metrics.retried(queue);
      else deps.metrics.failed(queue, reason);
      recordError(span, err);
      span.setAttribute('bullmq.failure_reason', reason);
      span.setAttribute('bullmq.will_retry', willRetry);
      log().warn({ err, reason, willRetry }, 'job attempt failed');
      throw err;
    } finally {
      clearTimeout(timer);
      span.end();
    }
  };
}
