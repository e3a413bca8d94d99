/**
 * Plain BullMQ reference for `npm run bench`: no API, no telemetry, no product code. One process per role so
 * producer and worker can use both cores like API and worker do:
 *   node dist/bench/baseline.js worker <redisUrl> <concurrency>          trivial processor; prints "ready"
 *   node dist/bench/baseline.js bulk   <redisUrl> <jobs> <plain|product>  Queue.addBulk in batches of 500
 *   node dist/bench/baseline.js add    <redisUrl> <jobs> <plain|product>  Queue.add, 64 in flight (one add per job, like the API)
 * Job options: "plain" = BullMQ defaults plus the product's retention (so Redis memory stays bounded the same
 * way); "product" = what the API sets (priority normal = 5, attempts, exponential backoff with jitter, retention).
 */
import { Queue, Worker, JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import { PRIORITIES, QUEUE_CATALOG, RETENTION } from '../services/common/queue-catalog';

export const BASELINE_QUEUE = 'plain';
export const BASELINE_PREFIX = 'baseline';
const policy = QUEUE_CATALOG.notifications.policy;
const OPTIONS: Record<string, JobsOptions> = {
  plain: { removeOnComplete: { ...RETENTION.completed }, removeOnFail: { ...RETENTION.failed } },
  product: {
    priority: PRIORITIES.normal,
    attempts: policy.attempts,
    backoff: { type: 'exponential', delay: policy.backoffDelayMs, jitter: policy.backoffJitter },
    removeOnComplete: { ...RETENTION.completed },
    removeOnFail: { ...RETENTION.failed },
  },
};
const DATA = { payload: { channel: 'email', to: 'bench@example.com', template: 'welcome' } };

async function main(): Promise<void> {
  const [role, url, arg, variant = 'plain'] = process.argv.slice(2);
  const n = Number(arg);
  const connection = new Redis(url!, { maxRetriesPerRequest: null });
  if (role === 'worker') {
    const worker = new Worker(BASELINE_QUEUE, async () => ({ ok: true }), { connection, prefix: BASELINE_PREFIX, concurrency: n });
    worker.on('error', () => undefined);
    await worker.waitUntilReady();
    process.stdout.write('ready\n');
    process.on('SIGTERM', () => void worker.close().then(() => process.exit(0)));
    return;
  }
  const opts = OPTIONS[variant]!;
  const queue = new Queue(BASELINE_QUEUE, { connection, prefix: BASELINE_PREFIX });
  await queue.waitUntilReady();
  const t0 = performance.now();
  if (role === 'bulk') {
    for (let done = 0; done < n; done += 500) {
      await queue.addBulk(Array.from({ length: Math.min(500, n - done) }, () => ({ name: 'n', data: DATA, opts })));
    }
  } else {
    let next = 0;
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next < n) {
          next++;
          await queue.add('n', DATA, opts);
        }
      }),
    );
  }
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(`${JSON.stringify({ jobs: n, seconds, perS: n / seconds })}\n`);
  await queue.close();
  connection.disconnect();
}

if (require.main === module) void main();
