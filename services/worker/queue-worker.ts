/**
 * Wiring of one BullMQ Worker for one catalog queue: its effective policy (config.worker.policies, assembled once in
 * common/config/queue-policy.ts) → Worker options and retry backoff, the queue's processor (processors/index.ts),
 * the attempt runner, and the listeners every production worker needs ('error' above all: an unhandled
 * 'error' event would crash the process).
 */
import { Worker, type WorkerOptions } from 'bullmq';
import type { Logger } from 'pino';
import type { Config, EffectiveQueuePolicy } from '../common/config';
import type { RedisClient } from '../common/redis';
import { queueKeyPrefix } from '../common/queue-keys';
import type { QueueName } from '../common/queue-catalog';
import { retryBackoffStrategy } from '../common/retry-backoff';
import { type JobMetrics, guardJobMetrics } from '../common/telemetry/job-metrics';
import { createTelemetryGuard } from '../common/telemetry/guard';
import { sampledTraceIdOf } from '../common/telemetry/trace-context';
import { createAttemptRunner, eligibleAt, type AttemptRunnerDeps } from './run-attempt';
import { STALLED_FAILURE_MESSAGE } from './errors';
import { PROCESSORS } from './processors';
import { isEnvelope } from '../common/job-envelope';

/** The producer's trace context of a job's data, when the data is an envelope (services/common/job-envelope.ts). */
const traceCarrier = (data: unknown) => (isEnvelope(data) ? data.meta.trace : undefined);

export interface QueueWorkerDeps {
  connection: RedisClient;
  config: Config;
  metrics: JobMetrics;
  log: Logger;
  processorDeps: AttemptRunnerDeps['processorDeps'];
}

/** The Worker options a queue's policy sets (the connection and prefix apart). */
export function workerOptionsFor(policy: EffectiveQueuePolicy): Omit<WorkerOptions, 'connection'> {
  return {
    concurrency: policy.concurrency,
    lockDuration: policy.lockDurationMs,
    stalledInterval: policy.stalledIntervalMs,
    maxStalledCount: policy.maxStalledCount,
    // Jobs carry the timeout-aware backoff type (common/job-options.ts); BullMQ asks this strategy for its delays.
    settings: { backoffStrategy: retryBackoffStrategy(policy) },
  };
}

export function createQueueWorker<Q extends QueueName>(queue: Q, deps: QueueWorkerDeps): Worker {
  const { config } = deps;
  const policy = config.worker.policies[queue];
  const log = deps.log.child({ queue });
  // The listeners below run inside BullMQ's event emission: a throwing metric there must not reach BullMQ.
  const metrics = guardJobMetrics(
    deps.metrics,
    createTelemetryGuard((what, err) => log.error({ err, what }, 'telemetry call failed; ignored')),
  );
  // The limiter is the Worker's own; it exists by the time any attempt runs.
  const runAttempt = createAttemptRunner(policy, PROCESSORS[queue], {
    metrics: deps.metrics,
    log,
    rateLimit: async (ms: number): Promise<void> => worker.rateLimit(ms),
    processorDeps: deps.processorDeps,
    traceMode: config.tracing.mode,
  });

  const worker: Worker = new Worker(queue, runAttempt, {
    ...workerOptionsFor(policy),
    connection: deps.connection,
    prefix: queueKeyPrefix(config, queue),
    autorun: false,
  });

  worker.on('error', (err) => log.error({ err }, 'worker error'));
  worker.on('stalled', (jobId) => {
    metrics.stalled(queue);
    log.warn({ jobId }, 'job stalled: lock lost, moved back to wait');
  });
  worker.on('failed', (job, err) => {
    // A job that stalled too often is failed by BullMQ before any processor runs: count it here, and end its
    // end-to-end time (exemplar: the job's producer trace, there is no attempt span).
    if (err?.message === STALLED_FAILURE_MESSAGE) {
      metrics.failed(queue, 'stalled');
      if (job) {
        metrics.observeE2e(queue, 'failed', ((job.finishedOn ?? Date.now()) - eligibleAt(job)) / 1000, sampledTraceIdOf(traceCarrier(job.data)));
      }
      log.error({ jobId: job?.id }, 'job failed: stalled more than allowed');
    }
  });
  return worker;
}
