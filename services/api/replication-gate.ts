/**
 * The replication check after an add: how many replicas must hold the write before the 202 (per queue, from the
 * config: the catalog's durability or REDIS_WAIT_REPLICAS), then Redis WAIT on the node that took the write
 * (common/redis.ts waitForReplicas). A WAIT that falls short throws ReplicationTimeoutError → 503
 * REDIS_NOT_REPLICATED: the outcome is unknown to the client, which retries with its Idempotency-Key.
 *
 * The catalog's durability applies "when the node has replicas": a single Redis without replicas (a laptop, the
 * native stack) cannot acknowledge on one, and waiting would refuse every payment. Each master's replica count is
 * read from INFO replication (replicas in state online) and kept for REPLICA_COUNT_TTL_MS, refreshed in the
 * background, so an enqueue costs no extra round trip except the first on a node. A failover gives a new master
 * connection, hence a fresh count.
 */
import type { Redis } from 'ioredis';
import type { QueueName } from '../common/queue-catalog';
import type { ReplicaAcks } from '../common/config/shared';
import { nodeForKey, type RedisClient, waitForReplicas } from '../common/redis';

const REPLICA_COUNT_TTL_MS = 5_000;

/** Replicas in state=online in an INFO replication reply ("slave0:ip=…,port=…,state=online,…"). */
export function onlineReplicas(info: string): number {
  return info.split(/\r?\n/).filter((line) => /^slave\d+:/.test(line) && /(^|[:,])state=online(,|$)/.test(line)).length;
}

interface ReplicaCount {
  /** Unknown until the first INFO answered. */
  replicas?: number;
  at: number;
  /** The INFO in flight: concurrent enqueues share it. */
  reading?: Promise<number>;
}

export class ReplicationGate {
  /** Keyed by node connection: a node that leaves the pool (failover, reshard) takes its entry with it. */
  private readonly counts = new WeakMap<Redis, ReplicaCount>();

  constructor(
    private readonly client: RedisClient,
    private readonly acks: Record<QueueName, ReplicaAcks>,
    private readonly timeoutMs: number,
  ) {}

  /**
   * After the add of a job of `queue` (`key`: any key of that queue, naming its node): resolves once the wanted
   * replicas hold it, at once when none are wanted. Returns the number waited for (0: no WAIT was sent).
   */
  async confirm(queue: QueueName, key: string): Promise<number> {
    const { replicas, onlyWithReplicas } = this.acks[queue];
    if (replicas === 0) return 0;
    const wanted = onlyWithReplicas ? Math.min(replicas, await this.replicasOf(nodeForKey(this.client, key))) : replicas;
    if (wanted === 0) return 0;
    await waitForReplicas(this.client, key, wanted, this.timeoutMs);
    return wanted;
  }

  private async replicasOf(node: Redis): Promise<number> {
    let entry = this.counts.get(node);
    if (!entry) {
      entry = { at: 0 };
      this.counts.set(node, entry);
    }
    const known = entry.replicas;
    if (known !== undefined && Date.now() - entry.at < REPLICA_COUNT_TTL_MS) return known;
    const current = entry;
    current.reading ??= node
      .info('replication')
      .then((info) => {
        current.replicas = onlineReplicas(info);
        current.at = Date.now();
        return current.replicas;
      })
      .finally(() => (current.reading = undefined));
    if (known === undefined) return current.reading;
    // Stale: answer with the last count and let the read refresh it for the next enqueue (a failed read keeps it).
    current.reading.catch(() => undefined);
    return known;
  }
}
