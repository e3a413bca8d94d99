/**
 * Telemetry cannot change a job's outcome: the attempt runner, driven by a real BullMQ Worker on real Redis, is
 * given metrics whose every method throws and a tracer that either cannot start a span or hands out spans whose
 * every method throws. Each job must still end exactly as its processor decided — completed with its value,
 * retried then completed, or failed at once with its own reason — and the broken telemetry is reported.
 */
import t from 'tap';
import { Writable } from 'node:stream';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pino from 'pino';
import { trace, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { createAttemptRunner, type AttemptRunnerDeps } from '../../services/worker/run-attempt';
import { ProviderError, UnrecoverableError } from '../../services/worker/errors';
import type { JobMetrics } from '../../services/common/telemetry/job-metrics';
import { QUEUE_CATALOG } from '../../services/common/queue-catalog';
import { effectiveQueuePolicy } from '../../services/common/config';
import type { Processor } from '../../services/worker/processors/types';
import { deletePrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { waitFor } from '../helpers/wait';

const broken = (what: string) => () => {
  throw new Error(`${what} is broken`);
};

const throwingMetrics: JobMetrics = {
  observeWait: broken('observeWait'),
  observeProcessing: broken('observeProcessing'),
  observeE2e: broken('observeE2e'),
  retried: broken('retried'),
  softTimeout: broken('softTimeout'),
  rateLimited: broken('rateLimited'),
  completed: broken('completed'),
  failed: broken('failed'),
  stalled: broken('stalled'),
};

/** A span whose every method throws. */
const throwingSpan = new Proxy({} as Span, { get: (_target, prop) => broken(`span.${String(prop)}`) });

let tracerMode: 'throw on start' | 'throwing spans' = 'throw on start';
const brokenTracer = {
  startSpan: () => {
    if (tracerMode === 'throw on start') throw new Error('tracer is broken');
    return throwingSpan;
  },
  startActiveSpan: broken('startActiveSpan'),
} as unknown as Tracer;
const brokenProvider: TracerProvider = { getTracer: () => brokenTracer };

type Behaviour = 'complete' | 'fail once, then complete' | 'reject';

// A notifications job whose template names what the processor does: real payload shape, scripted outcome.
const processor: Processor<'notifications'> = async (job) => {
  const behaviour = job.data.payload.template as Behaviour;
  if (behaviour === 'reject') throw new UnrecoverableError('the request is wrong');
  if (behaviour === 'fail once, then complete' && job.attemptsMade === 0) throw new ProviderError('provider 503', 503);
  return { done: behaviour };
};

t.test('jobs keep their real outcome when every metric and span call throws', async (t) => {
  t.ok(trace.setGlobalTracerProvider(brokenProvider), 'broken tracer installed');
  const prefix = uniquePrefix('outcome');
  const connection = new Redis(SHARED_REDIS_URL, { maxRetriesPerRequest: null });
  const def = QUEUE_CATALOG.notifications; // 2 attempts
  const queue = new Queue(def.name, { connection, prefix });
  const logLines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        logLines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        cb();
      },
    }),
  );
  const deps: AttemptRunnerDeps = {
    metrics: throwingMetrics,
    log,
    rateLimit: async () => undefined,
    processorDeps: {} as AttemptRunnerDeps['processorDeps'],
  };
  const worker = new Worker(def.name, createAttemptRunner(effectiveQueuePolicy('notifications', { timeoutMs: 5_000 }), processor, deps), { connection, prefix, concurrency: 4 });
  worker.on('error', () => undefined);
  t.teardown(async () => {
    await worker.close();
    await queue.close();
    await deletePrefix(SHARED_REDIS_URL, prefix);
    connection.disconnect();
  });

  for (const mode of ['throw on start', 'throwing spans'] as const) {
    tracerMode = mode;
    const add = (behaviour: Behaviour) =>
      queue.add(def.name, { payload: { channel: 'push', to: 'device-1', template: behaviour }, meta: {} }, { attempts: 2, backoff: { type: 'fixed', delay: 50 } });
    const [complete, retry, reject] = await Promise.all([add('complete'), add('fail once, then complete'), add('reject')]);
    const settled = async (id: string) =>
      waitFor(
        async () => {
          const state = await queue.getJobState(id);
          return state === 'completed' || state === 'failed' ? { state, job: (await queue.getJob(id))! } : undefined;
        },
        { what: `job ${id} settled (${mode})` },
      );

    const c = await settled(complete.id!);
    t.equal(c.state, 'completed', `${mode}: a successful job completes`);
    t.same(c.job.returnvalue, { done: 'complete' }, `${mode}: with its return value`);
    t.equal(c.job.attemptsStarted, 1, `${mode}: without a retry`);

    const r = await settled(retry.id!);
    t.equal(r.state, 'completed', `${mode}: a failing attempt is still retried, and the retry completes`);
    t.equal(r.job.attemptsStarted, 2, `${mode}: two attempts`);

    const f = await settled(reject.id!);
    t.equal(f.state, 'failed', `${mode}: an unrecoverable job fails`);
    t.equal(f.job.failedReason, 'the request is wrong', `${mode}: with its own reason, not a telemetry error`);
    t.equal(f.job.attemptsStarted, 1, `${mode}: at once`);
  }

  // The guard did see the failures (the test is not passing because telemetry was never called).
  const reported = logLines.filter((l) => l.msg === 'telemetry call failed; ignored (the job outcome is unaffected)').map((l) => l.what);
  for (const what of ['metric observeWait', 'metric observeProcessing', 'metric completed', 'metric observeE2e', 'metric retried', 'metric failed', 'start span', 'span end']) {
    t.ok(reported.includes(what), `reported: ${what}`);
  }
});
