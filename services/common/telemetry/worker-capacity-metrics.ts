/**
 * bullmq_worker_concurrency{queue}: the job slots this worker process runs for each queue it consumes (its
 * Worker's concurrency). Summed over replicas it is the queue's capacity, which BullMQWorkersSaturated compares
 * with the active jobs (observability/generate/rules.ts) — a saturation judged against what is really deployed.
 */
import { Gauge } from 'prom-client';
import type { MetricsRegistry } from './registry';

/** One series per queue consumed here (`queues`), none for the queues other replicas consume. */
export function registerWorkerConcurrency(registry: MetricsRegistry, queues: readonly string[], concurrency: Readonly<Record<string, number>>): void {
  const gauge = new Gauge({
    name: 'bullmq_worker_concurrency',
    help: "Jobs this worker process runs in parallel for the queue (its Worker's concurrency); the sum over replicas is the queue's capacity.",
    labelNames: ['queue'] as const,
    registers: [registry],
  });
  for (const queue of queues) gauge.set({ queue }, concurrency[queue]!);
}
