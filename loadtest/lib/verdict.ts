/**
 * The same threshold verdicts for every runner: per-queue HTTP p95 and error ratio, as k6 judges them
 * (`http_req_duration{queue:Q}: p(95)<limit`, `http_req_failed{queue:Q}: rate<limit` — strictly below).
 */
import type { LoadThresholds } from './scenarios';

export interface QueueResult {
  queue: string;
  requests: number;
  errors: number;
  p50: number;
  p95: number;
  p99: number;
  /** Responses by HTTP status ("error" for connection errors and timeouts); no-k6 runner only. */
  statuses?: Record<string, number>;
}

export interface Verdict {
  queue: string;
  check: string;
  limit: number;
  actual: number;
  pass: boolean;
}

export function p95LimitMs(t: LoadThresholds, queue: string): number {
  return t.queues[queue]?.http_p95_ms ?? t.default_http_p95_ms;
}

export function verdicts(results: QueueResult[], t: LoadThresholds): Verdict[] {
  const out: Verdict[] = [];
  for (const r of results) {
    const p95Limit = p95LimitMs(t, r.queue);
    // A queue that got no request at all measured nothing: both checks fail rather than pass vacuously.
    out.push({ queue: r.queue, check: 'http p95 (ms)', limit: p95Limit, actual: r.p95, pass: r.requests > 0 && r.p95 < p95Limit });
    const ratio = r.requests ? r.errors / r.requests : 1;
    out.push({ queue: r.queue, check: 'error ratio', limit: t.error_ratio, actual: Number(ratio.toFixed(4)), pass: r.requests > 0 && ratio < t.error_ratio });
  }
  return out;
}
