/**
 * One cached snapshot of every queue for the guide's JSON endpoints (/queue/status, /queue/metrics,
 * /queue/:queue/metrics). They are anonymous and each read costs hundreds of Redis commands, so they must not
 * let a poller slow enqueues down: whatever the call rate, one API process reads Redis for them at most once per
 * SNAPSHOT_TTL_MS. Concurrent callers share the read in flight; everyone within the TTL gets the same snapshot
 * (its `timestamp` says when it was read). A failed read is remembered for the TTL too, so an outage is not
 * hammered either. The operator console reads it too, for the circuits it shows per queue (console-circuits.ts),
 * so the console and /queue/health agree on which queues are degraded by an open circuit.
 */
import type { Queue } from 'bullmq';
import { OUTBOUND_DEPENDENCIES, QUEUE_CATALOG, QUEUE_NAMES, type OutboundDependency, type QueueName } from '../common/queue-catalog';
import type { CircuitInfo, CircuitStore } from '../common/outbound-circuits';
import { type LatencySummary, type QueueStateSnapshot, queueRedisClient, readLatencySummary, readQueueState } from '../common/queue-stats';

export const SNAPSHOT_TTL_MS = 1_000;

export interface QueueSnapshot {
  state: QueueStateSnapshot;
  latency: LatencySummary;
  stalledCount: number;
  /** Circuits of this queue's outbound dependency (catalog) that are not closed: the queue is degraded meanwhile. */
  openCircuits: number;
  /** Those circuits (target, state, next probe, recent failures), oldest opened first: what the console shows. */
  circuits: CircuitInfo[];
}

export interface QueuesSnapshot {
  queues: Record<QueueName, QueueSnapshot>;
  /** When the snapshot was read from Redis. */
  readAt: Date;
}

async function readQueue(queue: Queue): Promise<Omit<QueueSnapshot, 'openCircuits' | 'circuits'>> {
  const client = await queueRedisClient(queue);
  const [state, latency, stalledCount] = await Promise.all([
    readQueueState(queue),
    readLatencySummary(queue),
    client.scard(queue.toKey('stalled')),
  ]);
  return { state, latency, stalledCount };
}

export class CachedQueueSnapshot {
  private current: { at: number; value: Promise<QueuesSnapshot> } | undefined;
  /** Redis reads done so far (one per snapshot); what the tests and the benchmark count. */
  reads = 0;

  constructor(
    private readonly queues: Record<QueueName, Queue>,
    private readonly read: <T>(operation: () => Promise<T>) => Promise<T>,
    private readonly circuits?: CircuitStore,
    private readonly ttlMs = SNAPSHOT_TTL_MS,
  ) {}

  get(): Promise<QueuesSnapshot> {
    const now = Date.now();
    if (this.current && now - this.current.at < this.ttlMs) return this.current.value;
    this.reads += 1;
    const value = this.read(async () => {
      const [list, open] = await Promise.all([
        Promise.all(QUEUE_NAMES.map((q) => readQueue(this.queues[q]))),
        Promise.all(OUTBOUND_DEPENDENCIES.map(async (d) => (this.circuits ? this.circuits.list(d) : []))),
      ]);
      const openOf = (d: OutboundDependency) => open[OUTBOUND_DEPENDENCIES.indexOf(d)]!;
      return {
        queues: Object.fromEntries(
          QUEUE_NAMES.map((q, i) => {
            const circuits = openOf(QUEUE_CATALOG[q].outbound.dependency);
            return [q, { ...list[i]!, openCircuits: circuits.length, circuits }];
          }),
        ) as Record<QueueName, QueueSnapshot>,
        readAt: new Date(),
      };
    });
    value.catch(() => undefined); // callers handle it; this copy only keeps an unobserved rejection quiet
    this.current = { at: now, value };
    return value;
  }
}
