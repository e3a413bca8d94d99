/** Links an alert carries beyond its runbook and dashboard (thresholds.yaml `links:`). */
import type { Thresholds } from '../../services/common/thresholds';

/** Links from a queue's failure or latency alert to where the failing jobs are (console) and why (traces). */
export interface FailureLinks {
  /** The console's page of the queue's failed jobs (bull-board, services/api/routes/console.ts). */
  console_url: string;
  /** A Jaeger search for the queue's failing `process` spans (span names: services/common/telemetry/trace-context.ts). */
  traces_url: string;
}

/** Templated on the alert's own `queue` label, so one rule covering every other queue links right too. */
export function failureLinks(t: Thresholds): FailureLinks {
  const tags = encodeURIComponent(JSON.stringify({ error: 'true' }));
  return {
    console_url: `${t.links.console_base_url}/queue/{{ $labels.queue }}?status=failed`,
    traces_url: `${t.links.jaeger_base_url}/search?service=worker&operation=process%20{{ $labels.queue }}&tags=${tags}&lookback=1h`,
  };
}

