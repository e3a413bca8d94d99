/**
 * The operating guide's JSON endpoints, kept for its users: GET /queue/status, /queue/metrics,
 * /queue/:queue/metrics. Counts come from the same reads as the bullmq_queue_jobs gauges; latencies (ms, as in
 * the guide) are end-to-end over the most recent completed jobs; throughput is completed jobs/s over the last
 * minute. "waitingCount" is waiting + prioritized: what the depth alert calls queue depth. "paused" is the queue's
 * own flag (BullMQ 6 has no paused job state: a paused queue's jobs are counted as waiting).
 * Anonymous, so served from one shared snapshot read at most once per second (../queue-snapshot.ts): polling
 * them cannot slow enqueues down. `timestamp` is when the snapshot was read.
 */
import type { FastifyInstance } from 'fastify';
import { QUEUE_NAMES, type QueueName } from '../../common/queue-catalog';
import type { QueueSnapshot } from '../queue-snapshot';
import { catalogQueue } from '../errors';

function queueMetrics(queueName: QueueName, { state, latency, stalledCount }: QueueSnapshot, readAt: Date) {
  const c = state.counts;
  return {
    queueName,
    activeCount: c.active,
    waitingCount: c.waiting + c.prioritized,
    prioritizedCount: c.prioritized,
    completedCount: c.completed,
    failedCount: c.failed,
    delayedCount: c.delayed,
    paused: state.paused,
    stalledCount,
    workers: state.workers,
    oldestWaitingAgeSeconds: Math.round(state.oldestWaitingAgeSeconds * 1000) / 1000,
    averageLatency: latency.averageLatency,
    p95Latency: latency.p95Latency,
    p99Latency: latency.p99Latency,
    throughput: latency.throughput,
    timestamp: readAt.toISOString(),
  };
}

export default async function queueCompatRoutes(app: FastifyInstance) {
  app.get('/queue/metrics', async () => {
    const snapshot = await app.queueSnapshot.get();
    return { success: true, data: QUEUE_NAMES.map((q) => queueMetrics(q, snapshot.queues[q], snapshot.readAt)) };
  });

  app.get<{ Params: { queue: string } }>('/queue/:queue/metrics', async (request) => {
    const queue = catalogQueue(request.params.queue);
    const snapshot = await app.queueSnapshot.get();
    return { success: true, data: queueMetrics(queue, snapshot.queues[queue], snapshot.readAt) };
  });

  app.get('/queue/status', async () => {
    const snapshot = await app.queueSnapshot.get();
    const states = QUEUE_NAMES.map((q) => snapshot.queues[q].state);
    const queues = Object.fromEntries(
      QUEUE_NAMES.map((q, i) => {
        const s = states[i]!;
        return [q, { ...s.counts, paused: s.paused, workers: s.workers, oldestWaitingAgeSeconds: s.oldestWaitingAgeSeconds }];
      }),
    );
    const totals = { waiting: 0, active: 0, delayed: 0, prioritized: 0, failed: 0, completed: 0 };
    for (const s of states) for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += s.counts[k];
    const noWorkers = QUEUE_NAMES.filter((_, i) => states[i]!.workers === 0);
    return {
      success: true,
      data: {
        status: noWorkers.length === 0 ? 'healthy' : 'degraded',
        ...(noWorkers.length ? { issues: noWorkers.map((q) => `no worker consuming "${q}"`) } : {}),
        queues,
        totals,
        timestamp: snapshot.readAt.toISOString(),
      },
    };
  });
}
