/**
 * `npm run bench:failed-memory` — what dead letters cost: Redis memory per 100,000 jobs that failed for good,
 * measured on a private redis-server (INFO memory `used_memory` before and after), for docs/console.md.
 *
 * The jobs are realistic: payments envelopes as the API writes them (payload, W3C traceparent, Idempotency-Key,
 * client key id, enqueue id; job id derived from client and key), the API's job options (attempts, backoff, retention from
 * jobOptionsFor), failed through a real BullMQ Worker running the real payments processor against the simulated provider
 * with every call failing (ProviderError), so each job holds
 * the stack traces the API's options keep. Options: --jobs N (default 100000), --concurrency N (default 100),
 * --all-stack-traces (BullMQ's default, one per attempt, for comparison).
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import type {} from '../services/api/plugins/app/config'; // app.config typing used by the queues plugin
import { jobOptionsFor } from '../services/common/job-options';
import { idempotentJobId } from '../services/api/idempotency';
import { PRIORITIES, QUEUE_CATALOG, RETENTION } from '../services/common/queue-catalog';
import { CachedFaults, FaultStore } from '../services/common/faults';
import { createLogger } from '../services/common/logger';
import { processor as paymentsProcessor } from '../services/worker/processors/payments';
import type { ProcessorDeps } from '../services/worker/processors/types';
import { PaymentLedger } from '../services/worker/payment-ledger';
import { SimulatedPaymentProvider } from '../services/worker/providers/simulated';
import { UsageError, integerIn, parseFlags } from '../scripts/lib/cli';
import { killStartedProcesses } from '../scripts/lib/process';
import { startRedisServer } from '../scripts/lib/redis-server';
import { waitFor } from '../scripts/lib/wait';

const USAGE = 'usage: npm run bench:failed-memory -- [--jobs N] [--concurrency N] [--all-stack-traces]';

function parseCli(argv: string[]) {
  const flags = parseFlags(argv, {
    jobs: { type: 'string' },
    concurrency: { type: 'string' },
    'all-stack-traces': { type: 'boolean' },
  }, USAGE);
  return {
    jobs: integerIn('jobs', flags.jobs, 1, 10_000_000, USAGE) ?? 100_000,
    concurrency: integerIn('concurrency', flags.concurrency, 1, 1000, USAGE) ?? 100,
    allStackTraces: flags['all-stack-traces'] === true,
  };
}

const QUEUE = 'payments';
const PREFIX = 'bull';

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

async function main(argv: string[]): Promise<void> {
  const { jobs: JOBS, concurrency: CONCURRENCY, allStackTraces } = parseCli(argv);
  const redis = await startRedisServer();
  const conn = new Redis(redis.url, { maxRetriesPerRequest: null });
  const workerConn = conn.duplicate();
  try {
    // Same options as the API's queues, but room for every job (the count bound would cap what is measured) and no
    // backoff wait: the delay changes when a retry runs, not what is stored.
    const { stackTraceLimit, ...rest } = jobOptionsFor(QUEUE, { age: RETENTION.failed.age, count: JOBS });
    const opts = { ...rest, backoff: { type: 'exponential', delay: 0 }, ...(allStackTraces ? {} : { stackTraceLimit }) };
    const queue = new Queue(QUEUE, { connection: conn, prefix: PREFIX, defaultJobOptions: opts });
    await queue.waitUntilReady();
    const before = await usedMemory(conn);

    for (let i = 0; i < JOBS; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, JOBS - i) }, (_, j) => {
        const key = randomUUID();
        const clientId = createHash('sha256').update('client-key').digest('hex').slice(0, 16);
        const traceId = randomBytes(16).toString('hex');
        return {
          name: QUEUE,
          data: {
            payload: { amount: 1000 + ((i + j) % 50_000), currency: 'EUR', account: `acct_${randomBytes(6).toString('hex')}`, reference: `order-${i + j}` },
            meta: {
              trace: { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
              idempotencyKey: key,
              clientId,
              enqueueId: randomUUID(),
            },
          },
          opts: { jobId: idempotentJobId(clientId, key), priority: PRIORITIES.normal },
        };
      });
      await queue.addBulk(batch);
    }

    // The real payments processor and simulated provider with every call failing: the stored error and stack trace
    // are the ones production keeps.
    const store = new FaultStore(conn, PREFIX);
    await store.update(QUEUE, { failureRate: 1 });
    const faults = new CachedFaults(store, [QUEUE]);
    await faults.start();
    const deps = {
      ledger: new PaymentLedger(conn, PREFIX),
      paymentProvider: new SimulatedPaymentProvider(conn, PREFIX, faults),
      log: createLogger({ name: 'bench', level: 'silent' }),
    } as unknown as Omit<ProcessorDeps, 'signal'>;
    let failed = 0;
    const worker = new Worker(QUEUE, (job) => paymentsProcessor(job, { ...deps, signal: new AbortController().signal }), { connection: workerConn, prefix: PREFIX, concurrency: CONCURRENCY });
    worker.on('failed', (job) => {
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) failed += 1;
    });
    const started = Date.now();
    await waitFor(async () => (await queue.getFailedCount()) >= JOBS, {
      timeoutMs: 30 * 60_000,
      intervalMs: 500,
      what: `all ${JOBS} jobs failed`,
    });
    await worker.close();
    faults.stop();
    await store.update(QUEUE, { failureRate: 0 });
    const after = await usedMemory(conn);
    const sample = await queue.getJob((await queue.getFailed(0, 0))[0]!.id!);
    const perJob = (after - before) / JOBS;
    const result = {
      jobs: JOBS,
      attempts: QUEUE_CATALOG[QUEUE].policy.attempts,
      stackTracesPerJob: sample?.stacktrace?.length,
      usedMemoryBefore: before,
      usedMemoryAfter: after,
      bytesPerJob: Math.round(perJob),
      mibPer100k: Number(((perJob * 100_000) / 2 ** 20).toFixed(1)),
      redisVersion: /redis_version:(\S+)/.exec(await conn.info('server'))?.[1],
      failedEvents: failed,
      seconds: Math.round((Date.now() - started) / 1000),
    };
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    await queue.close();
  } finally {
    conn.disconnect();
    workerConn.disconnect();
    await redis.stop();
  }
}

main(process.argv.slice(2)).then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(err instanceof UsageError ? `${err.message}\n` : `${(err as Error).stack}\n`);
  killStartedProcesses();
  process.exit(err instanceof UsageError ? 2 : 1);
});
