/**
 * Redis for tests: the machine's server on 127.0.0.1:6379 with a unique key prefix per test (cleaned up), or a
 * private redis-server on a free port for tests that kill, freeze or reconfigure it (scripts/lib/redis-server.ts,
 * the same starter the bench uses).
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';

export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379';

export function uniquePrefix(tag = 't'): string {
  return `test-${tag}-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under the prefix (SCAN: fine for a test's few keys, never used by the product). */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export { startRedisServer, type RedisServer, type RedisServerOptions } from '../../scripts/lib/redis-server';
