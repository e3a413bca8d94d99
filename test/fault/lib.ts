/**
 * Small helpers shared by the fault tests (not a harness: processes, Redis and HTTP come from test/helpers).
 */
import { Queue } from 'bullmq';
import type { RedisClient } from '../../services/common/redis';
import { queueKeyPrefix } from '../../services/common/queue-keys';
import type { QueueName } from '../../services/common/queue-catalog';
import { assertionClient, testClusterSeeds, SHARED_REDIS_URL } from '../helpers/redis';

export const payment = (i: number, tag = 'p') => ({
  data: { amount: 100 + i, currency: 'EUR', account: `acct_${i}`, reference: `${tag}-${i}` },
});

/** The Idempotency-Key of payment(i, tag): one intent per (i, tag), so a re-sent payment is a replay. */
export const paymentKey = (i: number, tag = 'p') => ({ 'idempotency-key': `pay-${tag}-${i}` });

export const notification = (i: number) => ({ data: { channel: 'email', to: `user${i}@example.com`, template: 'welcome' } });

/** A plain client for assertions (ledger, provider charges, job hashes); disconnected at teardown. */
export function redisClient(t: { teardown(fn: () => unknown): void }, url: string): RedisClient {
  const redis = assertionClient(url);
  redis.on('error', () => undefined);
  t.teardown(() => redis.disconnect());
  return redis;
}

/** A BullMQ Queue handle for reading job state in assertions; closed at teardown. */
export function queueHandle(t: { teardown(fn: () => unknown): void }, url: string, prefix: string, name: QueueName = 'payments'): Queue {
  const connection = assertionClient(url, null);
  connection.on('error', () => undefined);
  const cluster = url === SHARED_REDIS_URL && testClusterSeeds() ? [testClusterSeeds()] : [];
  const queue = new Queue(name, { connection, prefix: queueKeyPrefix({ queuePrefix: prefix, redis: { clusterNodes: cluster } }, name) });
  queue.on('error', () => undefined);
  t.teardown(async () => {
    await queue.close().catch(() => undefined);
    connection.disconnect();
  });
  return queue;
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function pool<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!, i);
      }
    }),
  );
  return out;
}

export const ms = (start: number) => Math.round(performance.now() - start);

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/**
 * Enqueues the way a correct client does: with an Idempotency-Key, retrying on 503. A 503 from a command
 * timeout can come after Redis applied the add (the reply was late, not lost) — observed on a loaded 2-core CI
 * box against a healthy Redis — so only a keyed retry is safe. `post` returns { status, body }.
 */
export async function enqueueWithRetry(
  post: (headers: Record<string, string>) => Promise<{ status: number; body: any }>,
  key: string,
  attempts = 5,
): Promise<string> {
  let last: { status: number; body: any } | undefined;
  for (let i = 0; i < attempts; i++) {
    last = await post({ 'idempotency-key': key });
    if (last.status === 202) return String(last.body.id);
    if (last.status !== 503) break;
    await new Promise((r) => setTimeout(r, 200 * (i + 1)));
  }
  throw new Error(`enqueue ${key}: ${last?.status} ${JSON.stringify(last?.body)}`);
}
