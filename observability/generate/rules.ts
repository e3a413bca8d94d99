/**
 * Prometheus recording and alert rules, generated from thresholds.yaml. Recording rules hold the ratios and
 * quantiles that alerts and dashboards share. Queue-state gauges come from every worker replica (identical
 * values), so they are aggregated with max, never sum.
 */
import { forQueue, type Level, type PerQueueKey, type Thresholds } from '../../services/common/thresholds';
import { failureLinks, type FailureLinks } from './links';
import { SLO_ALERT, SLO_DASHBOARD_UID, sloAlertRules, SLO_PERIOD_GROUP_INTERVAL, sloRecordingRules, type SloWindow } from './slo';

export interface RuleOptions {
  /** Replaces every `for:` (the live drill uses 0s/15s; shipped rules keep realistic values). */
  forOverride?: string;
  /** Window for rates in recording rules (shipped 5m). */
  rateWindow?: string;
  /** Window of "nothing completed" for BullMQQueueStuck (shipped from thresholds). */
  stuckWindow?: string;
  /** Drill-only SLO windows (slo.ts DRILL_SLO_WINDOWS); shipped rules keep the SRE workbook's. */
  sloWindows?: Record<SloWindow | 'period', string>;
}

export const R = {
  depth: 'queue:bullmq_queue_depth:max',
  active: 'queue:bullmq_queue_active:max',
  completedRate: 'queue:bullmq_jobs_completed:rate5m',
  failedRate: 'queue:bullmq_jobs_failed:rate5m',
  errorRatio: 'queue:bullmq_job_error_ratio:rate5m',
  timeoutRatio: 'queue:bullmq_job_timeout_ratio:rate5m',
  waitP: (q: number) => `queue:bullmq_job_wait_seconds:p${q}`,
  processingP: (q: number) => `queue:bullmq_job_processing_seconds:p${q}`,
  e2eP: (q: number) => `queue:bullmq_job_e2e_seconds:p${q}`,
  apiRequestRate: 'route:http_requests:rate5m',
  api5xxRatio: 'job:http_5xx_ratio:rate5m',
  redisMemoryRatio: 'instance:redis_memory_used_ratio',
} as const;

export const ALERT_NAMES = [
  'BullMQQueueDepthHigh',
  'BullMQActiveJobsHigh',
  'BullMQJobErrorRateHigh',
  'BullMQJobTimeoutRateHigh',
  'BullMQJobLatencyHigh',
  'BullMQQueueStuck',
  'BullMQNoWorkers',
  'WorkerMemoryHigh',
  'RedisMemoryHigh',
  'RedisDown',
  'RedisEvictionPolicyUnsafe',
  'ApiErrorRateHigh',
  'TargetDown',
  SLO_ALERT.errors,
  SLO_ALERT.slow,
] as const;
export type AlertName = (typeof ALERT_NAMES)[number];

export interface AlertRule {
  alert: AlertName;
  expr: string;
  for: string;
  labels: { severity: 'warning' | 'critical'; job?: string; queue?: string };
  annotations: { summary: string; description: string; value?: string; runbook_url: string; dashboard_url?: string } & Partial<FailureLinks>;
}

const LINKED_ALERTS: ReadonlySet<string> = new Set(['BullMQJobErrorRateHigh', 'BullMQJobTimeoutRateHigh', 'BullMQJobLatencyHigh']);

/**
 * The `$value` of the description on its own (`value` annotation): Prometheus keeps the annotations of an
 * alert's last firing evaluation when it resolves, so the resolved notification shows this as the value last
 * measured (docs/observability.md, "Alert texts").
 */
function withValue(rule: AlertRule): AlertRule {
  const m = /\{\{ \$value(?: \| \w+)? \}\}/.exec(rule.annotations.description);
  return m ? { ...rule, annotations: { summary: rule.annotations.summary, description: rule.annotations.description, value: m[0], runbook_url: rule.annotations.runbook_url, ...(rule.annotations.dashboard_url ? { dashboard_url: rule.annotations.dashboard_url } : {}) } } : rule;
}

export const DASHBOARD_UIDS = {
  queues: 'bullmq-queues',
  api: 'bullmq-api',
  workers: 'bullmq-workers',
  redis: 'bullmq-redis',
  k6: 'bullmq-k6',
  slo: SLO_DASHBOARD_UID,
} as const;

export function recordingRules(o: RuleOptions = {}) {
  const w = o.rateWindow ?? '5m';
  const q = (name: string) => `sum by (queue, le) (rate(${name}_bucket[${w}]))`;
  const rules: { record: string; expr: string }[] = [
    { record: R.depth, expr: `sum by (queue) (max by (queue, state) (bullmq_queue_jobs{state=~"waiting|prioritized"}))` },
    { record: R.active, expr: `max by (queue) (bullmq_queue_jobs{state="active"})` },
    { record: R.completedRate, expr: `sum by (queue) (rate(bullmq_jobs_completed_total[${w}]))` },
    { record: R.failedRate, expr: `sum by (queue) (rate(bullmq_jobs_failed_total[${w}]))` },
    { record: R.errorRatio, expr: `${R.failedRate} / (${R.completedRate} + ${R.failedRate})` },
    {
      record: R.timeoutRatio,
      expr: `sum by (queue) (rate(bullmq_jobs_failed_total{reason="timeout"}[${w}])) / (${R.completedRate} + ${R.failedRate})`,
    },
  ];
  for (const p of [50, 95, 99]) {
    rules.push({ record: R.waitP(p), expr: `histogram_quantile(${p / 100}, ${q('bullmq_job_wait_seconds')})` });
    rules.push({ record: R.processingP(p), expr: `histogram_quantile(${p / 100}, ${q('bullmq_job_processing_seconds')})` });
    // Observed once per job, eligible → final outcome (completed or failed): a real quantile, not a sum of two.
    rules.push({ record: R.e2eP(p), expr: `histogram_quantile(${p / 100}, ${q('bullmq_job_e2e_seconds')})` });
  }
  rules.push(
    { record: R.apiRequestRate, expr: `sum by (route, method, status_code) (rate(http_request_duration_seconds_count{job="api"}[${w}]))` },
    {
      record: R.api5xxRatio,
      // "or … * 0" keeps the ratio defined (0) while no 5xx has been served yet.
      expr: `(sum by (job) (rate(http_request_duration_seconds_count{job="api",status_code=~"5.."}[${w}])) or sum by (job) (rate(http_request_duration_seconds_count{job="api"}[${w}])) * 0) / sum by (job) (rate(http_request_duration_seconds_count{job="api"}[${w}]))`,
    },
    { record: R.redisMemoryRatio, expr: `redis_memory_used_bytes / (redis_memory_max_bytes > 0)` },
  );
  return rules;
}

/**
 * `metric > threshold`, per queue: one condition per queue with an override, and the default for every other
 * queue (so a new queue is covered without edits). One rule each, so a description names only the threshold
 * of the queue that alerts.
 */
export function perQueueConditions(t: Thresholds, metric: string, key: PerQueueKey, severity: keyof Level): { queue?: string; expr: string; threshold: number }[] {
  const overridden = Object.keys(t.queues).filter((q) => t.queues[q]?.[key]);
  const out: { queue?: string; expr: string; threshold: number }[] = overridden.map((q) => ({
    queue: q,
    expr: `${metric}{queue="${q}"} > ${forQueue(t, q, key)[severity]}`,
    threshold: forQueue(t, q, key)[severity],
  }));
  const others = overridden.length ? `${metric}{queue!~"${overridden.join('|')}"}` : metric;
  out.push({ expr: `${others} > ${t.defaults[key][severity]}`, threshold: t.defaults[key][severity] });
  return out;
}

export function alertRules(t: Thresholds, o: RuleOptions = {}): AlertRule[] {
  const links = failureLinks(t);
  return thresholdAlertRules(t, o)
    .map(withValue)
    .map((r) => (LINKED_ALERTS.has(r.alert) ? { ...r, annotations: { ...r.annotations, ...links } } : r));
}

function thresholdAlertRules(t: Thresholds, o: RuleOptions): AlertRule[] {
  const f = (d: string) => o.forOverride ?? d;
  const runbook = (name: string) => `${t.links.runbook_base_url}#${name.toLowerCase()}`;
  const dash = (uid: string) => `${t.links.grafana_base_url}/d/${uid}`;
  /** Warning and critical, each one rule per overriding queue plus one for every other queue. */
  const both = (
    alert: AlertName,
    metric: string,
    key: PerQueueKey,
    summary: string,
    description: (s: keyof Level, threshold: string) => string,
    dashboard: string,
    threshold: (v: number) => string = String,
  ): AlertRule[] =>
    (['warning', 'critical'] as const).flatMap((severity) =>
      perQueueConditions(t, metric, key, severity).map((c) => ({
        alert,
        expr: c.expr,
        for: f(t.for.default),
        // `queue` also tells the per-queue rules of one name apart (promtool --lint duplicates).
        labels: c.queue ? { severity, queue: c.queue } : { severity },
        annotations: {
          summary,
          description: description(severity, `${threshold(c.threshold)}${c.queue ? '' : ' (default)'}`),
          runbook_url: runbook(alert),
          dashboard_url: dash(dashboard),
        },
      })),
    );
  const percent = (v: number) => `${Number((v * 100).toPrecision(10))}%`;
  const stuck = o.stuckWindow ?? t.for.queue_stuck_window;
  const win = o.rateWindow ?? '5m';
  return [
    ...both('BullMQQueueDepthHigh', R.depth, 'queue_depth',
      'Queue {{ $labels.queue }} is backing up',
      (s, th) => `{{ $labels.queue }} has {{ $value | humanize }} jobs waiting (waiting + prioritized), above its ${s} threshold of ${th}.`,
      DASHBOARD_UIDS.queues),
    ...both('BullMQActiveJobsHigh', R.active, 'active_jobs',
      'Too many active jobs in {{ $labels.queue }}',
      (s, th) => `{{ $labels.queue }} has {{ $value | humanize }} active jobs, above its ${s} threshold of ${th}.`,
      DASHBOARD_UIDS.queues),
    ...both('BullMQJobErrorRateHigh', R.errorRatio, 'job_error_ratio',
      'Jobs failing in {{ $labels.queue }}',
      (s, th) => `{{ $value | humanizePercentage }} of {{ $labels.queue }} jobs failed over ${win}, above its ${s} threshold of ${th}.`,
      DASHBOARD_UIDS.queues, percent),
    ...both('BullMQJobTimeoutRateHigh', R.timeoutRatio, 'job_timeout_ratio',
      'Jobs timing out in {{ $labels.queue }}',
      (s, th) => `{{ $value | humanizePercentage }} of {{ $labels.queue }} jobs failed by timeout over ${win}, above its ${s} threshold of ${th}.`,
      DASHBOARD_UIDS.queues, percent),
    ...both('BullMQJobLatencyHigh', R.e2eP(95), 'job_latency_p95_seconds',
      'Slow jobs in {{ $labels.queue }}',
      (s, th) => `{{ $labels.queue }} end-to-end p95 (eligible → final outcome) is {{ $value | humanizeDuration }}, above its ${s} threshold of ${th}.`,
      DASHBOARD_UIDS.queues, (v) => `${v}s`),
    {
      alert: 'BullMQQueueStuck',
      // `unless … > 0` rather than `and … == 0`: a queue whose completed counter does not exist at all (no
      // worker ever consumed it) is stuck too; `and` would need that series to be present.
      expr: `${R.depth} > 0 unless on (queue) (sum by (queue) (increase(bullmq_jobs_completed_total[${stuck}])) > 0)`,
      for: f('1m'),
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Queue {{ $labels.queue }} is stuck',
        description: `{{ $labels.queue }} has {{ $value | humanize }} jobs waiting and completed none in ${stuck}.`,
        runbook_url: runbook('BullMQQueueStuck'),
        dashboard_url: dash(DASHBOARD_UIDS.queues),
      },
    },
    {
      alert: 'BullMQNoWorkers',
      expr: `max by (queue) (bullmq_queue_workers) == 0`,
      for: f(t.for.default),
      labels: { severity: 'critical' },
      annotations: {
        summary: 'No worker consumes {{ $labels.queue }}',
        description: 'No worker connection has consumed {{ $labels.queue }}: its jobs will not be processed. (If no worker is up at all, TargetDown fires for job="worker".)',
        runbook_url: runbook('BullMQNoWorkers'),
        dashboard_url: dash(DASHBOARD_UIDS.queues),
      },
    },
    {
      // The queue-state gauges come from the workers: with no worker at all they vanish, and so would every
      // queue alert. In compose a removed replica also leaves DNS (no `up == 0`), so TargetDown is silent too.
      alert: 'BullMQNoWorkers',
      expr: 'absent(up{job="worker"} == 1)',
      for: f(t.for.target_down),
      // `job` (absent() keeps no labels) also tells this rule apart from the per-queue one above.
      labels: { severity: 'critical', job: 'worker' },
      annotations: {
        summary: 'No worker is running',
        description: 'No worker target is up: no queue is consumed, jobs are accepted and pile up, and the queue alerts are blind (their gauges come from the workers).',
        runbook_url: runbook('BullMQNoWorkers'),
        dashboard_url: dash(DASHBOARD_UIDS.workers),
      },
    },
    ...(['warning', 'critical'] as const).map((severity): AlertRule => ({
      alert: 'WorkerMemoryHigh',
      expr: `process_resident_memory_bytes{job="worker"} > ${t.worker_memory_bytes[severity]}`,
      for: f(t.for.default),
      labels: { severity },
      annotations: {
        summary: 'Worker {{ $labels.instance }} uses a lot of memory',
        description: `Worker {{ $labels.instance }} resident memory is {{ $value | humanize1024 }}B, above the ${severity} threshold (${t.worker_memory_bytes[severity]} bytes).`,
        runbook_url: runbook('WorkerMemoryHigh'),
        dashboard_url: dash(DASHBOARD_UIDS.workers),
      },
    })),
    ...(['warning', 'critical'] as const).map((severity): AlertRule => ({
      alert: 'RedisMemoryHigh',
      expr: `${R.redisMemoryRatio} > ${t.redis_memory_ratio[severity]}`,
      for: f(t.for.default),
      labels: { severity },
      annotations: {
        summary: 'Redis {{ $labels.instance }} is close to maxmemory',
        description: `Redis uses {{ $value | humanizePercentage }} of maxmemory, above the ${severity} threshold (${t.redis_memory_ratio[severity]}). With noeviction, writes (new jobs) fail when it is full.`,
        runbook_url: runbook('RedisMemoryHigh'),
        dashboard_url: dash(DASHBOARD_UIDS.redis),
      },
    })),
    {
      alert: 'RedisDown',
      expr: 'redis_up == 0',
      for: f(t.for.redis_down),
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Redis is down',
        description: 'redis_exporter cannot reach Redis {{ $labels.instance }}: no job can be enqueued or processed.',
        runbook_url: runbook('RedisDown'),
        dashboard_url: dash(DASHBOARD_UIDS.redis),
      },
    },
    {
      alert: 'RedisEvictionPolicyUnsafe',
      expr: 'max by (instance, maxmemory_policy) (redis_instance_info{maxmemory_policy!="noeviction"}) == 1',
      for: f('0m'),
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Redis may evict job keys',
        description: 'Redis {{ $labels.instance }} runs with maxmemory-policy {{ $labels.maxmemory_policy }}; BullMQ needs noeviction or accepted jobs can silently disappear.',
        runbook_url: runbook('RedisEvictionPolicyUnsafe'),
        dashboard_url: dash(DASHBOARD_UIDS.redis),
      },
    },
    ...(['warning', 'critical'] as const).map((severity): AlertRule => ({
      alert: 'ApiErrorRateHigh',
      expr: `${R.api5xxRatio} > ${t.api_5xx_ratio[severity]}`,
      for: f(t.for.default),
      labels: { severity },
      annotations: {
        summary: 'API answers with server errors',
        description: `{{ $value | humanizePercentage }} of API requests answered 5xx over ${win}, above the ${severity} threshold (${t.api_5xx_ratio[severity]}).`,
        runbook_url: runbook('ApiErrorRateHigh'),
        dashboard_url: dash(DASHBOARD_UIDS.api),
      },
    })),
    {
      alert: 'TargetDown',
      expr: 'up == 0',
      for: f(t.for.target_down),
      labels: { severity: 'critical' },
      annotations: {
        summary: 'Scrape target {{ $labels.job }}/{{ $labels.instance }} is down',
        description: 'Prometheus cannot scrape {{ $labels.job }} at {{ $labels.instance }}: the process is down or unreachable.',
        runbook_url: runbook('TargetDown'),
      },
    },
  ];
}

/**
 * Recording groups before the alert groups that read them. Prometheus runs groups independently; promtool
 * runs them in this order when a test says so (otherwise by name, and alerts would read the previous step's
 * recordings).
 */
export const RULE_GROUP_ORDER = ['bullmq-recording', 'bullmq-slo-recording', 'bullmq-slo-period', 'bullmq-alerts', 'bullmq-slo-alerts'];

export function rulesFile(t: Thresholds, o: RuleOptions = {}) {
  const slo = { windows: o.sloWindows, forOverride: o.forOverride };
  const sloRecording = sloRecordingRules(t, slo);
  return {
    groups: [
      { name: 'bullmq-recording', rules: recordingRules(o) },
      { name: 'bullmq-slo-recording', rules: sloRecording.windows },
      // The drill's period is minutes long: it keeps the global (1 s) evaluation.
      { name: 'bullmq-slo-period', ...(o.sloWindows ? {} : { interval: SLO_PERIOD_GROUP_INTERVAL }), rules: sloRecording.period },
      { name: 'bullmq-alerts', rules: alertRules(t, o) },
      { name: 'bullmq-slo-alerts', rules: sloAlertRules(t, slo) },
    ],
  };
}
