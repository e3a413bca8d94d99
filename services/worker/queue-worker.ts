/**
 * Wiring of one BullMQ Worker for one catalog queue: policy → Worker options, the queue's processor (processors/index.ts),
 * the attempt runner, and the listeners every production worker needs ('error' above all: an unhandled
 * 'error' event would crash the process).
 */
import { Worker } from 'bullmq';
import type { Logger } from 'pino';
import type { Config } from '../common/config';
import type { RedisClient } from '../common/redis';
import { queueKeyPrefix } from '../common/queue-keys';
import { QUEUE_CATALOG, QueueName } from '../common/queue-catalog';
import { JobMetrics, guardJobMetrics } from '../common/telemetry/job-metrics';
import { createTelemetryGuard } from '../common/telemetry/guard';
import { sampledTraceIdOf } from '../common/telemetry/trace-context';
import { createAttemptRunner, eligibleAt, AttemptRunnerDeps } from './run-attempt';
import { STALLED_FAILURE_MESSAGE } from './errors';
import { PROCESSORS } from './processors';

export interface QueueWorkerDeps {
  connection: RedisClient;
  config: Config;
  metrics: JobMetrics;
  log: Logger;
  processorDeps: AttemptRunnerDeps['processorDeps'];
}

export function createQueueWorker<Q extends QueueName>(queue: Q, deps: QueueWorkerDeps): Worker {
  const def = QUEUE_CATALOG[queue];
  const { config } = deps;
  const log = deps.log.child({ queue });
  // The listeners below run inside BullMQ's event emission: a throwing metric there must not reach BullMQ.
  const metrics = guardJobMetrics(
    deps.metrics,
    createTelemetryGuard((what, err) => log.error({ err, what }, 'telemetry call failed; ignored')),
  );
  let worker: Worker | undefined;
  const runAttempt = createAttemptRunner(def, PROCESSORS[queue], {
    metrics: deps.metrics,
    log,
    rateLimit: async (ms) => worker?.rateLimit(ms),
    processorDeps: deps.processorDeps,
    traceMode: config.tracing.mode,
  }, config.worker.timeoutMs[queue]);

  worker = new Worker(queue, runAttempt, {
    connection: deps.connection,
    prefix: queueKeyPrefix(config, queue),
    concurrency: config.worker.concurrency[queue],
    lockDuration: config.worker.lockDurationMs ?? def.policy.lockDurationMs,
    stalledInterval: config.worker.stalledIntervalMs ?? def.policy.stalledIntervalMs,
    maxStalledCount: config.worker.maxStalledCount ?? def.policy.maxStalledCount,
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
        metrics.observeE2e(queue, 'failed', ((job.finishedOn ?? Date.now()) - eligibleAt(job)) / 1000, sampledTraceIdOf(job.data?.meta?.trace));
      }
      log.error({ jobId: job?.id }, 'job failed: stalled more than allowed');
    }
  });
  return worker;
}
