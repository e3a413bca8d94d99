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
  /** How long an alert whose series vanished keeps firing, to say so before it resolves (shipped 2m). */
  goneWindow?: string;
}

export const R = {
  depth: 'queue:bullmq_queue_depth:max',
  active: 'queue:bullmq_queue_active:max',
  /** waiting + prioritized + delayed: also the jobs that wait out a quota or an open circuit in delayed. */
  backlog: 'queue:bullmq_queue_backlog:max',
  paused: 'queue:bullmq_queue_paused:max',
  slots: 'queue:bullmq_worker_slots:sum',
  saturation: 'queue:bullmq_worker_saturation:ratio',
  softTimeoutRatio: 'queue:bullmq_job_soft_timeout_ratio:rate5m',
  outboundRate: 'dependency_outcome:outbound_requests:rate5m',
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
  'BullMQWorkersSaturated',
  'BullMQJobErrorRateHigh',
  'BullMQJobTimeoutRateHigh',
  'BullMQJobLatencyHigh',
  'BullMQQueueStuck',
  'BullMQNoWorkers',
  'BullMQQueuePaused',
  'BullMQQueueThrottled',
  'BullMQJobSoftTimeoutsHigh',
  'OutboundCircuitOpen',
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
  /** page: PagerDuty and Slack; critical and warning: Slack (observability/alertmanager/alertmanager.yml). */
  labels: { severity: Severity; job?: string; queue?: string };
  annotations: AlertAnnotations;
}

export type Severity = 'warning' | 'critical' | 'page';

export interface AlertAnnotations extends Partial<FailureLinks> {
  summary: string;
  description: string;
  /** `$value` alone: the value last measured, shown by the resolved notification. */
  value?: string;
  /**
   * Set (non-empty) only while the alert's series has vanished (no traffic, target gone): the alert then ends
   * without having recovered, and the resolved notification says so instead of "back within its threshold".
   */
  series_gone?: string;
  runbook_url: string;
  dashboard_url?: string;
}

const LINKED_ALERTS: ReadonlySet<string> = new Set(['BullMQJobErrorRateHigh', 'BullMQJobTimeoutRateHigh', 'BullMQJobLatencyHigh']);

/**
 * The `$value` of the description on its own (`value` annotation): Prometheus keeps the annotations of an
 * alert's last firing evaluation when it resolves, so the resolved notification shows this as the value last
 * measured (docs/observability.md, "Alert texts").
 */
function withValue(rule: AlertRule): AlertRule {
  const m = /\{\{ \$value(?: \| \w+)? \}\}/.exec(rule.annotations.description);
  const { summary, description, series_gone, runbook_url, dashboard_url } = rule.annotations;
  return m ? { ...rule, annotations: { summary, description, value: m[0], ...(series_gone ? { series_gone } : {}), runbook_url, ...(dashboard_url ? { dashboard_url } : {}) } } : rule;
}

export const DASHBOARD_UIDS = {
  queues: 'bullmq-queues',
  api: 'bullmq-api',
  workers: 'bullmq-workers',
  redis: 'bullmq-redis',
  k6: 'bullmq-k6',
  slo: SLO_DASHBOARD_UID,
} as const;

/**
 * A ratio or quantile of nothing (0/0: no job ended, no request served) is NaN; it is not recorded, so a missing
 * sample always means "nothing measured", as when a target is gone, and alerts can tell a signal that ended
 * from one that recovered (endsVisibly).
 */
const measured = (expr: string) => `${expr} >= -Inf`;

export function recordingRules(o: RuleOptions = {}) {
  const w = o.rateWindow ?? '5m';
  const q = (name: string) => `sum by (queue, le) (rate(${name}_bucket[${w}]))`;
  const rules: { record: string; expr: string }[] = [
    { record: R.depth, expr: `sum by (queue) (max by (queue, state) (bullmq_queue_jobs{state=~"waiting|prioritized"}))` },
    { record: R.active, expr: `max by (queue) (bullmq_queue_jobs{state="active"})` },
    { record: R.backlog, expr: `sum by (queue) (max by (queue, state) (bullmq_queue_jobs{state=~"waiting|prioritized|delayed"}))` },
    { record: R.paused, expr: `max by (queue) (bullmq_queue_paused)` },
    // Each replica exports its own Worker's concurrency: the sum is the queue's capacity (unlike the queue-state
    // gauges, which every replica reads from the same Redis and are max'ed).
    { record: R.slots, expr: `sum by (queue) (bullmq_worker_concurrency)` },
    { record: R.saturation, expr: `${R.active} / ${R.slots}` },
    { record: R.completedRate, expr: `sum by (queue) (rate(bullmq_jobs_completed_total[${w}]))` },
    { record: R.failedRate, expr: `sum by (queue) (rate(bullmq_jobs_failed_total[${w}]))` },
    { record: R.errorRatio, expr: measured(`${R.failedRate} / (${R.completedRate} + ${R.failedRate})`) },
    {
      record: R.timeoutRatio,
      expr: measured(`sum by (queue) (rate(bullmq_jobs_failed_total{reason="timeout"}[${w}])) / (${R.completedRate} + ${R.failedRate})`),
    },
  ];
  for (const p of [50, 95, 99]) {
    rules.push({ record: R.waitP(p), expr: measured(`histogram_quantile(${p / 100}, ${q('bullmq_job_wait_seconds')})`) });
    rules.push({ record: R.processingP(p), expr: measured(`histogram_quantile(${p / 100}, ${q('bullmq_job_processing_seconds')})`) });
    // Observed once per job, eligible → final outcome (completed or failed): a real quantile, not a sum of two.
    rules.push({ record: R.e2eP(p), expr: measured(`histogram_quantile(${p / 100}, ${q('bullmq_job_e2e_seconds')})`) });
  }
  rules.push(
    { record: R.apiRequestRate, expr: `sum by (route, method, status_code) (rate(http_request_duration_seconds_count{job="api"}[${w}]))` },
    {
      record: R.api5xxRatio,
      // "or … * 0" keeps the ratio defined (0) while no 5xx has been served yet.
      expr: measured(`(sum by (job) (rate(http_request_duration_seconds_count{job="api",status_code=~"5.."}[${w}])) or sum by (job) (rate(http_request_duration_seconds_count{job="api"}[${w}])) * 0) / sum by (job) (rate(http_request_duration_seconds_count{job="api"}[${w}]))`),
    },
    { record: R.redisMemoryRatio, expr: `redis_memory_used_bytes / (redis_memory_max_bytes > 0)` },
    {
      record: R.softTimeoutRatio,
      expr: measured(`sum by (queue) (rate(bullmq_job_soft_timeouts_total[${w}])) / sum by (queue) (rate(bullmq_job_processing_seconds_count[${w}]))`),
    },
    { record: R.outboundRate, expr: `sum by (dependency, outcome) (rate(outbound_requests_total[${w}]))` },
  );
  return rules;
}

/**
 * `metric > threshold`, per queue: one condition per queue with an override, and the default for every other
 * queue (so a new queue is covered without edits). One rule each, so a description names only the threshold
 * of the queue that alerts.
 */
export function perQueueConditions(t: Thresholds, metric: string, key: PerQueueKey, severity: keyof Level): { queue?: string; series: string; expr: string; threshold: number }[] {
  const overridden = Object.keys(t.queues).filter((q) => t.queues[q]?.[key]);
  const out: { queue?: string; series: string; expr: string; threshold: number }[] = overridden.map((q) => ({
    queue: q,
    series: `${metric}{queue="${q}"}`,
    expr: `${metric}{queue="${q}"} > ${forQueue(t, q, key)[severity]}`,
    threshold: forQueue(t, q, key)[severity],
  }));
  const others = overridden.length ? `${metric}{queue!~"${overridden.join('|')}"}` : metric;
  out.push({ series: others, expr: `${others} > ${t.defaults[key][severity]}`, threshold: t.defaults[key][severity] });
  return out;
}

/** How an alert can end without its signal recovering, and what its notification then says. */
export interface SeriesGone {
  /** The series' own labels that identify the alert (`queue`, or `instance`). */
  on: string;
  /** A printf format of the alert's own series with one %q (its `on` label's value), for the template query. */
  probe: string;
  /** Why it vanished, in the notification's words. */
  text: string;
  /** Keep firing this long (instead of the short gone window) while the queue still has jobs waiting. */
  holdWhileWaiting?: string;
}

/**
 * `series > threshold`, plus, once the series has vanished (nothing left to measure: the recording rules keep no
 * NaN; or the target is gone) while its last value was above: the alert keeps firing for `window` with `series_gone` set, so the
 * resolved notification that follows says the signal ended rather than recovered (Prometheus keeps the
 * annotations of an alert's last firing evaluation). `holdWhileWaiting`: a latency signal of a queue whose jobs
 * wait but none ends is no recovery either — it keeps firing until BullMQQueueStuck has taken over (which
 * inhibits it: observability/alertmanager/alertmanager.yml).
 */
export function endsVisibly(series: string, threshold: number, gone: SeriesGone, window: string): { expr: string; series_gone: string } {
  const lastSeen = (w: string) => `last_over_time(${series}[${w}]) > ${threshold}`;
  const vanished = gone.holdWhileWaiting
    ? `(${lastSeen(window)} or (${lastSeen(gone.holdWhileWaiting)} and on (queue) ${R.depth} > 0))`
    : lastSeen(window);
  return {
    expr: `${series} > ${threshold} or (${vanished} unless on (${gone.on}) ${series})`,
    series_gone: `{{ if not (printf \`${gone.probe}\` $labels.${gone.on} | query) }}${gone.text}{{ end }}`,
  };
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
    gone?: Omit<SeriesGone, 'on' | 'probe'>,
  ): AlertRule[] =>
    (['warning', 'critical'] as const).flatMap((severity) =>
      perQueueConditions(t, metric, key, severity).map((c) => {
        const visible = gone && endsVisibly(c.series, c.threshold, { on: 'queue', probe: `${metric}{queue=%q}`, ...gone }, goneWindow);
        return {
          alert,
          expr: visible ? visible.expr : c.expr,
          for: f(t.for.default),
          // `queue` also tells the per-queue rules of one name apart (promtool --lint duplicates).
          labels: c.queue ? { severity, queue: c.queue } : { severity },
          annotations: {
            summary,
            description: description(severity, `${threshold(c.threshold)}${c.queue ? '' : ' (default)'}`),
            ...(visible ? { series_gone: visible.series_gone } : {}),
            runbook_url: runbook(alert),
            dashboard_url: dash(dashboard),
          },
        };
      }),
    );
  const percent = (v: number) => `${Number((v * 100).toPrecision(10))}%`;
  const stuck = o.stuckWindow ?? t.for.queue_stuck_window;
  const win = o.rateWindow ?? '5m';
  const goneWindow = o.goneWindow ?? '2m';
  const noJobEnded = { text: `No {{ $labels.queue }} job ended in the last ${win}: nothing is measured any more (no traffic, or no worker), so this ends without having recovered.` };
  const pausedQueue = `(${R.paused} == 1)`;
  const pageDeps = t.outbound.page_dependencies.join('|');
  const throttledFor = f(t.outbound.throttled_backlog_for);
  return [
    ...both('BullMQQueueDepthHigh', R.depth, 'queue_depth',
      'Queue {{ $labels.queue }} is backing up',
      (s, th) => `{{ $labels.queue }} has {{ $value | humanize }} jobs waiting (waiting + prioritized), above its ${s} threshold of ${th}.`,
      DASHBOARD_UIDS.queues, String,
      { text: 'The queue gauges of {{ $labels.queue }} stopped (no worker reports them): its depth is no longer known, so this ends without having recovered.' }),
    {
      alert: 'BullMQWorkersSaturated',
      // Against the slots really deployed (bullmq_worker_concurrency summed over replicas), not a fixed count:
      // the same rule holds for compose's 5 replicas and a KEDA maximum of 30.
      expr: `${R.saturation} >= ${t.saturation.busy_ratio} and on (queue) ${R.depth} > 0`,
      for: f(t.saturation.for),
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Workers of {{ $labels.queue }} are saturated',
        description: `{{ $value | humanizePercentage }} of the worker slots of {{ $labels.queue }} are busy while jobs wait (threshold ${Number((t.saturation.busy_ratio * 100).toPrecision(10))}% for ${t.saturation.for}): more replicas, not more time, clear this backlog.`,
        runbook_url: runbook('BullMQWorkersSaturated'),
        dashboard_url: dash(DASHBOARD_UIDS.queues),
      },
    },
    ...both('BullMQJobErrorRateHigh', R.errorRatio, 'job_error_ratio',
      'Jobs failing in {{ $labels.queue }}',
      (s, th) => `{{ $value | humanizePercentage }} of {{ $labels.queue }} jobs failed over ${win}, above its ${s} threshold of ${th}.`,
      DASHBOARD_UIDS.queues, percent, noJobEnded),
    ...both('BullMQJobTimeoutRateHigh', R.timeoutRatio, 'job_timeout_ratio',
      'Jobs timing out in {{ $labels.queue }}',
      (s, th) => `{{ $value | humanizePercentage }} of {{ $labels.queue }} jobs failed by timeout over ${win}, above its ${s} threshold of ${th}.`,
      DASHBOARD_UIDS.queues, percent, noJobEnded),
    ...both('BullMQJobLatencyHigh', R.e2eP(95), 'job_latency_p95_seconds',
      'Slow jobs in {{ $labels.queue }}',
      (s, th) => `{{ $labels.queue }} end-to-end p95 (eligible → final outcome) is {{ $value | humanizeDuration }}, above its ${s} threshold of ${th}.`,
      DASHBOARD_UIDS.queues, (v) => `${v}s`,
      {
        text: `No {{ $labels.queue }} job ended in the last ${win}, so its p95 is no longer measured{{ with printf \`${R.depth}{queue=%q} > 0\` $labels.queue | query }} while {{ . | first | value | humanize }} jobs wait: BullMQQueueStuck takes over{{ else }} (no traffic, or no worker): this ends without having recovered{{ end }}.`,
        holdWhileWaiting: stuck,
      }),
    {
      alert: 'BullMQQueueStuck',
      // `unless … > 0` rather than `and … == 0`: a queue whose completed counter does not exist at all (no
      // worker ever consumed it) is stuck too; `and` would need that series to be present.
      // A paused queue is not stuck: BullMQQueuePaused reports it.
      expr: `${R.depth} > 0 unless on (queue) (sum by (queue) (increase(bullmq_jobs_completed_total[${stuck}])) > 0) unless on (queue) ${pausedQueue}`,
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
    {
      alert: 'BullMQQueuePaused',
      // BullMQ 6 keeps a paused queue's jobs in wait, so they count in the depth; the queue's own gauge says it is paused.
      expr: `${R.depth} > 0 and on (queue) ${pausedQueue}`,
      for: f(t.paused.for),
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Queue {{ $labels.queue }} is paused with jobs waiting',
        description: `{{ $labels.queue }} has been paused for at least ${t.paused.for} with {{ $value | humanize }} jobs waiting: none of them runs until it is resumed.`,
        runbook_url: runbook('BullMQQueuePaused'),
        dashboard_url: dash(DASHBOARD_UIDS.queues),
      },
    },
    {
      alert: 'BullMQQueueThrottled',
      // Jobs waiting out the dependency's quota is the quota at work; only a backlog that keeps growing meanwhile
      // means the quota is below the arrival rate.
      expr: `sum by (queue) (rate(bullmq_rate_limit_hits_total{source="quota"}[${win}])) > 0 and on (queue) deriv(${R.backlog}[${win}]) > 0`,
      for: throttledFor,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Outbound quota holds back {{ $labels.queue }} while its backlog grows',
        description: `{{ $labels.queue }} jobs wait for their dependency's outbound quota ({{ $value | humanize }} quota waits/s) and its backlog (waiting + prioritized + delayed) has kept growing for ${t.outbound.throttled_backlog_for}: jobs arrive faster than the quota lets them out.`,
        runbook_url: runbook('BullMQQueueThrottled'),
        dashboard_url: dash(DASHBOARD_UIDS.workers),
      },
    },
    {
      alert: 'BullMQJobSoftTimeoutsHigh',
      expr: `${R.softTimeoutRatio} > ${t.outbound.soft_timeout_ratio}`,
      for: f(t.for.default),
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Attempts of {{ $labels.queue }} run close to their timeout',
        description: `{{ $value | humanizePercentage }} of {{ $labels.queue }} attempts were still running at 80% of the queue's timeout over ${win} (threshold ${percent(t.outbound.soft_timeout_ratio)}): timeouts, and retries, follow if the dependency slows further.`,
        runbook_url: runbook('BullMQJobSoftTimeoutsHigh'),
        dashboard_url: dash(DASHBOARD_UIDS.workers),
      },
    },
    ...(['page', 'warning'] as const).map((severity): AlertRule => ({
      alert: 'OutboundCircuitOpen',
      // Every replica reads the shared circuit state from Redis: max, never sum.
      expr: `max by (dependency) (outbound_circuits_open{dependency${severity === 'page' ? '=~' : '!~'}"${pageDeps}"}) > 0`,
      for: f(t.outbound.circuit_open_for),
      labels: { severity },
      annotations: {
        summary: 'Circuit open for {{ $labels.dependency }}',
        description: `{{ $value | humanize }} circuit(s) of {{ $labels.dependency }} have been open or half-open for at least ${t.outbound.circuit_open_for}: calls are short-circuited and its jobs wait in delayed (attempts kept) until a probe succeeds.`,
        runbook_url: runbook('OutboundCircuitOpen'),
        dashboard_url: dash(DASHBOARD_UIDS.workers),
      },
    })),
    ...(['warning', 'critical'] as const).map((severity): AlertRule => {
      const visible = endsVisibly('process_resident_memory_bytes{job="worker"}', t.worker_memory_bytes[severity], {
        on: 'instance',
        probe: 'process_resident_memory_bytes{job="worker",instance=%q}',
        text: 'Worker {{ $labels.instance }} is no longer scraped (it exited or was restarted): its memory ends unmeasured, not recovered.',
      }, goneWindow);
      return {
        alert: 'WorkerMemoryHigh',
        expr: visible.expr,
        for: f(t.for.default),
        labels: { severity },
        annotations: {
          summary: 'Worker {{ $labels.instance }} uses a lot of memory',
          description: `Worker {{ $labels.instance }} resident memory is {{ $value | humanize1024 }}B, above the ${severity} threshold (${t.worker_memory_bytes[severity]} bytes).`,
          series_gone: visible.series_gone,
          runbook_url: runbook('WorkerMemoryHigh'),
          dashboard_url: dash(DASHBOARD_UIDS.workers),
        },
      };
    }),
    ...(['warning', 'critical'] as const).map((severity): AlertRule => {
      const visible = endsVisibly(R.redisMemoryRatio, t.redis_memory_ratio[severity], {
        on: 'instance',
        probe: `${R.redisMemoryRatio}{instance=%q}`,
        text: 'Redis {{ $labels.instance }} memory is no longer reported (redis_exporter or Redis gone, or maxmemory unset): this ends unmeasured, not recovered.',
      }, goneWindow);
      return {
        alert: 'RedisMemoryHigh',
        expr: visible.expr,
        for: f(t.for.default),
        labels: { severity },
        annotations: {
          summary: 'Redis {{ $labels.instance }} is close to maxmemory',
          description: `Redis uses {{ $value | humanizePercentage }} of maxmemory, above the ${severity} threshold (${t.redis_memory_ratio[severity]}). With noeviction, writes (new jobs) fail when it is full.`,
          series_gone: visible.series_gone,
          runbook_url: runbook('RedisMemoryHigh'),
          dashboard_url: dash(DASHBOARD_UIDS.redis),
        },
      };
    }),
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
    ...(['warning', 'critical'] as const).map((severity): AlertRule => {
      const visible = endsVisibly(R.api5xxRatio, t.api_5xx_ratio[severity], {
        on: 'job',
        probe: `${R.api5xxRatio}{job=%q}`,
        text: `The API served no request in the last ${win} (no traffic, or the API is gone): its 5xx ratio ends unmeasured, not recovered.`,
      }, goneWindow);
      return {
        alert: 'ApiErrorRateHigh',
        expr: visible.expr,
        for: f(t.for.default),
        labels: { severity },
        annotations: {
          summary: 'API answers with server errors',
          description: `{{ $value | humanizePercentage }} of API requests answered 5xx over ${win}, above the ${severity} threshold (${t.api_5xx_ratio[severity]}).`,
          series_gone: visible.series_gone,
          runbook_url: runbook('ApiErrorRateHigh'),
          dashboard_url: dash(DASHBOARD_UIDS.api),
        },
      };
    }),
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
