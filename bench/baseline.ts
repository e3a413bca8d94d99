/**
 * Plain BullMQ reference for `npm run bench`: no API, no telemetry, no product processors. One process per role so
 * producer and worker can use both cores like API and worker do:
 *   node dist/bench/baseline.js worker <redisUrl> <concurrency>          trivial processor; prints "ready"
 *   node dist/bench/baseline.js bulk   <redisUrl> <jobs> <plain|product>  Queue.addBulk in batches of 500
 *   node dist/bench/baseline.js add    <redisUrl> <jobs> <plain|product> [inFlight] [warm]
 *                                                                        Queue.add, 64 (or inFlight) in flight (one add per job, like the API);
 *                                                                        with `warm`, first that many adds, then waits until the worker has
 *                                                                        done them and prints "warm" (JIT warm on both sides, like the
 *                                                                        product's warm-up) before the measured adds
 * The producers print one JSON line: jobs, seconds, jobs/s and the CPU ms the adding itself took (process.cpuUsage
 * around the loop: module loading and connecting are not a job's cost).
 * Job options: "plain" = BullMQ defaults plus the product's retention (so Redis memory stays bounded the same
 * way); "product" = what the API sets (services/common/job-options.ts: attempts, the timeout-aware exponential
 * backoff with jitter, retention; plus priority normal = 5). The trivial processor never fails, so this Worker
 * needs no backoff strategy (services/common/retry-backoff.ts).
 */
import { Queue, Worker, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { DEFAULT_PRIORITY, PRIORITIES } from '../services/common/queue-catalog';
import { jobOptionsFor } from '../services/common/job-options';

export const BASELINE_QUEUE = 'plain';
export const BASELINE_PREFIX = 'baseline';
export type BaselineVariant = 'plain' | 'product';
/** The jobs are notifications-shaped, so the product's options are those of the notifications queue. */
const product = jobOptionsFor('notifications');
const OPTIONS: Record<BaselineVariant, JobsOptions> = {
  plain: { removeOnComplete: product.removeOnComplete, removeOnFail: product.removeOnFail },
  // What the API adds to every job (services/api/enqueue.ts): the priority, `normal` unless the client asks.
  product: { ...product, priority: PRIORITIES[DEFAULT_PRIORITY] },
};
const DATA = { payload: { channel: 'email', to: 'bench@example.com', template: 'welcome' } };

async function main(): Promise<void> {
  // Started only by bench/stages/baseline.ts with the positional protocol above; anything else is a bug there.
  const [role, url, arg, variant = 'plain', inFlightArg = '64', warmArg = '0'] = process.argv.slice(2);
  if (role !== 'worker' && role !== 'bulk' && role !== 'add') throw new Error(`unknown role "${role}": worker, bulk or add`);
  if (!url || !/^[1-9]\d*$/.test(arg ?? '')) throw new Error(`usage: baseline.js ${role} <redisUrl> <positive integer> [plain|product]`);
  if (variant !== 'plain' && variant !== 'product') throw new Error(`unknown variant "${variant}": plain or product`);
  if (!/^[1-9]\d*$/.test(inFlightArg)) throw new Error(`in-flight count must be a positive integer, got "${inFlightArg}"`);
  if (!/^\d+$/.test(warmArg)) throw new Error(`warm-up count must be a non-negative integer, got "${warmArg}"`);
  const n = Number(arg);
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  if (role === 'worker') {
    const worker = new Worker(BASELINE_QUEUE, async () => ({ ok: true }), { connection, prefix: BASELINE_PREFIX, concurrency: n });
    worker.on('error', () => undefined);
    await worker.waitUntilReady();
    process.stdout.write('ready\n');
    process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
    return;
  }
  const opts = OPTIONS[variant];
  const queue = new Queue(BASELINE_QUEUE, { connection, prefix: BASELINE_PREFIX });
  await queue.waitUntilReady();
  const addMany = async (count: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: Number(inFlightArg) }, async () => {
        while (next < count) {
          next++;
          await queue.add('n', DATA, opts);
        }
      }),
    );
  };
  const warm = Number(warmArg);
  if (role === 'add' && warm > 0) {
    await addMany(warm);
    for (;;) {
      const c = await queue.getJobCounts('wait', 'prioritized', 'active', 'delayed');
      if (Object.values(c).every((x) => x === 0)) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    process.stdout.write('warm\n');
  }
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  if (role === 'bulk') {
    for (let done = 0; done < n; done += 500) {
      await queue.addBulk(Array.from({ length: Math.min(500, n - done) }, () => ({ name: 'n', data: DATA, opts })));
    }
  } else {
    await addMany(n);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ jobs: n, seconds, perS: n / seconds, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
  await queue.close();
  connection.disconnect();
}

if (require.main === module) {
  main().catch((err: Error) => {
    process.stderr.write(`baseline failed: ${err.stack}\n`);
    process.exit(1);
  });
}
