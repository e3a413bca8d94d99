/** Reads the per-payment records the worker keeps in Redis (one key each), for "applied once" checks. */
import type { RedisClient } from '../../services/common/redis';
import { masterConnections } from './redis';

/** SCAN on every master (one server, or each cluster master); one GET per key, as keys may sit in different slots. */
async function byPrefix(redis: RedisClient, keyPrefix: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const node of await masterConnections(redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${keyPrefix}*`, 'COUNT', 1000);
      cursor = next;
      const values = await Promise.all(keys.map((k) => node.get(k)));
      keys.forEach((k, i) => (out[k.slice(keyPrefix.length)] = values[i] ?? ''));
    } while (cursor !== '0');
  }
  return out;
}

/** The simulated provider's applied charges: ledger key → charge id. */
export async function providerCharges(redis: RedisClient, prefix: string): Promise<Record<string, string>> {
  const raw = await byPrefix(redis, `${prefix}:simulated-provider:charges:`);
  return Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, (JSON.parse(v) as { chargeId: string }).chargeId]));
}

/** The worker's payment ledger: ledger key → entry JSON. */
export const ledgerEntries = (redis: RedisClient, prefix: string) => byPrefix(redis, `${prefix}:ledger:payments:`);
