/**
 * Grafana dashboards as code, built with the Grafana Foundation SDK's typed builders (Grafana's own schema
 * types: a misspelt option or a wrong enum is a compile error). Stable uids, Prometheus datasource uid
 * "prometheus", threshold lines and stat colours taken from thresholds.yaml (never typed twice). Queue-state
 * gauges are aggregated with max (one value per replica).
 *
 * Every dashboard opens with a row of stat panels (state at a glance, coloured by the thresholds); wait,
 * processing and end-to-end latency also get heatmaps of their histogram buckets.
 */
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as heatmap from '@grafana/grafana-foundation-sdk/heatmap';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import { DASHBOARD_UIDS, R } from './rules';
import { BURN_RATE_ALERTS, S, SLO_WINDOWS } from './slo';
import { forQueue, type Level, type PerQueueKey, type Thresholds } from '../../services/common/thresholds';

const DS: common.DataSourceRef = { type: 'prometheus', uid: 'prometheus' };

interface Target {
  expr: string;
  legendFormat: string;
}

/** Colour steps: green below warning, orange, red at critical; or red at one limit. */
type Steps = Level | number | { color: string; value: number | null }[];

interface PanelSpec {
  /** `row`: a full-width section heading (no query); the panels after it belong to it. */
  kind?: 'timeseries' | 'stat' | 'heatmap' | 'row';
  title: string;
  targets: Target[];
  unit?: string;
  /** Warning and critical lines, one limit line (a load-test target), or explicit steps (stat colours). */
  thresholds?: Steps;
  description?: string;
  /** Width (of 24); stat panels default to a row of 4-high tiles. */
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

function thresholdSteps(s: Steps | undefined): dashboard.Threshold[] {
  if (Array.isArray(s)) return s;
  const steps: dashboard.Threshold[] = [{ color: 'green', value: null }];
  if (typeof s === 'number') steps.push({ color: 'red', value: s });
  else if (s) steps.push({ color: 'orange', value: s.warning }, { color: 'red', value: s.critical });
  return steps;
}

function query(t: Target, i: number, p: PanelSpec) {
  const q = new prometheus.DataqueryBuilder()
    .refId(String.fromCharCode(65 + i))
    .datasource(DS)
    .expr(t.expr)
    .legendFormat(t.legendFormat)
    .exemplar(p.exemplar ?? false);
  return p.kind === 'heatmap' ? q.format(prometheus.PromQueryFormat.Heatmap) : q;
}

function sizeOf(p: PanelSpec): { w: number; h: number } {
  if (p.kind === 'stat') return { w: p.w ?? 3, h: 4 };
  if (p.kind === 'heatmap') return { w: p.w ?? 8, h: 8 };
  return { w: p.w ?? 12, h: 8 };
}

function build(uid: string, p: PanelSpec) {
  const thresholds = new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(thresholdSteps(p.thresholds));
  const targets = p.targets.map((t, i) => query(t, i, p));
  const id = panelId(uid, p.title);
  if (p.kind === 'stat') {
    return new stat.PanelBuilder()
      .id(id).title(p.title).description(p.description ?? '').datasource(DS).targets(targets)
      .unit(p.unit ?? 'short')
      .thresholds(thresholds)
      .colorMode(common.BigValueColorMode.Background)
      .graphMode(common.BigValueGraphMode.Area)
      .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']).values(false));
  }
  if (p.kind === 'heatmap') {
    return new heatmap.PanelBuilder()
      .id(id).title(p.title).description(p.description ?? '').datasource(DS).targets(targets)
      .thresholds(thresholds)
      // The buckets come pre-computed from Prometheus (format heatmap): Grafana must not re-bucket them.
      .calculate(false)
      .yAxis(new heatmap.YAxisConfigBuilder().unit(p.unit ?? 's'))
      .color(new heatmap.HeatmapColorOptionsBuilder().mode(heatmap.HeatmapColorMode.Scheme).scheme('Oranges').scale(heatmap.HeatmapColorScale.Exponential).exponent(0.5).steps(64))
      .exemplarsColor('rgba(255,0,255,0.7)')
      .showLegend();
  }
  const hasLines = p.thresholds !== undefined;
  return new timeseries.PanelBuilder()
    .id(id).title(p.title).description(p.description ?? '').datasource(DS).targets(targets)
    .unit(p.unit ?? 'short')
    .thresholds(thresholds)
    .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(hasLines ? common.GraphThresholdsStyleMode.LineAndArea : common.GraphThresholdsStyleMode.Off))
    .lineWidth(1)
    .fillOpacity(10)
    .legend(new common.VizLegendOptionsBuilder().displayMode(common.LegendDisplayMode.List).placement(common.LegendPlacement.Bottom).showLegend(true))
    .tooltip(new common.VizTooltipOptionsBuilder().mode(common.TooltipDisplayMode.Multi).sort(common.SortOrder.None));
}

interface Variable {
  name: string;
  query: string;
  all: boolean;
}

function dashboardOf(uid: string, title: string, panels: PanelSpec[], variables: Variable[] = [], timeFrom = 'now-30m') {
  const b = new dashboard.DashboardBuilder(title)
    .uid(uid)
    .tags(['bullmq-observability-stack'])
    .timezone('browser')
    .readonly()
    .refresh('10s')
    .time({ from: timeFrom, to: 'now' })
    .tooltip(dashboard.DashboardCursorSync.Crosshair);
  for (const v of variables) {
    const q = new dashboard.QueryVariableBuilder(v.name)
      .datasource(DS)
      .query({ query: v.query, refId: v.name })
      .definition(v.query)
      .includeAll(v.all)
      .refresh(dashboard.VariableRefresh.OnTimeRangeChanged);
    b.withVariable(v.all ? q.multi(true).allValue('.+').current({ text: 'All', value: '$__all' }) : q);
  }
  // Positions set here: the SDK's own layout wraps only after a row overflows 24 columns.
  let x = 0;
  let y = 0;
  let rowHeight = 0;
  const stats = panels.filter((p) => p.kind === 'stat').length;
  let previous: PanelSpec['kind'];
  for (const p of panels) {
    if (p.kind === 'row') {
      y += rowHeight;
      b.withRow(new dashboard.RowBuilder(p.title).id(panelId(uid, p.title)).gridPos({ x: 0, y, w: 24, h: 1 }));
      x = 0;
      y += 1;
      rowHeight = 0;
      previous = p.kind;
      continue;
    }
    const built = build(uid, p);
    // Stat tiles share the first row evenly; the graphs start below it.
    const { w, h } = p.kind === 'stat' && p.w === undefined ? { w: Math.min(8, Math.max(3, Math.floor(24 / stats))), h: 4 } : sizeOf(p);
    if (x + w > 24 || (previous === 'stat' && p.kind !== 'stat')) {
      x = 0;
      y += rowHeight;
      rowHeight = 0;
    }
    b.withPanel(built.gridPos({ x, y, w, h }));
    x += w;
    rowHeight = Math.max(rowHeight, h);
    previous = p.kind;
  }
  return b.build();
}

const Q = 'queue=~"$queue"';
/** The API's enqueue route pattern for a queue (the `route` label; docs/contracts.md). */
export const enqueueRoute = (queue: string) => `/v1/queues/${queue}/jobs`;

const overriddenQueues = (t: Thresholds, key: PerQueueKey) => Object.keys(t.queues).filter((q) => t.queues[q]?.[key]);

/**
 * Grafana draws one set of threshold lines per panel, and thresholds can be overridden per queue. So a signal
 * nobody overrides is one panel (all queues) with the default lines; an overridden signal is one panel for all
 * queues (no lines: they would be wrong for some) plus one panel per overriding queue with its own lines.
 */
function perQueueThresholdPanels(t: Thresholds, key: PerQueueKey, title: string, targets: (selector: string) => Target[], unit?: string): PanelSpec[] {
  const overridden = overriddenQueues(t, key);
  if (!overridden.length) return [{ title, unit, targets: targets(Q), thresholds: t.defaults[key] }];
  return [
    { title: `${title}, all queues`, unit, targets: targets(Q) },
    ...overridden.map((q) => ({ title: `${title} — ${q}`, unit, targets: targets(`queue="${q}"`), thresholds: forQueue(t, q, key) })),
  ];
}

/** Stat tiles for a per-queue signal, coloured by its thresholds: one tile per overriding queue, else one. */
function perQueueStats(t: Thresholds, key: PerQueueKey, title: string, expr: (selector: string) => string, unit?: string): PanelSpec[] {
  const overridden = overriddenQueues(t, key);
  if (!overridden.length) return [{ kind: 'stat', title, unit, targets: [{ expr: expr(Q), legendFormat: '{{queue}}' }], thresholds: t.defaults[key] }];
  return overridden.map((q) => ({ kind: 'stat', title: `${title} — ${q}`, unit, targets: [{ expr: expr(`queue="${q}"`), legendFormat: '{{queue}}' }], thresholds: forQueue(t, q, key) }));
}

/** Firing alerts of a severity (0 when none: the tile is green, not empty). */
function firingStat(severity: 'critical' | 'warning', selector: string, title: string): PanelSpec {
  return {
    kind: 'stat',
    title,
    targets: [{ expr: `count(ALERTS{alertstate="firing",severity="${severity}"${selector ? ',' + selector : ''}}) or vector(0)`, legendFormat: severity }],
    thresholds: [{ color: 'green', value: null }, { color: severity === 'critical' ? 'red' : 'orange', value: 1 }],
  };
}

/** Red at 0, green at 1: for "is it up / is it safe" gauges. */
const upSteps = [{ color: 'red', value: null }, { color: 'green', value: 1 }];

const bucketRate = (metric: string, selector: string) => `sum by (le) (rate(${metric}_bucket{${selector}}[5m]))`;

export function dashboards(t: Thresholds) {
  const queues = dashboardOf(DASHBOARD_UIDS.queues, 'BullMQ — queues', [
    firingStat('critical', `queue=~"$queue"`, 'Critical alerts firing'),
    firingStat('warning', `queue=~"$queue"`, 'Warning alerts firing'),
    ...perQueueStats(t, 'queue_depth', 'Jobs waiting', (sel) => `${R.depth}{${sel}}`),
    { kind: 'stat', title: 'Worker slots busy now', unit: 'percentunit', targets: [{ expr: `${R.saturation}{${Q}}`, legendFormat: '{{queue}}' }], thresholds: [{ color: 'green', value: null }, { color: 'orange', value: t.saturation.busy_ratio }] },
    // BullMQ 6 has no `paused` job state: a paused queue's jobs wait in `wait`; its own gauge says it is paused.
    { kind: 'stat', title: 'Queues paused now', targets: [{ expr: `count(${R.paused}{${Q}} == 1) or vector(0)`, legendFormat: 'paused' }], thresholds: [{ color: 'green', value: null }, { color: 'orange', value: 1 }] },
    ...perQueueStats(t, 'job_error_ratio', 'Error ratio now', (sel) => `${R.errorRatio}{${sel}}`, 'percentunit'),
    ...perQueueStats(t, 'job_latency_p95_seconds', 'E2E p95 now', (sel) => `${R.e2eP(95)}{${sel}}`, 's'),
    { title: 'Jobs by state (max over replicas)', targets: [{ expr: `max by (queue, state) (bullmq_queue_jobs{${Q}})`, legendFormat: '{{queue}} {{state}}' }], w: 24 },
    ...perQueueThresholdPanels(t, 'queue_depth', 'Queue depth (waiting + prioritized)', (sel) => [{ expr: `${R.depth}{${sel}}`, legendFormat: '{{queue}}' }]),
    {
      title: 'Active jobs and worker slots (sum of bullmq_worker_concurrency)',
      targets: [
        { expr: `${R.active}{${Q}}`, legendFormat: '{{queue}} active' },
        { expr: `${R.slots}{${Q}}`, legendFormat: '{{queue}} slots' },
      ],
    },
    { title: 'Worker saturation (active / slots)', unit: 'percentunit', targets: [{ expr: `${R.saturation}{${Q}}`, legendFormat: '{{queue}}' }], thresholds: t.saturation.busy_ratio },
    { title: 'Paused queues (1 = paused)', targets: [{ expr: `${R.paused}{${Q}}`, legendFormat: '{{queue}}' }] },
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
    {
      title: 'End-to-end time p50 / p95 / p99 (eligible → final outcome)',
      unit: 's',
      exemplar: true,
      targets: [50, 95, 99].map((p) => ({ expr: `${R.e2eP(p)}{${Q}}`, legendFormat: `{{queue}} p${p}` })),
    },
    ...perQueueThresholdPanels(t, 'job_latency_p95_seconds', 'End-to-end p95', (sel) => [{ expr: `${R.e2eP(95)}{${sel}}`, legendFormat: '{{queue}}' }], 's'),
    { kind: 'heatmap', title: 'Wait time heatmap', exemplar: true, targets: [{ expr: bucketRate('bullmq_job_wait_seconds', Q), legendFormat: '{{le}}' }] },
    { kind: 'heatmap', title: 'Processing time heatmap', exemplar: true, targets: [{ expr: bucketRate('bullmq_job_processing_seconds', Q), legendFormat: '{{le}}' }] },
    { kind: 'heatmap', title: 'End-to-end time heatmap', exemplar: true, targets: [{ expr: bucketRate('bullmq_job_e2e_seconds', Q), legendFormat: '{{le}}' }] },
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
    { title: 'Rate-limit hits by source (/s)', unit: 'reqps', targets: [{ expr: `sum by (queue, source) (rate(bullmq_rate_limit_hits_total{${Q}}[5m]))`, legendFormat: '{{queue}} {{source}}' }] },
    { title: 'Stalled jobs (/s)', unit: 'reqps', targets: [{ expr: `sum by (queue) (rate(bullmq_jobs_stalled_total{${Q}}[5m]))`, legendFormat: '{{queue}}' }] },
    ...perQueueThresholdPanels(t, 'job_timeout_ratio', 'Timeout ratio (5m)', (sel) => [{ expr: `${R.timeoutRatio}{${sel}}`, legendFormat: '{{queue}}' }], 'percentunit'),
    // Attempts past the soft timeout (catalog softTimeoutRatio) that went on running: the early warning before timeouts.
    { title: 'Soft timeouts (attempts/s)', unit: 'reqps', targets: [{ expr: `sum by (queue) (rate(bullmq_job_soft_timeouts_total{${Q}}[5m]))`, legendFormat: '{{queue}}' }] },
    { title: 'Oldest waiting job age', unit: 's', targets: [{ expr: `max by (queue) (bullmq_queue_oldest_waiting_age_seconds{${Q}})`, legendFormat: '{{queue}}' }] },
    { title: 'Workers per queue', targets: [{ expr: `max by (queue) (bullmq_queue_workers{${Q}})`, legendFormat: '{{queue}}' }] },
  ], [{ name: 'queue', query: 'label_values(bullmq_queue_jobs, queue)', all: true }]);

  const postP95 = (q: string) => `histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket{job="api",method="POST",route="${enqueueRoute(q)}"}[5m])))`;
  const api = dashboardOf(DASHBOARD_UIDS.api, 'BullMQ — API', [
    { kind: 'stat', title: 'Requests now (req/s)', unit: 'reqps', targets: [{ expr: `sum(${R.apiRequestRate})`, legendFormat: 'req/s' }] },
    { kind: 'stat', title: '5xx ratio now', unit: 'percentunit', targets: [{ expr: R.api5xxRatio, legendFormat: '5xx' }], thresholds: t.api_5xx_ratio },
    ...Object.keys(t.queues).map((q): PanelSpec => ({
      kind: 'stat',
      title: `POST p95 now — ${q}`,
      unit: 's',
      targets: [{ expr: postP95(q), legendFormat: 'p95' }],
      thresholds: forQueue(t, q, 'http_p95_ms') / 1000,
    })),
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
      targets: [{ expr: postP95(q), legendFormat: 'p95' }],
      thresholds: forQueue(t, q, 'http_p95_ms') / 1000,
    })),
    { title: 'Enqueued jobs (/s)', unit: 'reqps', targets: [{ expr: 'sum by (queue) (rate(bullmq_jobs_enqueued_total{job="api"}[5m]))', legendFormat: '{{queue}}' }] },
    { title: 'Rejected requests (rate limit, load shedding)', unit: 'reqps', targets: [{ expr: 'sum by (reason) (rate(api_requests_rejected_total{job="api"}[5m]))', legendFormat: '{{reason}}' }] },
  ]);

  const workers = dashboardOf(DASHBOARD_UIDS.workers, 'BullMQ — workers', [
    { kind: 'stat', title: 'Workers up', targets: [{ expr: 'count(up{job="worker"} == 1) or vector(0)', legendFormat: 'up' }], thresholds: upSteps },
    { kind: 'stat', title: 'Largest resident memory', unit: 'bytes', targets: [{ expr: 'max(process_resident_memory_bytes{job="worker"})', legendFormat: 'max' }], thresholds: t.worker_memory_bytes },
    { kind: 'stat', title: 'Largest event-loop lag', unit: 's', targets: [{ expr: 'max(nodejs_eventloop_lag_seconds{job="worker"})', legendFormat: 'max' }] },
    { kind: 'stat', title: 'Memory limit events (1h)', targets: [{ expr: 'sum(increase(worker_memory_limit_events_total{job="worker"}[1h])) or vector(0)', legendFormat: 'events' }], thresholds: [{ color: 'green', value: null }, { color: 'orange', value: 1 }] },
    { title: 'Resident memory', unit: 'bytes', targets: [{ expr: 'process_resident_memory_bytes{job="worker"}', legendFormat: '{{instance}}' }], thresholds: t.worker_memory_bytes },
    { title: 'CPU (cores)', targets: [{ expr: 'rate(process_cpu_seconds_total{job="worker"}[5m])', legendFormat: '{{instance}}' }] },
    { title: 'Event-loop lag', unit: 's', targets: [{ expr: 'nodejs_eventloop_lag_seconds{job="worker"}', legendFormat: '{{instance}}' }] },
    { title: 'GC time (s/s)', targets: [{ expr: 'sum by (instance, kind) (rate(nodejs_gc_duration_seconds_sum{job="worker"}[5m]))', legendFormat: '{{instance}} {{kind}}' }] },
    { title: 'Heap used', unit: 'bytes', targets: [{ expr: 'nodejs_heap_size_used_bytes{job="worker"}', legendFormat: '{{instance}}' }] },
    { title: 'Memory limit events', targets: [{ expr: 'sum by (instance, level) (increase(worker_memory_limit_events_total{job="worker"}[1h]))', legendFormat: '{{instance}} {{level}}' }] },
    ...dependencyPanels(t),
  ]);

  // One Redis or a Redis Cluster: every redis_* series is per node (`instance`; with a cluster, job redis-cluster
  // scrapes each node), so the stats show the worst node and the graphs one line per node.
  const redis = dashboardOf(DASHBOARD_UIDS.redis, 'BullMQ — Redis', [
    { kind: 'stat', title: 'Redis up (every node)', targets: [{ expr: 'min(redis_up) or vector(0)', legendFormat: 'up' }], thresholds: upSteps },
    { kind: 'stat', title: 'Memory used / maxmemory now (fullest node)', unit: 'percentunit', targets: [{ expr: `max(${R.redisMemoryRatio})`, legendFormat: 'ratio' }], thresholds: t.redis_memory_ratio },
    // 0 as soon as one node runs another policy (its info series then has no noeviction match).
    { kind: 'stat', title: 'maxmemory-policy is noeviction (every node)', targets: [{ expr: 'min(redis_instance_info{maxmemory_policy="noeviction"} or on (instance) (redis_instance_info * 0)) or vector(0)', legendFormat: 'noeviction' }], thresholds: upSteps },
    { kind: 'stat', title: 'Keys evicted (1h, must stay 0)', targets: [{ expr: 'sum(increase(redis_evicted_keys_total[1h])) or vector(0)', legendFormat: 'evicted' }], thresholds: [{ color: 'green', value: null }, { color: 'red', value: 1 }] },
    { title: 'Up', targets: [{ expr: 'redis_up', legendFormat: '{{instance}}' }] },
    { title: 'Memory used', unit: 'bytes', targets: [{ expr: 'redis_memory_used_bytes', legendFormat: '{{instance}} used' }, { expr: 'redis_memory_max_bytes', legendFormat: '{{instance}} maxmemory' }] },
    { title: 'Memory used / maxmemory', unit: 'percentunit', targets: [{ expr: R.redisMemoryRatio, legendFormat: '{{instance}}' }], thresholds: t.redis_memory_ratio },
    { title: 'Commands (/s)', unit: 'ops', targets: [{ expr: 'rate(redis_commands_processed_total[5m])', legendFormat: '{{instance}}' }] },
    { title: 'Connected clients', targets: [{ expr: 'redis_connected_clients', legendFormat: '{{instance}}' }] },
    // Cluster: a master with 0 replicas is one failure away from losing its queues' slots.
    { title: 'Role and connected replicas', targets: [{ expr: 'redis_connected_slaves * on (instance) group_left (role) redis_instance_info', legendFormat: '{{instance}} {{role}}' }] },
    { title: 'Evicted keys (must stay 0)', targets: [{ expr: 'rate(redis_evicted_keys_total[5m])', legendFormat: '{{instance}}' }] },
    { title: 'maxmemory-policy', targets: [{ expr: 'redis_instance_info', legendFormat: '{{instance}} {{maxmemory_policy}}' }] },
  ]);

  const T = 'testid=~"$testid"';
  const k6Overridden = Object.keys(t.queues).filter((q) => t.queues[q]?.http_p95_ms !== undefined);
  const k6 = dashboardOf(DASHBOARD_UIDS.k6, 'BullMQ — k6 load tests', [
    { kind: 'stat', title: 'Virtual users now', targets: [{ expr: `sum(k6_vus{${T}})`, legendFormat: 'VUs' }] },
    { kind: 'stat', title: 'Failed requests ratio now', unit: 'percentunit', targets: [{ expr: `avg(k6_http_req_failed_rate{${T}})`, legendFormat: 'failed' }], thresholds: t.loadtest_error_ratio },
    { kind: 'stat', title: 'Checks passing now', unit: 'percentunit', targets: [{ expr: `avg(k6_checks_rate{${T}})`, legendFormat: 'checks' }] },
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
  ], [{ name: 'testid', query: 'label_values(k6_http_reqs_total, testid)', all: false }]);

  return { queues, api, workers, redis, k6, slo: sloDashboard(t) };
}

/**
 * The "Dependencies" row: each outbound dependency's calls by outcome against its quota (the rate it is allowed
 * now, `outbound_rate_limit`: the configured quota, or less while it adapts to 429s), its open circuits, and the
 * jobs short-circuited (circuit open) or throttled (own quota) instead of sent. Circuit and quota state is read
 * from Redis by every replica: max, never sum.
 */
function dependencyPanels(t: Thresholds): PanelSpec[] {
  return [
    { kind: 'row', title: 'Dependencies', targets: [] },
    {
      title: 'Outbound calls by outcome (/s) against the allowed rate',
      unit: 'reqps',
      w: 24,
      targets: [
        { expr: `${R.outboundRate}`, legendFormat: '{{dependency}} {{outcome}}' },
        { expr: 'max by (dependency) (outbound_rate_limit)', legendFormat: '{{dependency}} allowed rate' },
      ],
    },
    {
      title: 'Circuits open or half-open',
      description: `0/1 for a provider, the number of hosts for webhook_host. OutboundCircuitOpen pages for ${t.outbound.page_dependencies.join(', ')} and warns for the others after ${t.outbound.circuit_open_for}.`,
      targets: [{ expr: 'max by (dependency) (outbound_circuits_open)', legendFormat: '{{dependency}}' }],
      thresholds: 1,
    },
    { title: 'Circuit transitions (/s)', unit: 'reqps', targets: [{ expr: 'sum by (dependency, to) (rate(outbound_circuit_transitions_total[5m]))', legendFormat: '{{dependency}} → {{to}}' }] },
    {
      title: 'Calls not sent: short-circuited and throttled (/s)',
      unit: 'reqps',
      targets: [{ expr: `${R.outboundRate}{outcome=~"short_circuited|throttled"}`, legendFormat: '{{dependency}} {{outcome}}' }],
    },
    {
      title: 'Jobs held back by a rate limit, by source (/s)',
      unit: 'reqps',
      targets: [{ expr: 'sum by (queue, source) (rate(bullmq_rate_limit_hits_total[5m]))', legendFormat: '{{queue}} {{source}}' }],
    },
    { title: 'Soft timeouts / attempts (5m)', unit: 'percentunit', targets: [{ expr: R.softTimeoutRatio, legendFormat: '{{queue}}' }], thresholds: t.outbound.soft_timeout_ratio },
  ];
}

/** Budget left: red once overspent, orange under a quarter left, green otherwise. */
const budgetSteps = [{ color: 'red', value: null }, { color: 'orange', value: 0 }, { color: 'green', value: 0.25 }];

function sloDashboard(t: Thresholds) {
  const queues = Object.keys(t.slo.queues);
  const period = t.slo.period;
  const kinds = [
    { kind: 'errors' as const, word: 'Error', what: 'failed jobs' },
    { kind: 'slow' as const, word: 'Latency', what: 'completed jobs slower than the bound' },
  ];
  const panels: PanelSpec[] = [];
  // State at a glance: every queue's budget left, coloured.
  for (const q of queues) {
    for (const k of kinds) {
      panels.push({
        kind: 'stat',
        title: `${q} — ${k.word.toLowerCase()} budget left (${period})`,
        unit: 'percentunit',
        w: Math.max(2, Math.floor(24 / (queues.length * kinds.length))),
        targets: [{ expr: `${S.remaining(k.kind)}{queue="${q}"}`, legendFormat: q }],
        thresholds: budgetSteps,
      });
    }
  }
  for (const k of kinds) {
    panels.push({
      title: `${k.word} budget remaining over ${period}`,
      unit: 'percentunit',
      description: `1 − (${k.what} over ${period}) / budget, per queue; below 0 the SLO is missed for the period.`,
      targets: [{ expr: S.remaining(k.kind), legendFormat: '{{queue}}' }],
    });
  }
  for (const k of kinds) {
    for (const a of BURN_RATE_ALERTS) {
      panels.push({
        title: `${k.word} budget burn rate — ${a.long} and ${a.short} (${a.kind} at ${a.burnRate}x)`,
        description: `Burn rate = SLI over the window / budget (1x spends the budget exactly in ${period}). ${a.kind === 'page' ? 'Pages' : 'Opens a ticket'} when both windows reach ${a.burnRate}x.`,
        w: 6,
        targets: [a.long, a.short].map((w) => ({ expr: `${S.ratio(k.kind, w)} / on (queue) ${S.budget(k.kind)}`, legendFormat: `{{queue}} ${w}` })),
        thresholds: a.burnRate,
      });
    }
  }
  for (const k of kinds) {
    panels.push({
      title: `${k.word} SLI by window (${k.what})`,
      unit: 'percentunit',
      targets: SLO_WINDOWS.filter((w) => ['5m', '1h', '1d'].includes(w)).map((w) => ({ expr: S.ratio(k.kind, w), legendFormat: `{{queue}} ${w}` })),
    });
  }
  return dashboardOf(DASHBOARD_UIDS.slo, 'BullMQ — SLOs', panels, [], 'now-7d');
}
