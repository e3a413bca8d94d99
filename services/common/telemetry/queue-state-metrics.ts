/**
 * Queue state gauges, read from Redis at scrape time. Every worker replica exports them for every queue, and
 * all of them read the same Redis, so replicas report identical values: dashboards and rules aggregate with
 * `max by (queue, state)`, never `sum` (docs/architecture.md). No home-made collector process to keep alive.
 */
import { Gauge } from 'prom-client';
import type { Queue } from 'bullmq';
import type { MetricsRegistry } from './registry';
import { readQueueState, QUEUE_STATES } from '../queue-stats';

export function registerQueueStateMetrics(registry: MetricsRegistry, queues: readonly Queue[]): void {
  // One read serves the four gauges: prom-client calls each metric's collect during a scrape, so the first
  // call refreshes all of them and the others reuse that read.
  let inflight: Promise<void> | undefined;
  let lastRead = 0;
  const refresh = async (): Promise<void> => {
    if (inflight) return inflight;
    if (Date.now() - lastRead < 500) return;
    inflight = (async () => {
      const states = await Promise.all(queues.map((q) => readQueueState(q)));
      jobs.reset();
      states.forEach((s, i) => {
        const queue = queues[i]!.name;
        for (const state of QUEUE_STATES) jobs.set({ queue, state }, s.counts[state]);
        oldest.set({ queue }, s.oldestWaitingAgeSeconds);
        workers.set({ queue }, s.workers);
        paused.set({ queue }, s.paused ? 1 : 0);
      });
      lastRead = Date.now();
    })().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };
  const collect = async (): Promise<void> => {
    try {
      await refresh();
    } catch {
      // Redis unreachable: export nothing rather than stale values; RedisDown and TargetDown alert on absence.
      jobs.reset();
      oldest.reset();
      workers.reset();
      paused.reset();
    }
  };

  // All four are read together, from one snapshot, whenever any of them is scraped.
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[]) =>
    new Gauge({ name, help, labelNames, registers: [registry], collect });
  const jobs = gauge('bullmq_queue_jobs', 'Jobs in the queue by state (every worker replica reports the same value: aggregate with max).', ['queue', 'state']);
  const oldest = gauge('bullmq_queue_oldest_waiting_age_seconds', 'Age of the oldest job waiting to be processed (0 when none waits).', ['queue']);
  const workers = gauge('bullmq_queue_workers', 'Worker connections consuming the queue, across all replicas.', ['queue']);
  // BullMQ 6 has no paused job state (a paused queue's jobs stay in wait): the pause is the queue's own flag.
  const paused = gauge('bullmq_queue_paused', 'Whether the queue is paused: 1 while paused (its jobs stay in wait), else 0.', ['queue']);
}
