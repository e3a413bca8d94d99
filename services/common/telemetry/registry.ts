/**
 * One explicit registry per process, exposed in OpenMetrics format so histogram exemplars (trace ids) reach
 * Prometheus. Default Node.js metrics are registered without a prefix so standard dashboards work.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics, type OpenMetricsContentType } from 'prom-client';

export type MetricsRegistry = Registry<OpenMetricsContentType>;

export function createRegistry(opts: { defaultMetrics?: boolean } = {}): MetricsRegistry {
  const registry = new Registry<OpenMetricsContentType>();
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Buckets per signal, in seconds.
 * - job wait: from a few ms (idle worker picks up at once) to 10 minutes (a real backlog).
 * - job processing: 5 ms to 60 s (webhook timeout is 30 s; anything beyond is a timeout).
 * - job end to end: 50 ms to 10 minutes, with a boundary at every latency objective and alert threshold of
 *   observability/thresholds.yaml (0.6, 0.8, 1, 1.5, 2, 3 s), so "share of jobs within the objective" is an exact
 *   bucket ratio rather than an interpolation (test/unit/buckets.test.ts keeps them in step).
 * - HTTP: 1 ms to 10 s (API answers in ms; the request timeout is 10 s).
 */
export const BUCKETS = {
  jobWait: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
  jobE2e: [0.05, 0.1, 0.25, 0.5, 0.6, 0.8, 1, 1.5, 2, 3, 5, 10, 30, 60, 120, 300, 600],
  jobProcessing: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  http: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
} as const;

/** Exemplar labels for a sampled trace (none otherwise: an exemplar must lead to a trace that exists). */
export function traceExemplar(traceId: string | undefined): Record<string, string> | undefined {
  return traceId ? { trace_id: traceId } : undefined;
}

/**
 * A counter whose one label has a known, bounded set of values (`{ queue: QUEUE_NAMES }`), every series created at
 * 0 so rates start at 0 instead of appearing on the first event.
 */
export function boundedCounter<L extends string>(registry: MetricsRegistry, name: string, help: string, label: Record<L, readonly string[]>): Counter<L> {
  const [labelName, values] = Object.entries(label)[0] as [L, readonly string[]];
  const counter = new Counter({ name, help, labelNames: [labelName], registers: [registry] });
  for (const value of values) counter.inc({ [labelName]: value } as Partial<Record<L, string>>, 0);
  return counter;
}

/** A histogram by labels with trace exemplars: the shape of every latency metric here. */
export function exemplarHistogram<L extends string>(
  registry: MetricsRegistry,
  spec: { name: string; help: string; labels: readonly L[]; buckets: readonly number[] },
): Histogram<L> {
  return new Histogram({
    name: spec.name,
    help: spec.help,
    labelNames: spec.labels,
    buckets: [...spec.buckets],
    enableExemplars: true,
    registers: [registry],
  });
}
