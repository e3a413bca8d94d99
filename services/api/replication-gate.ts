/**
 * The replication check after an add: how many replicas must hold the write before the 202 (per queue, from the
 * config: the catalog's durability or REDIS_WAIT_REPLICAS), then Redis WAIT on the node that took the write
 * (grouped, below). A WAIT that falls short throws ReplicationTimeoutError → 503
 * REDIS_NOT_REPLICATED: the outcome is unknown to the client, which retries with its Idempotency-Key.
 *
 * The catalog's durability applies "when the node has replicas": a single Redis without replicas (a laptop, the
 * native stack) cannot acknowledge on one, and waiting would refuse every payment. Each master's replica count is
 * read from INFO replication (replicas in state online) and kept for REPLICA_COUNT_TTL_MS, refreshed in the
 * background, so an enqueue costs no extra round trip except the first on a node. A failover gives a new master
 * connection, hence a fresh count.
 *
 * WAIT blocks the connection it is sent on — it must be the one that wrote — and every command queued behind it
 * (other requests' adds, /readyz's PING) for up to its timeout. A WAIT that cannot succeed therefore costs far
 * more than its own refusal: with no replica online every add held the shared connection 200 ms, commands behind
 * it timed out, and a retrying client population turned that into minutes of 503 REDIS_UNAVAILABLE (campaign seed
 * 105, docs/reliability.md finding 6). So the gate answers REDIS_NOT_REPLICATED without a WAIT when it knows the
 * WAIT would fall short: fewer replicas online than wanted (re-read every SHORT_RECHECK_MS while short), or a WAIT
 * on that node fell short less than SHORT_HOLD_MS ago (a frozen replica still listed online) — at most one
 * blocking WAIT per node per SHORT_HOLD_MS, which is also the Retry-After the refusal carries.
 * And WAITs are grouped per node (group commit): one in flight at a time; the adds that finish meanwhile share
 * the next one, sent when it returns — it covers every write the connection made before it, theirs included. So
 * concurrent adds never queue WAIT after WAIT on the connection (20 concurrent adds to a node whose replica just
 * froze were 20 × 200 ms before), and a busy API sends far fewer WAITs than adds.
 */
import type { Redis } from 'ioredis';
import type { QueueName } from '../common/queue-catalog';
import type { ReplicaAcks } from '../common/config/shared';
import { nodeForKey, type RedisClient, ReplicationTimeoutError } from '../common/redis';

const REPLICA_COUNT_TTL_MS = 5_000;
/** While a node has fewer replicas online than wanted, its count is read again this often. */
const SHORT_RECHECK_MS = 500;
/** After a WAIT fell short on a node, adds to it are refused without WAIT for this long (= Retry-After, 1 s). */
export const SHORT_HOLD_MS = 1_000;

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
  /** Until when adds to this node are refused without WAIT: a WAIT on it fell short. */
  shortUntil?: number;
  /** The WAIT in flight on this node's connection. */
  inflight?: Promise<unknown>;
  /** The next WAIT, not sent yet: adds that finish while one is in flight join it. */
  next?: { wanted: number; acknowledged: Promise<number | 'held'> };
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
    const node = nodeForKey(this.client, key);
    const online = await this.replicasOf(node, replicas);
    const wanted = onlyWithReplicas ? Math.min(replicas, online) : replicas;
    if (wanted === 0) return 0;
    // Known to fall short: refuse without blocking the connection (see the top of this file).
    if (online < wanted) throw new ReplicationTimeoutError(online, wanted, 0, `${online} of ${wanted} replicas online`);
    const acknowledged = await this.groupedWait(this.entry(node), node, wanted);
    if (acknowledged === 'held') throw new ReplicationTimeoutError(0, wanted, 0, `a replica acknowledgement on this node fell short less than ${SHORT_HOLD_MS} ms ago`);
    if (acknowledged < wanted) throw new ReplicationTimeoutError(acknowledged, wanted, this.timeoutMs);
    return wanted;
  }

  private entry(node: Redis): ReplicaCount {
    let entry = this.counts.get(node);
    if (!entry) {
      entry = { at: 0 };
      this.counts.set(node, entry);
    }
    return entry;
  }

  /** Joins the node's next WAIT (sent once the one in flight returns); 'held' while a shortfall is recent. */
  private groupedWait(entry: ReplicaCount, node: Redis, wanted: number): Promise<number | 'held'> {
    if (entry.shortUntil !== undefined && Date.now() < entry.shortUntil) return Promise.resolve('held');
    if (entry.next) {
      entry.next.wanted = Math.max(entry.next.wanted, wanted);
      return entry.next.acknowledged;
    }
    const next: NonNullable<ReplicaCount['next']> = { wanted, acknowledged: Promise.resolve(0) };
    next.acknowledged = (entry.inflight ?? Promise.resolve())
      .then(() => undefined, () => undefined)
      .then(async () => {
        entry.next = undefined; // from here on, finishing adds start the WAIT after this one
        if (entry.shortUntil !== undefined && Date.now() < entry.shortUntil) return 'held' as const;
        const sent = node.wait(next.wanted, this.timeoutMs);
        entry.inflight = sent;
        const acknowledged = await sent;
        if (acknowledged < next.wanted) {
          entry.shortUntil = Date.now() + SHORT_HOLD_MS;
          entry.at = 0; // and read the replica count again: a replica gone for good is then refused from the count
        }
        return acknowledged;
      });
    entry.next = next;
    return next.acknowledged;
  }

  private async replicasOf(node: Redis, wanted: number): Promise<number> {
    const entry = this.entry(node);
    const known = entry.replicas;
    const ttl = known !== undefined && known < wanted ? SHORT_RECHECK_MS : REPLICA_COUNT_TTL_MS;
    if (known !== undefined && Date.now() - entry.at < ttl) return known;
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
