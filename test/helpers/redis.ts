/**
 * Redis for tests: the machine's server on 127.0.0.1:6379 with a unique key prefix per test (cleaned up), or a
 * private redis-server on a free port for tests that kill, freeze or reconfigure it (scripts/lib/redis-server.ts,
 * the same starter the bench uses).
 *
 * Cluster mode: with TEST_REDIS_CLUSTER_NODES set (test/cluster/*.test.ts set it after starting a cluster with
 * test/helpers/redis-cluster.ts), "the shared Redis" is that cluster: services get REDIS_CLUSTER_NODES and a
 * REDIS_URL where nothing listens — so a connection that ignored the cluster would fail the suite.
 */
import { randomBytes } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import type { RedisClient } from '../../services/common/redis';

export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379';
/** Nothing listens on port 1. */
export const NOWHERE_REDIS_URL = 'redis://127.0.0.1:1';

/** Seed nodes of the cluster the shared-Redis suites run against, or '' for the single shared server. */
export const testClusterSeeds = (): string => process.env.TEST_REDIS_CLUSTER_NODES ?? '';

/** The services' Redis environment for a test Redis URL (cluster mode swaps the shared server for the cluster). */
export function redisEnv(url: string): Record<string, string> {
  const seeds = testClusterSeeds();
  return url === SHARED_REDIS_URL && seeds ? { REDIS_URL: NOWHERE_REDIS_URL, REDIS_CLUSTER_NODES: seeds } : { REDIS_URL: url };
}

/** A client for assertions on a test Redis: the cluster in cluster mode, else the given server. */
export function assertionClient(url: string, retries: number | null = 3): RedisClient {
  const seeds = testClusterSeeds();
  if (url !== SHARED_REDIS_URL || !seeds) return new Redis(url, { maxRetriesPerRequest: retries });
  const nodes = seeds.split(',').map((s) => ({ host: s.split(':')[0]!, port: Number(s.split(':')[1]) }));
  return new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: retries } });
}

/** Each master's own connection (where SCAN sees that master's keys), or the one server. */
export async function masterConnections(client: RedisClient): Promise<Redis[]> {
  if (!(client as Cluster).isCluster) return [client as Redis];
  const cluster = client as Cluster;
  if (cluster.status !== 'ready') await new Promise((r) => cluster.once('ready', r));
  return cluster.nodes('master');
}

export function uniquePrefix(tag = 't'): string {
  return `test-${tag}-${randomBytes(4).toString('hex')}`;
}

/**
 * Deletes every key under the prefix — "<prefix>:…" and, in cluster mode, the queues' "{<prefix>:<queue>}…" —
 * on every master (SCAN: fine for a test's few keys, never used by the product). One key per DEL: keys of
 * different slots cannot share a command.
 */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const client = assertionClient(url, 1);
  client.on('error', () => undefined);
  try {
    for (const node of await masterConnections(client)) {
      for (const pattern of [`${prefix}:*`, `{${prefix}:*`]) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await Promise.all(keys.map((k) => node.del(k)));
        } while (cursor !== '0');
      }
    }
  } finally {
    client.disconnect();
  }
}

export { startRedisServer, type RedisServer, type RedisServerOptions } from '../../scripts/lib/redis-server';
