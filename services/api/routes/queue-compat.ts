/**
 * The operating guide's JSON endpoints, kept for its users: GET /queue/status, /queue/metrics,
 * /queue/:queue/metrics. Counts come from the same reads as the bullmq_queue_jobs gauges; latencies (ms, as in
 * the guide) are end-to-end over the most recent completed jobs; throughput is completed jobs/s over the last
 * minute. "waitingCount" is waiting + prioritized: what the depth alert calls queue depth.
 */
import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import type { RedisClient } from '../../common/redis';
import { QUEUE_NAMES, QueueName, isQueueName } from '../../common/queue-catalog';
import { readLatencySummary, readQueueState } from '../../common/queue-stats';
import { ApiError } from '../errors';

async function queueMetrics(queue: Queue) {
  const client = (await queue.client) as unknown as RedisClient;
  const [state, latency, stalledCount] = await Promise.all([
    readQueueState(queue),
    readLatencySummary(queue),
    client.scard(queue.toKey('stalled')),
  ]);
  const c = state.counts;
  return {
    queueName: queue.name,
    activeCount: c.active,
    waitingCount: c.waiting + c.prioritized,
    prioritizedCount: c.prioritized,
    completedCount: c.completed,
    failedCount: c.failed,
    delayedCount: c.delayed,
    pausedCount: c.paused,
    stalledCount,
    workers: state.workers,
    oldestWaitingAgeSeconds: Math.round(state.oldestWaitingAgeSeconds * 1000) / 1000,
    averageLatency: latency.averageLatency,
    p95Latency: latency.p95Latency,
    p99Latency: latency.p99Latency,
    throughput: latency.throughput,
    timestamp: new Date().toISOString(),
  };
}

export default async function queueCompatRoutes(app: FastifyInstance) {
  app.get('/queue/metrics', async () => ({
    success: true,
    data: await app.withRedis(() => Promise.all(QUEUE_NAMES.map((q) => queueMetrics(app.queues[q])))),
  }));

  app.get<{ Params: { queue: string } }>('/queue/:queue/metrics', async (request) => {
    const { queue } = request.params;
    if (!isQueueName(queue)) throw new ApiError(404, 'QUEUE_NOT_FOUND', `unknown queue "${queue}"`);
    return { success: true, data: await app.withRedis(() => queueMetrics(app.queues[queue as QueueName])) };
  });

  app.get('/queue/status', async () => {
    const states = await app.withRedis(() => Promise.all(QUEUE_NAMES.map((q) => readQueueState(app.queues[q]))));
    const queues = Object.fromEntries(
      QUEUE_NAMES.map((q, i) => {
        const s = states[i]!;
        return [q, { ...s.counts, workers: s.workers, oldestWaitingAgeSeconds: s.oldestWaitingAgeSeconds }];
      }),
    );
    const totals = { waiting: 0, active: 0, delayed: 0, prioritized: 0, failed: 0, completed: 0, paused: 0 };
    for (const s of states) for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += s.counts[k];
    const noWorkers = QUEUE_NAMES.filter((_, i) => states[i]!.workers === 0);
    return {
      success: true,
      data: {
        status: noWorkers.length === 0 ? 'healthy' : 'degraded',
        ...(noWorkers.length ? { issues: noWorkers.map((q) => `no worker consuming "${q}"`) } : {}),
        queues,
        totals,
        timestamp: new Date().toISOString(),
      },
    };
  });
}
