/**
 * Redis connection factories. Two kinds, because producers and workers fail differently:
 * - producer (API): fails fast. No offline queue and a command timeout, so during a Redis outage or freeze a
 *   request gets 503 within a second instead of hanging until the client gives up. A request makes at most two
 *   sequential Redis calls (rate-limit counter, then the enqueue script), hence 400 ms each: healthy Redis
 *   answers in well under a millisecond, so only a frozen or partitioned server ever hits it.
 * - worker: blocking commands, retries forever (maxRetriesPerRequest null, as BullMQ requires), reconnects
 *   with a capped backoff, so workers resume on their own when Redis is back.
 */
import { Redis, type RedisOptions } from 'ioredis';

const reconnect = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2_000);

export function createProducerConnection(url: string, overrides: RedisOptions = {}): Redis {
  return new Redis(url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 400,
    connectTimeout: 1_000,
    retryStrategy: reconnect,
    ...overrides,
  });
}

export function createWorkerConnection(url: string, overrides: RedisOptions = {}): Redis {
  return new Redis(url, {
    maxRetriesPerRequest: null,
    enableOfflineQueue: true,
    connectTimeout: 5_000,
    retryStrategy: reconnect,
    ...overrides,
  });
}

export class EvictionPolicyError extends Error {
  override name = 'EvictionPolicyError';
  constructor(readonly policy: string) {
    super(
      `Redis maxmemory-policy is "${policy}", but BullMQ needs "noeviction": under any evicting policy Redis ` +
        'silently deletes job keys when memory runs short, so accepted jobs are lost. ' +
        'Set "maxmemory-policy noeviction" in redis.conf (or CONFIG SET maxmemory-policy noeviction) and restart.',
    );
  }
}

/**
 * Reads the policy from INFO (works where CONFIG is disabled, e.g. managed Redis). Throws EvictionPolicyError
 * when it is not noeviction.
 */
export async function assertNoEviction(client: Redis): Promise<void> {
  const info = await client.info('memory');
  const match = /^maxmemory_policy:(\S+)/m.exec(info);
  const policy = match?.[1] ?? 'unknown';
  if (policy !== 'noeviction') throw new EvictionPolicyError(policy);
}
