/**
 * Prometheus recording and alert rules, generated from thresholds.yaml. Recording rules hold the ratios and
 * quantiles that alerts and dashboards share. Queue-state gauges come from every worker replica (identical
 * values), so they are aggregated with max, never sum.
 */
import { forQueue, Level, PerQueueKey, Thresholds } from './thresholds';

export interface RuleOptions {
  /** Replaces every `for:` (the live drill uses 0s/15s; shipped rules keep realistic values). */
  forOverride?: string;
  /** Window for rates in recording rules (shipped 5m). */
  rateWindow?: string;
  /** Window of "nothing completed" for BullMQQueueStuck (shipped from thresholds). */
  stuckWindow?: string;
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
  e2eP95: 'queue:bullmq_job_e2e_seconds:p95',
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
] as const;
export type AlertName = (typeof ALERT_NAMES)[number];

export interface AlertRule {
  alert: AlertName;
  expr: string;
  for: string;
  labels: { severity: 'warning' | 'critical'; job?: string };
  annotations: { summary: string; description: string; runbook_url: string; dashboard_url?: string };
}

export const DASHBOARD_UIDS = {
  queues: 'bullmq-queues',
  api: 'bullmq-api',
  workers: 'bullmq-workers',
  redis: 'bullmq-redis',
  k6: 'bullmq-k6',
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
  }
  rules.push(
    // Quantiles do not add; wait p95 + processing p95 is a conservative (upper-side) end-to-end p95.
    { record: R.e2eP95, expr: `${R.waitP(95)} + on (queue) ${R.processingP(95)}` },
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
 * `metric > threshold`, per queue: one clause per queue with an override, and the default for every other
 * queue (so a new queue is covered without edits).
 */
export function perQueueCondition(t: Thresholds, metric: string, key: PerQueueKey, severity: keyof Level): string {
  const overridden = Object.keys(t.queues).filter((q) => t.queues[q]?.[key]);
  const clauses = overridden.map((q) => `${metric}{queue="${q}"} > ${forQueue(t, q, key)[severity]}`);
  const others = overridden.length ? `${metric}{queue!~"${overridden.join('|')}"}` : metric;
  clauses.push(`${others} > ${t.defaults[key][severity]}`);
  return clauses.length === 1 ? clauses[0]! : clauses.map((c) => `(${c})`).join(' or ');
}

export function alertRules(t: Thresholds, o: RuleOptions = {}): AlertRule[] {
  const f = (d: string) => o.forOverride ?? d;
  const runbook = (name: string) => `${t.links.runbook_base_url}#${name.toLowerCase()}`;
  const dash = (uid: string) => `${t.links.grafana_base_url}/d/${uid}`;
  const both = (
    alert: AlertName,
    exprFor: (s: keyof Level) => string,
    forDur: string,
    summary: string,
    description: (s: keyof Level) => string,
    dashboard: string,
  ): AlertRule[] =>
    (['warning', 'critical'] as const).map((severity) => ({
      alert,
      expr: exprFor(severity),
      for: f(forDur),
      labels: { severity },
      annotations: { summary, description: description(severity), runbook_url: runbook(alert), dashboard_url: dash(dashboard) },
    }));
  const queueLevel = (key: PerQueueKey) => (s: keyof Level) => {
    const values = [`default ${t.defaults[key][s]}`, ...Object.keys(t.queues).filter((q) => t.queues[q]?.[key]).map((q) => `${q} ${forQueue(t, q, key)[s]}`)];
    return values.join(', ');
  };
  const stuck = o.stuckWindow ?? t.for.queue_stuck_window;
  const win = o.rateWindow ?? '5m';
  return [
    ...both('BullMQQueueDepthHigh', (s) => perQueueCondition(t, R.depth, 'queue_depth', s), t.for.default,
      'Queue {{ $labels.queue }} is backing up',
      (s) => `{{ $labels.queue }} has {{ $value | humanize }} jobs waiting (waiting + prioritized), above the ${s} threshold (${queueLevel('queue_depth')(s)}).`,
      DASHBOARD_UIDS.queues),
    ...both('BullMQActiveJobsHigh', (s) => perQueueCondition(t, R.active, 'active_jobs', s), t.for.default,
      'Too many active jobs in {{ $labels.queue }}',
      (s) => `{{ $labels.queue }} has {{ $value | humanize }} active jobs, above the ${s} threshold (${queueLevel('active_jobs')(s)}).`,
      DASHBOARD_UIDS.queues),
    ...both('BullMQJobErrorRateHigh', (s) => perQueueCondition(t, R.errorRatio, 'job_error_ratio', s), t.for.default,
      'Jobs failing in {{ $labels.queue }}',
      (s) => `{{ $value | humanizePercentage }} of {{ $labels.queue }} jobs failed over ${win}, above the ${s} threshold (${queueLevel('job_error_ratio')(s)}).`,
      DASHBOARD_UIDS.queues),
    ...both('BullMQJobTimeoutRateHigh', (s) => perQueueCondition(t, R.timeoutRatio, 'job_timeout_ratio', s), t.for.default,
      'Jobs timing out in {{ $labels.queue }}',
      (s) => `{{ $value | humanizePercentage }} of {{ $labels.queue }} jobs failed by timeout over ${win}, above the ${s} threshold (${queueLevel('job_timeout_ratio')(s)}).`,
      DASHBOARD_UIDS.queues),
    ...both('BullMQJobLatencyHigh', (s) => perQueueCondition(t, R.e2eP95, 'job_latency_p95_seconds', s), t.for.default,
      'Slow jobs in {{ $labels.queue }}',
      (s) => `{{ $labels.queue }} end-to-end p95 is {{ $value | humanizeDuration }}, above the ${s} threshold in seconds (${queueLevel('job_latency_p95_seconds')(s)}).`,
      DASHBOARD_UIDS.queues),
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

export function rulesFile(t: Thresholds, o: RuleOptions = {}) {
  return {
    groups: [
      { name: 'bullmq-recording', rules: recordingRules(o) },
      { name: 'bullmq-alerts', rules: alertRules(t, o) },
    ],
  };
}
