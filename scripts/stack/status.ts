/**
 * The native stack's live status line: API requests/s, depth and failing % per queue, and the alerts firing —
 * read from the stack's own Prometheus (HTTP API), so the terminal shows what the dashboards and alerts see.
 * Each signal uses the recording rule of observability/prometheus/rules/bullmq.rules.yml when the loaded rules
 * have it (drill mode loads the same names with short windows) and the raw expression otherwise.
 */
import { QUEUE_NAMES } from '../../services/common/queue-catalog';

interface Signal {
  /** Recording rule to use when Prometheus has it loaded. */
  recorded: string;
  /** What to query over the recorded series (`sum(...)` for a total). */
  overRecorded: (name: string) => string;
  /** The same signal without the recording rule. */
  raw: string;
}

export const SIGNALS = {
  requestsPerSecond: {
    recorded: 'route:http_requests:rate5m',
    overRecorded: (n) => `sum(${n})`,
    raw: 'sum(rate(http_request_duration_seconds_count{job="api"}[1m]))',
  },
  depth: {
    recorded: 'queue:bullmq_queue_depth:max',
    overRecorded: (n) => n,
    raw: 'sum by (queue) (max by (queue, state) (bullmq_queue_jobs{state=~"waiting|prioritized"}))',
  },
  failingRatio: {
    recorded: 'queue:bullmq_job_error_ratio:rate5m',
    overRecorded: (n) => n,
    raw: 'sum by (queue) (rate(bullmq_jobs_failed_total[1m])) / (sum by (queue) (rate(bullmq_jobs_completed_total[1m])) + sum by (queue) (rate(bullmq_jobs_failed_total[1m])))',
  },
} satisfies Record<string, Signal>;

export type SignalName = keyof typeof SIGNALS;

export interface QueueStatus {
  queue: string;
  depth?: number;
  /** Failed / (completed + failed) jobs, 0..1; undefined when no job finished in the window. */
  failingRatio?: number;
}

export interface FiringAlert {
  alertname: string;
  severity?: string;
  queue?: string;
  instance?: string;
}

export interface StackStatus {
  at: Date;
  requestsPerSecond?: number;
  queues: QueueStatus[];
  firing: FiringAlert[];
}

interface PromResponse<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
}

async function promGet<T>(base: string, pathAndQuery: string, signal?: AbortSignal): Promise<T> {
  const res = await fetch(`${base}${pathAndQuery}`, { signal: signal ?? AbortSignal.timeout(3_000) });
  const body = (await res.json()) as PromResponse<T>;
  if (body.status !== 'success') throw new Error(`prometheus ${pathAndQuery}: ${body.error ?? res.status}`);
  return body.data;
}

type Vector = { metric: Record<string, string>; value: [number, string] }[];

async function query(base: string, expr: string): Promise<Vector> {
  return promGet<{ result: Vector }>(base, `/api/v1/query?query=${encodeURIComponent(expr)}`).then((d) => d.result);
}

/** Names of the recording rules Prometheus has loaded. */
export async function loadedRecordingRules(prometheusUrl: string): Promise<Set<string>> {
  const data = await promGet<{ groups: { rules: { name: string; type: string }[] }[] }>(prometheusUrl, '/api/v1/rules?type=record');
  return new Set(data.groups.flatMap((g) => g.rules.filter((r) => r.type === 'recording').map((r) => r.name)));
}

/** The PromQL for each signal given the loaded recording rules. */
export function signalQueries(recorded: Set<string>): Record<SignalName, string> {
  const pick = (s: Signal) => (recorded.has(s.recorded) ? s.overRecorded(s.recorded) : s.raw);
  return { requestsPerSecond: pick(SIGNALS.requestsPerSecond), depth: pick(SIGNALS.depth), failingRatio: pick(SIGNALS.failingRatio) };
}

const finite = (text: string | undefined) => {
  const n = Number(text);
  return text !== undefined && Number.isFinite(n) ? n : undefined;
};

/** One reading of every signal plus the firing alerts (Prometheus' /api/v1/alerts, state "firing"). */
export async function readStatus(prometheusUrl: string, queries: Record<SignalName, string>, queues: readonly string[] = QUEUE_NAMES): Promise<StackStatus> {
  const [rps, depth, failing, alerts] = await Promise.all([
    query(prometheusUrl, queries.requestsPerSecond),
    query(prometheusUrl, queries.depth),
    query(prometheusUrl, queries.failingRatio),
    promGet<{ alerts: { labels: Record<string, string>; state: string }[] }>(prometheusUrl, '/api/v1/alerts'),
  ]);
  const byQueue = (v: Vector, queue: string) => finite(v.find((s) => s.metric.queue === queue)?.value[1]);
  return {
    at: new Date(),
    requestsPerSecond: finite(rps[0]?.value[1]),
    queues: queues.map((queue) => ({ queue, depth: byQueue(depth, queue), failingRatio: byQueue(failing, queue) })),
    firing: alerts.alerts
      .filter((a) => a.state === 'firing')
      .map((a) => ({ alertname: a.labels.alertname ?? '?', severity: a.labels.severity, queue: a.labels.queue, instance: a.labels.instance }))
      .sort((a, b) => `${a.alertname}${a.queue ?? ''}`.localeCompare(`${b.alertname}${b.queue ?? ''}`)),
  };
}

const num = (n: number | undefined, digits: number) => (n === undefined ? '-' : n.toFixed(digits));

/** One line: `12:00:05  api 41.2 req/s | payments depth 3 failing 48.0% | … | firing: BullMQJobErrorRateHigh(payments, warning)`. */
export function formatStatus(s: StackStatus): string {
  const time = s.at.toISOString().slice(11, 19);
  const queues = s.queues.map((q) => `${q.queue} depth ${num(q.depth, 0)} failing ${q.failingRatio === undefined ? '-' : `${(q.failingRatio * 100).toFixed(1)}%`}`);
  const firing = s.firing.length
    ? `firing: ${s.firing.map((a) => `${a.alertname}(${[a.queue ?? a.instance, a.severity].filter(Boolean).join(', ')})`).join(' ')}`
    : 'no alerts firing';
  return [`${time}  api ${num(s.requestsPerSecond, 1)} req/s`, ...queues, firing].join(' | ');
}
