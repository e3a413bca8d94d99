/** Reads the per-payment records the worker keeps in Redis (one key each), for "applied once" checks. */
import type { Redis } from 'ioredis';

async function byPrefix(redis: Redis, keyPrefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) {
      const values = await redis.mget(...keys);
      keys.forEach((k, i) => (out[k.slice(keyPrefix.length)] = values[i] ?? ''));
    }
  } while (cursor !== '0');
  return out;
}

/** The simulated provider's applied charges: ledger key → charge id. */
export async function providerCharges(redis: Redis, prefix: string): Promise<Record<string, string>> {
  const raw = await byPrefix(redis, `${prefix}:simulated-provider:charges:`);
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, (JSON.parse(v) as { chargeId: string }).chargeId]));
}

/** The worker's payment ledger: ledger key → entry JSON. */
export const ledgerEntries = (redis: Redis, prefix: string) => byPrefix(redis, `${prefix}:ledger:payments:`);
