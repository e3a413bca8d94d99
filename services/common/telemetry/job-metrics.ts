/**
 * Job metrics (worker side), named in docs/contracts.md. Base units (seconds), bounded labels (queue names from
 * the catalog, fixed status and reason sets). Histograms carry the trace id as an exemplar when the attempt
 * was sampled, so Grafana can jump from a slow bucket to the trace of one slow job.
 */
import { Counter } from 'prom-client';
import { BUCKETS, boundedCounter, exemplarHistogram, type MetricsRegistry, traceExemplar as exemplar } from './registry';
import type { TelemetryGuard } from './guard';
import { FAILURE_REASONS, type FailureReason } from '../failure-reason';

export { FAILURE_REASONS, type FailureReason };

export type JobStatus = 'completed' | 'failed';
export const RATE_LIMIT_SOURCES = ['dependency', 'quota'] as const;
export type RateLimitSource = (typeof RATE_LIMIT_SOURCES)[number];

export interface JobMetrics {
  observeWait(queue: string, seconds: number, traceId?: string): void;
  observeProcessing(queue: string, status: JobStatus, seconds: number, traceId?: string): void;
  /** Once per job, at its final outcome: from when it became eligible (enqueue + delay) to completed / failed for good. */
  observeE2e(queue: string, status: JobStatus, seconds: number, traceId?: string): void;
  retried(queue: string): void;
  /** An attempt still running at its queue's soft timeout (softTimeoutRatio of the timeout); it runs on. */
  softTimeout(queue: string): void;
  /** source `dependency`: it answered 429; `quota`: our own outbound quota made the job wait. */
  rateLimited(queue: string, source: RateLimitSource): void;
  completed(queue: string): void;
  failed(queue: string, reason: FailureReason): void;
  stalled(queue: string): void;
}

export function createJobMetrics(registry: MetricsRegistry, queues: readonly string[]): JobMetrics {
  const wait = exemplarHistogram(registry, {
    name: 'bullmq_job_wait_seconds',
    help: 'Time from when a job became eligible (enqueue + delay) to the start of its first attempt.',
    labels: ['queue'],
    buckets: BUCKETS.jobWait,
  });
  const processing = exemplarHistogram(registry, {
    name: 'bullmq_job_processing_seconds',
    help: 'Duration of each processing attempt, by outcome.',
    labels: ['queue', 'status'],
    buckets: BUCKETS.jobProcessing,
  });
  const e2e = exemplarHistogram(registry, {
    name: 'bullmq_job_e2e_seconds',
    help: 'Time from when a job became eligible (enqueue + delay) to its final outcome (completed, or failed with no attempt left), once per job.',
    labels: ['queue', 'status'],
    buckets: BUCKETS.jobE2e,
  });
  const perQueue = (name: string, help: string) => boundedCounter(registry, name, help, { queue: queues });
  const retries = perQueue('bullmq_job_retries_total', 'Failed attempts that will be retried.');
  const softTimeouts = perQueue(
    'bullmq_job_soft_timeouts_total',
    "Attempts still running at the queue's soft timeout (a share of its timeout, catalog policy); they go on to the hard timeout.",
  );
  const rateLimitHits = new Counter({
    name: 'bullmq_rate_limit_hits_total',
    help: 'Attempts stopped by a rate limit, by source: dependency (it answered 429) or quota (our own outbound quota); no attempt used.',
    labelNames: ['queue', 'source'] as const,
    registers: [registry],
  });
  for (const queue of queues) for (const source of RATE_LIMIT_SOURCES) rateLimitHits.inc({ queue, source }, 0);
  const completed = perQueue('bullmq_jobs_completed_total', 'Jobs completed.');
  const stalled = perQueue('bullmq_jobs_stalled_total', 'Jobs found stalled (lock lost: worker died or blocked) and moved back to wait.');
  const failed = new Counter({
    name: 'bullmq_jobs_failed_total',
    help: 'Jobs failed for good (no attempt left or not retryable), by reason.',
    labelNames: ['queue', 'reason'] as const,
    registers: [registry],
  });
  // Every (queue, reason) series from 0, as boundedCounter does for one label.
  for (const queue of queues) for (const reason of FAILURE_REASONS) failed.inc({ queue, reason }, 0);

  return {
    observeWait: (queue, seconds, traceId) =>
      wait.observe({ labels: { queue }, value: Math.max(0, seconds), exemplarLabels: exemplar(traceId) }),
    observeProcessing: (queue, status, seconds, traceId) =>
      processing.observe({ labels: { queue, status }, value: seconds, exemplarLabels: exemplar(traceId) }),
    observeE2e: (queue, status, seconds, traceId) =>
      e2e.observe({ labels: { queue, status }, value: Math.max(0, seconds), exemplarLabels: exemplar(traceId) }),
    retried: (queue) => retries.inc({ queue }),
    softTimeout: (queue) => softTimeouts.inc({ queue }),
    rateLimited: (queue, source) => rateLimitHits.inc({ queue, source }),
    completed: (queue) => completed.inc({ queue }),
    failed: (queue, reason) => failed.inc({ queue, reason }),
    stalled: (queue) => stalled.inc({ queue }),
  };
}

/** For processes with metrics disabled by config: same interface, no work. */
export const noopJobMetrics: JobMetrics = {
  observeWait: () => undefined,
  observeProcessing: () => undefined,
  observeE2e: () => undefined,
  retried: () => undefined,
  softTimeout: () => undefined,
  rateLimited: () => undefined,
  completed: () => undefined,
  failed: () => undefined,
  stalled: () => undefined,
};

/**
 * The same metrics, each call through `safely`: a method that throws is reported instead of propagating. These
 * calls sit next to the attempt's outcome path and in Worker event listeners (where a throw would reach BullMQ).
 */
export function guardJobMetrics(metrics: JobMetrics, safely: TelemetryGuard): JobMetrics {
  const guard = (name: keyof JobMetrics, call: () => void): void => {
    safely(`metric ${name}`, call);
  };
  return {
    observeWait: (...a) => guard('observeWait', () => metrics.observeWait(...a)),
    observeProcessing: (...a) => guard('observeProcessing', () => metrics.observeProcessing(...a)),
    observeE2e: (...a) => guard('observeE2e', () => metrics.observeE2e(...a)),
    retried: (...a) => guard('retried', () => metrics.retried(...a)),
    softTimeout: (...a) => guard('softTimeout', () => metrics.softTimeout(...a)),
    rateLimited: (...a) => guard('rateLimited', () => metrics.rateLimited(...a)),
    completed: (...a) => guard('completed', () => metrics.completed(...a)),
    failed: (...a) => guard('failed', () => metrics.failed(...a)),
    stalled: (...a) => guard('stalled', () => metrics.stalled(...a)),
  };
}
