/**
 * Reads queue state from Redis the way BullMQ stores it — job counts, the head of the wait list and of each
 * priority band — never with KEYS/SCAN. Shared by the queue-state gauges (worker) and the guide's JSON
 * endpoints (API), so both report the same numbers.
 */
import type { Queue } from 'bullmq';
import type { RedisClient } from './redis';
import { PRIORITIES } from './queue-catalog';

/** Job states as BullMQ 6 stores them: a paused queue keeps its jobs in wait, and is itself flagged paused. */
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'] as const;
export type QueueState = (typeof QUEUE_STATES)[number];

export interface QueueStateSnapshot {
  counts: Record<QueueState, number>;
  oldestWaitingAgeSeconds: number;
  workers: number;
  /** The queue is paused (Queue#pause): its waiting jobs stay in wait until it is resumed. */
  paused: boolean;
}

/**
 * The queue's ioredis connection. BullMQ 6 keeps it on the Redis backend and types it as its own client
 * interface; this stack always hands BullMQ ioredis connections (./redis.ts).
 */
export const queueRedisClient = async (queue: Queue): Promise<RedisClient> => (await queue.getBackend().client) as unknown as RedisClient;

const PRIORITY_BAND = 0x100000000; // BullMQ's prioritized score = priority * 2^32 + insertion counter

/** Job ids at the head of each waiting structure: wait list's oldest (right end) and each priority band's first. */
async function headJobIds(queue: Queue): Promise<string[]> {
  const client = await queueRedisClient(queue);
  const pipeline = client.pipeline();
  pipeline.lindex(queue.toKey('wait'), -1);
  for (const p of Object.values(PRIORITIES)) {
    pipeline.zrangebyscore(queue.toKey('prioritized'), p * PRIORITY_BAND, (p + 1) * PRIORITY_BAND - 1, 'LIMIT', 0, 1);
  }
  const results = (await pipeline.exec()) ?? [];
  const ids: string[] = [];
  for (const [err, value] of results) {
    if (err) throw err;
    if (typeof value === 'string') ids.push(value);
    else if (Array.isArray(value) && typeof value[0] === 'string') ids.push(value[0]);
  }
  return ids;
}

/** Seconds since the oldest waiting job became eligible (enqueue + delay); 0 when nothing waits. */
export async function oldestWaitingAgeSeconds(queue: Queue, now = Date.now()): Promise<number> {
  const ids = await headJobIds(queue);
  if (ids.length === 0) return 0;
  const client = await queueRedisClient(queue);
  const pipeline = client.pipeline();
  for (const id of ids) pipeline.hmget(queue.toKey(id), 'timestamp', 'delay');
  const results = (await pipeline.exec()) ?? [];
  let oldest = now;
  for (const [err, value] of results) {
    if (err || !Array.isArray(value) || value[0] == null) continue; // job removed between the two reads
    const eligibleAt = Number(value[0]) + Number(value[1] ?? 0);
    if (eligibleAt < oldest) oldest = eligibleAt;
  }
  return Math.max(0, (now - oldest) / 1000);
}

export async function readQueueState(queue: Queue): Promise<QueueStateSnapshot> {
  const [counts, oldestWaiting, workers, paused] = await Promise.all([
    queue.getJobCounts(...QUEUE_STATES),
    oldestWaitingAgeSeconds(queue),
    queue.getWorkersCount(),
    queue.isPaused(),
  ]);
  return {
    counts: Object.fromEntries(QUEUE_STATES.map((s) => [s, counts[s] ?? 0])) as Record<QueueState, number>,
    oldestWaitingAgeSeconds: oldestWaiting,
    workers,
    paused,
  };
}

export interface LatencySummary {
  /** End-to-end latency (finish − (enqueue + delay)) of the most recent completed jobs, in ms. */
  averageLatency: number;
  p95Latency: number;
  p99Latency: number;
  /** Completed jobs per second over the last minute. */
  throughput: number;
  sampleSize: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length) - 1;
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!;
}

export async function readLatencySummary(queue: Queue, sample = 500, now = Date.now()): Promise<LatencySummary> {
  const client = await queueRedisClient(queue);
  const completedKey = queue.toKey('completed');
  // completed is a sorted set scored by finishedOn: newest ids first, and an exact count for the last minute.
  const [ids, lastMinute] = await Promise.all([
    client.zrevrange(completedKey, 0, sample - 1),
    client.zcount(completedKey, now - 60_000, '+inf'),
  ]);
  const pipeline = client.pipeline();
  for (const id of ids) pipeline.hmget(queue.toKey(id), 'timestamp', 'delay', 'finishedOn');
  const rows = ids.length > 0 ? ((await pipeline.exec()) ?? []) : [];
  const latencies: number[] = [];
  for (const [err, value] of rows) {
    if (err || !Array.isArray(value) || value[0] == null || value[2] == null) continue;
    latencies.push(Number(value[2]) - (Number(value[0]) + Number(value[1] ?? 0)));
  }
  latencies.sort((a, b) => a - b);
  const sum = latencies.reduce((a, b) => a + b, 0);
  return {
    averageLatency: latencies.length ? Math.round(sum / latencies.length) : 0,
    p95Latency: percentile(latencies, 95),
    p99Latency: percentile(latencies, 99),
    throughput: Math.round((lastMinute / 60) * 100) / 100,
    sampleSize: latencies.length,
  };
}
