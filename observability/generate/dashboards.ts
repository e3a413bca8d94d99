/**
 * Grafana dashboards as code: stable uids, Prometheus datasource uid "prometheus", threshold lines taken from
 * thresholds.yaml (never typed twice). Queue-state gauges are aggregated with max (one value per replica).
 */
import { DASHBOARD_UIDS, R } from './rules';
import { forQueue, Level, PerQueueKey, Thresholds } from './thresholds';

const DS = { type: 'prometheus', uid: 'prometheus' };

interface Target {
  expr: string;
  legendFormat: string;
}

interface PanelSpec {
  title: string;
  targets: Target[];
  unit?: string;
  /** Warning and critical lines, or one limit line (a load-test target). */
  thresholds?: Level | number;
  description?: string;
  w?: number;
  exemplar?: boolean;
}

/**
 * A panel's id follows its identity (dashboard uid + title), not its position: adding a panel (say, a new
 * per-queue override) leaves every other panel's id — and links to it (`viewPanel=`) — unchanged.
 */
export function panelId(uid: string, title: string): number {
  let h = 0x811c9dc5; // FNV-1a, 32 bit
  for (const ch of `${uid}/${title}`) {
    h ^= ch.codePointAt(0)!;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return (h % 999_999) + 1;
}

function panel(id: number, p: PanelSpec, x: number, y: number) {
  const steps: { color: string; value: number | null }[] = [{ color: 'green', value: null }];
  if (typeof p.thresholds === 'number') steps.push({ color: 'red', value: p.thresholds });
  else if (p.thresholds) steps.push({ color: 'orange', value: p.thresholds.warning }, { color: 'red', value: p.thresholds.critical });
  return {
    id,
    type: 'timeseries',
    title: p.title,
    description: p.description ?? '',
    datasource: DS,
    gridPos: { h: 8, w: p.w ?? 12, x, y },
    fieldConfig: {
      defaults: {
        unit: p.unit ?? 'short',
        custom: { thresholdsStyle: { mode: p.thresholds !== undefined ? 'line+area' : 'off' }, lineWidth: 1, fillOpacity: 10 },
        thresholds: { mode: 'absolute', steps },
      },
      overrides: [],
    },
    options: { legend: { displayMode: 'list', placement: 'bottom' }, tooltip: { mode: 'multi' } },
    targets: p.targets.map((t, i) => ({
      refId: String.fromCharCode(65 + i),
      datasource: DS,
      expr: t.expr,
      legendFormat: t.legendFormat,
      exemplar: p.exemplar ?? false,
    })),
  };
}

function dashboard(uid: string, title: string, panels: PanelSpec[], opts: { queueVar?: boolean; testidVar?: boolean } = {}) {
  let x = 0;
  let y = 0;
  const built = panels.map((p) => {
    const w = p.w ?? 12;
    if (x + w > 24) {
      x = 0;
      y += 8;
    }
    const out = panel(panelId(uid, p.title), p, x, y);
    x += w;
    return out;
  });
  const variable = (name: string, query: string, all: boolean) => ({
    name,
    type: 'query',
    datasource: DS,
    query: { query, refId: name },
    definition: query,
    includeAll: all,
    ...(all ? { multi: true, allValue: '.+', current: { text: 'All', value: '$__all' } } : {}),
    refresh: 2,
  });
  const variables = [
    ...(opts.queueVar ? [variable('queue', 'label_values(bullmq_queue_jobs, queue)', true)] : []),
    ...(opts.testidVar ? [variable('testid', 'label_values(k6_http_reqs_total, testid)', false)] : []),
  ];
  return {
    uid,
    title,
    tags: ['bullmq-observability-stack'],
    timezone: 'browser',
    schemaVersion: 39,
    version: 1,
    editable: false,
    refresh: '10s',
    time: { from: 'now-30m', to: 'now' },
    templating: { list: variables },
    annotations: { list: [] },
    links: [],
    panels: built,
  };
}

const Q = 'queue=~"$queue"';
/** The API's enqueue route pattern for a queue (the `route` label; docs/contracts.md). */
export const enqueueRoute = (queue: string) => `/v1/queues/${queue}/jobs`;

/**
 * Grafana draws one set of threshold lines per panel, and thresholds can be overridden per queue. So a signal
 * nobody overrides is one panel (all queues) with the default lines; an overridden signal is one panel for all
 * queues (no lines: they would be wrong for some) plus one panel per overriding queue with its own lines.
 */
function perQueueThresholdPanels(t: Thresholds, key: PerQueueKey, title: string, targets: (selector: string) => Target[], unit?: string): PanelSpec[] {
  const overridden = Object.keys(t.queues).filter((q) => t.queues[q]?.[key]);
  if (!overridden.length) return [{ title, unit, targets: targets(Q), thresholds: t.defaults[key] }];
  return [
    { title: `${title}, all queues`, unit, targets: targets(Q) },
    ...overridden.map((q) => ({ title: `${title} — ${q}`, unit, targets: targets(`queue="${q}"`), thresholds: forQueue(t, q, key) })),
  ];
}

export function dashboards(t: Thresholds) {
  const queues = dashboard(DASHBOARD_UIDS.queues, 'BullMQ — queues', [
    { title: 'Jobs by state (max over replicas)', targets: [{ expr: `max by (queue, state) (bullmq_queue_jobs{${Q}})`, legendFormat: '{{queue}} {{state}}' }], w: 24 },
    ...perQueueThresholdPanels(t, 'queue_depth', 'Queue depth (waiting + prioritized)', (sel) => [{ expr: `${R.depth}{${sel}}`, legendFormat: '{{queue}}' }]),
    ...perQueueThresholdPanels(t, 'active_jobs', 'Active jobs', (sel) => [{ expr: `${R.active}{${sel}}`, legendFormat: '{{queue}}' }]),
    {
      title: 'Wait time p50 / p95 / p99',
      unit: 's',
      exemplar: true,
      targets: [50, 95, 99].map((p) => ({ expr: `${R.waitP(p)}{${Q}}`, legendFormat: `{{queue}} p${p}` })),
    },
    {
      title: 'Processing time p50 / p95 / p99',
      unit: 's',
      exemplar: true,
      targets: [50, 95, 99].map((p) => ({ expr: `${R.processingP(p)}{${Q}}`, legendFormat: `{{queue}} p${p}` })),
    },
    ...perQueueThresholdPanels(t, 'job_latency_p95_seconds', 'End-to-end p95 (wait p95 + processing p95)', (sel) => [{ expr: `${R.e2eP(95)}{${sel}}`, legendFormat: '{{queue}}' }], 's'),
    {
      title: 'Throughput: enqueued vs completed vs failed (jobs/s)',
      unit: 'reqps',
      targets: [
        { expr: `sum by (queue) (rate(bullmq_jobs_enqueued_total{${Q}}[5m]))`, legendFormat: '{{queue}} enqueued' },
        { expr: `${R.completedRate}{${Q}}`, legendFormat: '{{queue}} completed' },
        { expr: `${R.failedRate}{${Q}}`, legendFormat: '{{queue}} failed' },
      ],
    },
    ...perQueueThresholdPanels(t, 'job_error_ratio', 'Job error ratio (5m)', (sel) => [{ expr: `${R.errorRatio}{${sel}}`, legendFormat: '{{queue}}' }], 'percentunit'),
    { title: 'Failures by reason (jobs/s)', unit: 'reqps', targets: [{ expr: `sum by (queue, reason) (rate(bullmq_jobs_failed_total{${Q}}[5m]))`, legendFormat: '{{queue}} {{reason}}' }] },
    { title: 'Retries (attempts/s)', unit: 'reqps', targets: [{ expr: `sum by (queue) (rate(bullmq_job_retries_total{${Q}}[5m]))`, legendFormat: '{{queue}}' }] },
    { title: 'Rate-limit hits (/s)', unit: 'reqps', targets: [{ expr: `sum by (queue) (rate(bullmq_rate_limit_hits_total{${Q}}[5m]))`, legendFormat: '{{queue}}' }] },
    { title: 'Stalled jobs (/s)', unit: 'reqps', targets: [{ expr: `sum by (queue) (rate(bullmq_jobs_stalled_total{${Q}}[5m]))`, legendFormat: '{{queue}}' }] },
    ...perQueueThresholdPanels(t, 'job_timeout_ratio', 'Timeout ratio (5m)', (sel) => [{ expr: `${R.timeoutRatio}{${sel}}`, legendFormat: '{{queue}}' }], 'percentunit'),
    { title: 'Oldest waiting job age', unit: 's', targets: [{ expr: `max by (queue) (bullmq_queue_oldest_waiting_age_seconds{${Q}})`, legendFormat: '{{queue}}' }] },
    { title: 'Workers per queue', targets: [{ expr: `max by (queue) (bullmq_queue_workers{${Q}})`, legendFormat: '{{queue}}' }] },
  ], { queueVar: true });

  const api = dashboard(DASHBOARD_UIDS.api, 'BullMQ — API', [
    { title: 'Requests by route (req/s)', unit: 'reqps', targets: [{ expr: `sum by (method, route) (${R.apiRequestRate})`, legendFormat: '{{method}} {{route}}' }] },
    { title: 'Responses by status (req/s)', unit: 'reqps', targets: [{ expr: `sum by (status_code) (${R.apiRequestRate})`, legendFormat: '{{status_code}}' }] },
    { title: '5xx ratio', unit: 'percentunit', targets: [{ expr: R.api5xxRatio, legendFormat: '5xx' }], thresholds: t.api_5xx_ratio },
    {
      title: 'Duration p50 / p99 by route',
      unit: 's',
      exemplar: true,
      targets: [0.5, 0.99].map((q) => ({
        expr: `histogram_quantile(${q}, sum by (route, le) (rate(http_request_duration_seconds_bucket{job="api"}[5m])))`,
        legendFormat: `{{route}} p${q * 100}`,
      })),
    },
    // The load-test HTTP p95 target of each queue, seen server-side all the time (k6 sees it client-side).
    ...Object.keys(t.queues).map((q) => ({
      title: `POST p95 — ${q} (load-test target)`,
      unit: 's',
      targets: [{ expr: `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="api",method="POST",route="${enqueueRoute(q)}"}[5m])))`, legendFormat: 'p95' }],
      thresholds: forQueue(t, q, 'http_p95_ms') / 1000,
    })),
    { title: 'Enqueued jobs (/s)', unit: 'reqps', targets: [{ expr: 'sum by (queue) (rate(bullmq_jobs_enqueued_total{job="api"}[5m]))', legendFormat: '{{queue}}' }] },
    { title: 'Rejected requests (rate limit, load shedding)', unit: 'reqps', targets: [{ expr: 'sum by (reason) (rate(api_requests_rejected_total{job="api"}[5m]))', legendFormat: '{{reason}}' }] },
  ]);

  const workers = dashboard(DASHBOARD_UIDS.workers, 'BullMQ — workers', [
    { title: 'Resident memory', unit: 'bytes', targets: [{ expr: 'process_resident_memory_bytes{job="worker"}', legendFormat: '{{instance}}' }], thresholds: t.worker_memory_bytes },
    { title: 'CPU (cores)', targets: [{ expr: 'rate(process_cpu_seconds_total{job="worker"}[5m])', legendFormat: '{{instance}}' }] },
    { title: 'Event-loop lag', unit: 's', targets: [{ expr: 'nodejs_eventloop_lag_seconds{job="worker"}', legendFormat: '{{instance}}' }] },
    { title: 'GC time (s/s)', targets: [{ expr: 'sum by (instance, kind) (rate(nodejs_gc_duration_seconds_sum{job="worker"}[5m]))', legendFormat: '{{instance}} {{kind}}' }] },
    { title: 'Heap used', unit: 'bytes', targets: [{ expr: 'nodejs_heap_size_used_bytes{job="worker"}', legendFormat: '{{instance}}' }] },
    { title: 'Memory limit events', targets: [{ expr: 'sum by (instance, level) (increase(worker_memory_limit_events_total{job="worker"}[1h]))', legendFormat: '{{instance}} {{level}}' }] },
  ]);

  const redis = dashboard(DASHBOARD_UIDS.redis, 'BullMQ — Redis', [
    { title: 'Up', targets: [{ expr: 'redis_up', legendFormat: '{{instance}}' }] },
    { title: 'Memory used', unit: 'bytes', targets: [{ expr: 'redis_memory_used_bytes', legendFormat: 'used' }, { expr: 'redis_memory_max_bytes', legendFormat: 'maxmemory' }] },
    { title: 'Memory used / maxmemory', unit: 'percentunit', targets: [{ expr: R.redisMemoryRatio, legendFormat: '{{instance}}' }], thresholds: t.redis_memory_ratio },
    { title: 'Commands (/s)', unit: 'ops', targets: [{ expr: 'rate(redis_commands_processed_total[5m])', legendFormat: '{{instance}}' }] },
    { title: 'Connected clients', targets: [{ expr: 'redis_connected_clients', legendFormat: '{{instance}}' }] },
    { title: 'Evicted keys (must stay 0)', targets: [{ expr: 'rate(redis_evicted_keys_total[5m])', legendFormat: '{{instance}}' }] },
    { title: 'maxmemory-policy', targets: [{ expr: 'redis_instance_info', legendFormat: '{{maxmemory_policy}}' }] },
  ]);

  const T = 'testid=~"$testid"';
  const k6Overridden = Object.keys(t.queues).filter((q) => t.queues[q]?.http_p95_ms !== undefined);
  const k6 = dashboard(DASHBOARD_UIDS.k6, 'BullMQ — k6 load tests', [
    { title: 'Virtual users', targets: [{ expr: `sum(k6_vus{${T}})`, legendFormat: 'VUs' }] },
    { title: 'Requests (/s) by queue', unit: 'reqps', targets: [{ expr: `sum by (queue) (rate(k6_http_reqs_total{${T}}[1m]))`, legendFormat: '{{queue}}' }] },
    // k6 trend stats arrive as gauges in seconds (k6_http_req_duration_p95 with K6_PROMETHEUS_RW_TREND_STATS
    // including p(95)); targets can differ per queue, so as for perQueueThresholdPanels: one line set per panel.
    {
      title: k6Overridden.length ? 'HTTP duration p95, all queues' : 'HTTP duration p95',
      unit: 's',
      targets: [{ expr: `max by (queue) (k6_http_req_duration_p95{${T}})`, legendFormat: '{{queue}}' }],
      ...(k6Overridden.length ? {} : { thresholds: t.defaults.http_p95_ms / 1000 }),
    },
    ...k6Overridden.map((q) => ({
      title: `HTTP duration p95 — ${q}`,
      unit: 's',
      targets: [{ expr: `max by (queue) (k6_http_req_duration_p95{${T},queue="${q}"})`, legendFormat: '{{queue}}' }],
      thresholds: forQueue(t, q, 'http_p95_ms') / 1000,
    })),
    { title: 'Failed requests ratio', unit: 'percentunit', targets: [{ expr: `avg(k6_http_req_failed_rate{${T}})`, legendFormat: 'failed' }], thresholds: t.loadtest_error_ratio },
    { title: 'Checks passing', unit: 'percentunit', targets: [{ expr: `avg(k6_checks_rate{${T}})`, legendFormat: 'checks' }] },
  ], { testidVar: true });

  return { queues, api, workers, redis, k6 };
}
