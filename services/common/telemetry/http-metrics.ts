/**
 * API metrics. http_request_duration_seconds is written by our own Fastify hook (services/api/plugins/app/
 * telemetry.ts) rather than fastify-metrics: that library's current release needs Node 22 and cannot attach
 * trace-id exemplars, which are the point of this project.
 */
import { BUCKETS, boundedCounter, exemplarHistogram, type MetricsRegistry, traceExemplar } from './registry';

// Shutdown refusals (503 while closing) are answered by Fastify before any hook runs and cannot be counted
// here; they last at most the shutdown grace period.
// auth_rate_limited: too many wrong keys from one client address (services/api/failed-auth.ts).
export const REJECTION_REASONS = ['rate_limited', 'auth_rate_limited', 'overloaded'] as const;
export type RejectionReason = (typeof REJECTION_REASONS)[number];

export interface ApiMetrics {
  observeRequest(method: string, route: string, statusCode: number, seconds: number, traceId?: string): void;
  enqueued(queue: string): void;
  /** A job an idempotent replay found lost from Redis and added again under its id (services/api/enqueue.ts). */
  readded(queue: string): void;
  rejected(reason: RejectionReason): void;
}

export function createApiMetrics(registry: MetricsRegistry, queues: readonly string[]): ApiMetrics {
  const duration = exemplarHistogram(registry, {
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status code.',
    labels: ['method', 'route', 'status_code'],
    buckets: BUCKETS.http,
  });
  const enqueued = boundedCounter(registry, 'bullmq_jobs_enqueued_total', 'Jobs accepted by the API and added to their queue.', { queue: queues });
  const readded = boundedCounter(
    registry,
    'bullmq_jobs_readded_total',
    'Jobs an idempotent replay found missing from Redis although they never ran (lost, e.g. in a failover) and added again under their id.',
    { queue: queues },
  );
  const rejected = boundedCounter(registry, 'api_requests_rejected_total', 'Requests refused before reaching a route: per-key rate limit or failed-auth limit (429), load shedding (503).', { reason: REJECTION_REASONS });

  return {
    observeRequest: (method, route, statusCode, seconds, traceId) =>
      duration.observe({
        labels: { method, route, status_code: String(statusCode) },
        value: seconds,
        exemplarLabels: traceExemplar(traceId),
      }),
    enqueued: (queue) => enqueued.inc({ queue }),
    readded: (queue) => readded.inc({ queue }),
    rejected: (reason) => rejected.inc({ reason }),
  };
}

export const noopApiMetrics: ApiMetrics = {
  observeRequest: () => undefined,
  enqueued: () => undefined,
  readded: () => undefined,
  rejected: () => undefined,
};
