/**
 * Redis connection factories. Two kinds, because producers and workers fail differently:
 * - producer (API): fails fast. No offline queue and a command timeout, so during a Redis outage or freeze a
 *   request gets 503 within a second instead of hanging until the client gives up: 400 ms per command, and one
 *   deadline over a request's whole Redis work (services/api/plugins/app/queues.ts, withRedis) with the rate
 *   limiter's own 200 ms before it. Healthy Redis answers in well under a millisecond, so only a frozen or
 *   partitioned server ever hits them.
 * - worker: blocking commands, retries forever (maxRetriesPerRequest null, as BullMQ requires), reconnects
 *   with a capped backoff, so workers resume on their own when Redis is back.
 *
 * Neither uses ioredis' auto-pipelining: it moves CPU from Redis to the API and worker with no gain in total, and
 * an auto-pipeline waits for the previous one of its connection to finish, which lengthens the tail (figures:
 * docs/scaling.md, "Settings chosen by measurement"). For the API there is one more reason: during a Redis freeze a queued command's 400 ms timeout would only start once the
 * one ahead of it expired — past the 1 s a client may wait for its 503.
 *
 * Each kind exists for one node (REDIS_URL) and for Redis Cluster (REDIS_CLUSTER_NODES): the cluster client is
 * ioredis' own `Cluster`, whose `redisOptions` carry the same per-kind options to every node connection; it
 * follows MOVED/ASK redirections and re-reads the slot map after a failover, so nothing here does that by hand.
 */
import { Cluster, type ClusterOptions, Redis, type RedisOptions } from 'ioredis';
import calculateSlot from 'cluster-key-slot';
import type { ClusterNode } from './config/shared';

/** A connection of either topology: BullMQ accepts both as `connection`. */
export type RedisClient = Redis | Cluster;

export interface RedisTarget {
  url: string;
  /** Non-empty: Redis Cluster seed nodes, and `url` is not used. */
  clusterNodes: readonly ClusterNode[];
  clusterPassword?: string;
}

const reconnect = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2_000);

const PRODUCER_OPTIONS: RedisOptions = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 1,
  commandTimeout: 400,
  connectTimeout: 1_000,
  retryStrategy: reconnect,
};

const WORKER_OPTIONS: RedisOptions = {
  maxRetriesPerRequest: null,
  enableOfflineQueue: true,
  connectTimeout: 5_000,
  retryStrategy: reconnect,
};

export const isCluster = (client: RedisClient): client is Cluster => (client as Cluster).isCluster === true;

function connect(target: RedisTarget, options: RedisOptions, cluster: ClusterOptions): RedisClient {
  if (target.clusterNodes.length === 0) return new Redis(target.url, options);
  return new Cluster([...target.clusterNodes], {
    // Writes and reads go to masters (the default, said out loud): a replica may lag, and BullMQ's scripts write.
    scaleReads: 'master',
    redisOptions: target.clusterPassword ? { ...options, password: target.clusterPassword } : options,
    enableOfflineQueue: options.enableOfflineQueue,
    clusterRetryStrategy: reconnect,
    ...cluster,
  });
}

/**
 * Producer: when a master dies, commands for its slots fail at once ("Connection is closed", the node's
 * connection is down and there is no offline queue) → 503, until the cluster promotes a replica and the
 * client's slot map (refreshed on the error and on MOVED) points at it.
 */
export function createProducerConnection(target: RedisTarget, overrides: RedisOptions = {}): RedisClient {
  return connect(target, { ...PRODUCER_OPTIONS, ...overrides }, { retryDelayOnFailover: 100, slotsRefreshTimeout: 1_000 });
}

/** Worker: commands wait (offline queue, retried per `retryDelayOnClusterDown`) until the slot has a master again. */
export function createWorkerConnection(target: RedisTarget, overrides: RedisOptions = {}): RedisClient {
  return connect(target, { ...WORKER_OPTIONS, ...overrides }, { retryDelayOnClusterDown: 300, slotsRefreshTimeout: 2_000 });
}

/** The masters a client talks to: the one server, or every cluster master it knows. */
export function masterNodes(client: RedisClient): Redis[] {
  return isCluster(client) ? client.nodes('master') : [client];
}

/**
 * The connection that owns `key`'s slot — the same socket that ran the client's last write for that slot, which
 * is what WAIT counts (see waitForReplicas).
 */
export function nodeForKey(client: RedisClient, key: string): Redis {
  if (!isCluster(client)) return client;
  const owner = client.slots[calculateSlot(key)]?.[0];
  const node = owner ? client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner) : undefined;
  if (!node) throw new Error(`Connection is closed: no master known for the slot of ${key}`);
  return node;
}

/** "slot 15553 on 127.0.0.1:7001": where a key lives, for logs. */
export function keyPlacement(client: Cluster, key: string): string {
  const slot = calculateSlot(key);
  return `slot ${slot} on ${client.slots[slot]?.[0] ?? 'no master'}`;
}

export class ReplicationTimeoutError extends Error {
  override name = 'ReplicationTimeoutError';
  /** @param reason why no WAIT was sent (services/api/replication-gate.ts knew it would fall short). */
  constructor(readonly acknowledged: number, readonly wanted: number, readonly timeoutMs: number, reason?: string) {
    super(reason ?? `write acknowledged by ${acknowledged} of ${wanted} replicas within ${timeoutMs} ms`);
  }
}

export class EvictionPolicyError extends Error {
  override name = 'EvictionPolicyError';
  constructor(readonly policy: string, readonly node?: string) {
    super(
      `Redis maxmemory-policy is "${policy}"${node ? ` on ${node}` : ''}, but BullMQ needs "noeviction": under any ` +
        'evicting policy Redis silently deletes job keys when memory runs short, so accepted jobs are lost. ' +
        'Set "maxmemory-policy noeviction" in redis.conf (or CONFIG SET maxmemory-policy noeviction) and restart.',
    );
  }
}

async function evictionPolicy(node: Redis): Promise<string> {
  const info = await node.info('memory');
  return /^maxmemory_policy:(\S+)/m.exec(info)?.[1] ?? 'unknown';
}

export interface EvictionCheckOptions {
  /**
   * How long to wait for a Redis Cluster client to be ready before giving up with an error that says why. Unset:
   * wait as long as it takes. While the cluster answers `cluster_state:fail` (CLUSTERDOWN: a slot has no master)
   * ioredis never reports ready — its ready check fails and it reconnects, again and again — so an unbounded wait
   * is silent for the whole outage; the worker's start-up (services/worker/startup.ts) bounds it to log and retry.
   */
  readyTimeoutMs?: number;
}

/** Resolves once a Cluster client is ready; rejects on 'end', or after `timeoutMs` naming its status and last error. */
async function clusterReady(client: Cluster, timeoutMs?: number): Promise<void> {
  if (client.status === 'ready') return;
  let lastError: string | undefined;
  let onReady!: () => void;
  let onEnd!: () => void;
  const onError = (err: Error) => (lastError = err.message);
  let timer: NodeJS.Timeout | undefined;
  try {
    await new Promise<void>((resolve, reject) => {
      onReady = resolve;
      onEnd = () => reject(new Error('Redis Cluster connection ended before it was ready'));
      client.once('ready', onReady);
      client.once('end', onEnd);
      client.on('error', onError);
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () => reject(new Error(`Redis Cluster not ready within ${timeoutMs} ms (client ${client.status}${lastError ? `; last error: ${lastError}` : ''})`)),
          timeoutMs,
        );
      }
    });
  } finally {
    clearTimeout(timer);
    client.off('ready', onReady);
    client.off('end', onEnd);
    client.off('error', onError);
  }
}

/**
 * Reads the policy from INFO (works where CONFIG is disabled, e.g. managed Redis) — on every master of a
 * cluster, since each holds its own share of the queues. Throws EvictionPolicyError when one is not noeviction.
 * Any other error (a master that is down: "Connection is closed."; a cluster not ready in time) means Redis is
 * not reachable yet, not that it is misconfigured.
 */
export async function assertNoEviction(client: RedisClient, opts: EvictionCheckOptions = {}): Promise<void> {
  if (isCluster(client)) await clusterReady(client, opts.readyTimeoutMs);
  for (const node of masterNodes(client)) {
    // A cluster's node connections are lazy; a fail-fast one refuses commands before it has connected.
    if (node.status === 'wait') await node.connect();
    const policy = await evictionPolicy(node);
    if (policy !== 'noeviction') {
      throw new EvictionPolicyError(policy, isCluster(client) ? `${node.options.host}:${node.options.port}` : undefined);
    }
  }
}
