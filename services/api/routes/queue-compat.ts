/**
 * The operating guide's JSON endpoints, kept for its users: GET /queue/status, /queue/health, /queue/metrics,
 * /queue/:queue/metrics. A queue is degraded when no worker consumes it or its dependency's circuit is open.
 * Counts come from the same reads as the bullmq_queue_jobs gauges; latencies (ms, as in
 * the guide) are end-to-end over the most recent completed jobs; throughput is completed jobs/s over the last
 * minute. "waitingCount" is waiting + prioritized: what the depth alert calls queue depth. "paused" is the queue's
 * own flag (BullMQ 6 has no paused job state: a paused queue's jobs are counted as waiting).
 * Anonymous, so served from one shared snapshot read at most once per second (../queue-snapshot.ts): polling
 * them cannot slow enqueues down. `timestamp` is when the snapshot was read.
 */
import type { FastifyInstance } from 'fastify';
import { QUEUE_CATALOG, QUEUE_NAMES, type QueueName } from '../../common/queue-catalog';
import type { QueueSnapshot, QueuesSnapshot } from '../queue-snapshot';
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

/**
 * What makes a queue degraded: no worker consumes it, or its outbound dependency has a circuit open (its jobs
 * wait in delayed until the dependency answers again: services/worker/outbound/).
 */
function queueIssues(snapshot: QueuesSnapshot): string[] {
  const issues: string[] = [];
  for (const q of QUEUE_NAMES) {
    const s = snapshot.queues[q];
    if (s.state.workers === 0) issues.push(`no worker consuming "${q}"`);
    if (s.openCircuits > 0) {
      const dependency = QUEUE_CATALOG[q].outbound.dependency;
      issues.push(
        dependency === 'webhook_host'
          ? `"${q}": ${s.openCircuits} webhook_host circuit(s) open; those hosts' jobs wait`
          : `"${q}": ${dependency} circuit open; its jobs wait`,
      );
    }
  }
  return issues;
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
    const issues = queueIssues(snapshot);
    return {
      success: true,
      data: {
        status: issues.length === 0 ? 'healthy' : 'degraded',
        ...(issues.length ? { issues } : {}),
        queues,
        totals,
        timestamp: snapshot.readAt.toISOString(),
      },
    };
  });

  // The same verdict per queue, without the counts: what a status page or a probe of the job system reads.
  app.get('/queue/health', async () => {
    const snapshot = await app.queueSnapshot.get();
    const issues = queueIssues(snapshot);
    const queues = Object.fromEntries(
      QUEUE_NAMES.map((q) => {
        const s = snapshot.queues[q];
        return [q, { status: s.state.workers === 0 || s.openCircuits > 0 ? 'degraded' : 'healthy', workers: s.state.workers, openCircuits: s.openCircuits }];
      }),
    );
    return {
      success: true,
      data: { status: issues.length === 0 ? 'healthy' : 'degraded', ...(issues.length ? { issues } : {}), queues, timestamp: snapshot.readAt.toISOString() },
    };
  });
}
