/**
 * promtool unit tests for every alert, with inputs derived from thresholds.yaml (never typed here): for each
 * severity, "not yet" (condition true but `for:` not elapsed, or condition false) and "firing" with the exact
 * labels and annotations. Expected annotations are the rule's own templates expanded for the value the inputs
 * produce (go-format.ts mirrors Prometheus' formatting), so a wrong expression, threshold or template fails
 * `promtool test rules`, and changing a threshold moves the inputs with it.
 *
 * SLO burn-rate alerts have their own file (slo-rule-tests.ts): for every window pair: fires at the burn rate, silent just
 * below it, silent when only the long or only the short window burns.
 */
import { humanize, humanize1024, humanizeDuration, humanizePercentage } from './go-format';
import { alertRules, type AlertName, type AlertRule, RULE_GROUP_ORDER, type Severity } from './rules';
import { durationSeconds, forQueue, type Level, type PerQueueKey, type Thresholds } from '../../services/common/thresholds';

export interface InputSeries {
  series: string;
  values: string;
}

interface Scenario {
  alert: AlertName;
  severity: Severity;
  why: string;
  series: InputSeries[];
  notYetAt: string;
  firingAt: string;
  /** Labels the alert carries besides alertname/severity. */
  labels: Record<string, string>;
  /** What `$value` renders as in the description, for the chosen inputs. */
  value: string;
  /** Also firing at firingAt (a critical condition also satisfies the warning rule). */
  alsoWarning?: boolean;
  /** Which of the rules with this name and severity (default: the one for labels.queue, else the first). */
  ruleIndex?: number;
  /** Series present during the whole case that must never alert (at the threshold, or under their own override). */
  control?: InputSeries[];
}

const counter = (perMinute: number) => `0+${perMinute}x40`;
const gauge = (v: number | string, n = 40) => `${v}x${n}`;

function hist(name: string, labels: string, buckets: Record<string, number>): InputSeries[] {
  return Object.entries(buckets).map(([le, perMinute]) => ({ series: `${name}_bucket{${labels},le="${le}"}`, values: counter(perMinute) }));
}

/** A value strictly between warning and critical (warning cases) or clearly above critical (critical cases). */
function pick(l: Level, severity: 'warning' | 'critical', integer = false): number {
  const v = severity === 'warning' ? (l.warning + l.critical) / 2 : l.critical * 1.5;
  return integer ? Math.round(v) : v;
}

/** The same for ratios that cannot exceed 1: critical cases sit halfway between critical and 1. */
function pickRatio(l: Level, severity: 'warning' | 'critical'): number {
  return severity === 'warning' ? (l.warning + l.critical) / 2 : (l.critical + 1) / 2;
}

/** Integer per-minute counts (bad, good) out of `total` for a ratio, and the ratio they really make. */
function split(ratio: number, total = 10_000): { bad: number; good: number; ratio: number } {
  const bad = Math.round(ratio * total);
  return { bad, good: total - bad, ratio: bad / total };
}

export function scenarios(t: Thresholds): Scenario[] {
  const out: Scenario[] = [];
  const levels = ['warning', 'critical'] as const;
  const q = (queue: string, key: PerQueueKey) => forQueue(t, queue, key);
  for (const severity of levels) {
    const crit = severity === 'critical';
    // Two replicas report the same depth: max makes it V, a sum would make it 2V (above critical): caught here.
    const depth = pick(q('payments', 'queue_depth'), severity, true);
    const replicas = (state: string, v: number) =>
      ['w1', 'w2'].map((i) => ({ series: `bullmq_queue_jobs{job="worker",instance="${i}",queue="payments",state="${state}"}`, values: gauge(v) }));
    // Warning cases also hold a queue exactly at its warning threshold (alerts are strictly "above").
    const atWarning = (state: string, v: number) =>
      crit ? [] : ['w1', 'w2'].map((i) => ({ series: `bullmq_queue_jobs{job="worker",instance="${i}",queue="notifications",state="${state}"}`, values: gauge(v) }));
    out.push({ alert: 'BullMQQueueDepthHigh', severity, why: `payments depth is ${depth} on both replicas`, series: replicas('prioritized', depth), control: atWarning('waiting', q('notifications', 'queue_depth').warning), notYetAt: '3m', firingAt: '8m', labels: { queue: 'payments' }, value: humanize(depth), alsoWarning: crit });

    const err = split(pickRatio(q('notifications', 'job_error_ratio'), severity));
    out.push({
      alert: 'BullMQJobErrorRateHigh', severity, why: `${humanizePercentage(err.ratio)} of notifications jobs fail`,
      series: [
        { series: 'bullmq_jobs_completed_total{job="worker",instance="w1",queue="notifications"}', values: counter(err.good) },
        { series: 'bullmq_jobs_failed_total{job="worker",instance="w1",queue="notifications",reason="provider_error"}', values: counter(err.bad) },
      ],
      notYetAt: '3m', firingAt: '10m', labels: { queue: 'notifications' }, value: humanizePercentage(err.ratio), alsoWarning: crit,
    });
    const to = split(pickRatio(q('webhooks', 'job_timeout_ratio'), severity));
    out.push({
      alert: 'BullMQJobTimeoutRateHigh', severity, why: `${humanizePercentage(to.ratio)} of webhooks jobs time out`,
      series: [
        { series: 'bullmq_jobs_completed_total{job="worker",instance="w1",queue="webhooks"}', values: counter(to.good) },
        { series: 'bullmq_jobs_failed_total{job="worker",instance="w1",queue="webhooks",reason="timeout"}', values: counter(to.bad) },
      ],
      notYetAt: '3m', firingAt: '10m', labels: { queue: 'webhooks' }, value: humanizePercentage(to.ratio), alsoWarning: crit,
    });
    // Every payments job in one bucket (0, le]: histogram_quantile interpolates p95 to exactly 0.95 × le.
    const p95 = pick(q('payments', 'job_latency_p95_seconds'), severity);
    const le = String(p95 / 0.95);
    const e2e = (queue: string) => hist('bullmq_job_e2e_seconds', `job="worker",instance="w1",queue="${queue}",status="completed"`, { [le]: 10, '+Inf': 10 });
    // The same p95 for webhooks is under webhooks' own warning threshold (when it is): the override must hold.
    const control = !crit && p95 <= q('webhooks', 'job_latency_p95_seconds').warning;
    out.push({
      alert: 'BullMQJobLatencyHigh', severity, why: `payments end-to-end p95 is ${humanizeDuration(p95)}${control ? ' (webhooks, under its own threshold, is silent)' : ''}`,
      series: e2e('payments'),
      control: control ? e2e('webhooks') : [],
      notYetAt: '3m', firingAt: '10m', labels: { queue: 'payments' }, value: humanizeDuration(p95), alsoWarning: crit,
    });
    const rss = pick(t.worker_memory_bytes, severity, true);
    out.push({
      alert: 'WorkerMemoryHigh', severity, why: `a worker's RSS is ${humanize1024(rss)}B`,
      series: [{ series: 'process_resident_memory_bytes{job="worker",instance="w1"}', values: gauge(rss) }],
      control: crit ? [] : [{ series: 'process_resident_memory_bytes{job="worker",instance="w2"}', values: gauge(t.worker_memory_bytes.warning) }],
      notYetAt: '3m', firingAt: '8m', labels: { job: 'worker', instance: 'w1' }, value: humanize1024(rss), alsoWarning: crit,
    });
    const used = Math.round(pickRatio(t.redis_memory_ratio, severity) * 1000);
    out.push({
      alert: 'RedisMemoryHigh', severity, why: `Redis uses ${humanizePercentage(used / 1000)} of maxmemory`,
      series: [
        { series: 'redis_memory_used_bytes{job="redis",instance="redis_exporter:9121"}', values: gauge(used) },
        { series: 'redis_memory_max_bytes{job="redis",instance="redis_exporter:9121"}', values: gauge(1000) },
      ],
      notYetAt: '3m', firingAt: '8m', labels: { job: 'redis', instance: 'redis_exporter:9121' }, value: humanizePercentage(used / 1000), alsoWarning: crit,
    });
    const api = split(pickRatio(t.api_5xx_ratio, severity));
    out.push({
      alert: 'ApiErrorRateHigh', severity, why: `${humanizePercentage(api.ratio)} of API requests answer 5xx`,
      series: [
        { series: 'http_request_duration_seconds_count{job="api",instance="api:9464",method="POST",route="/v1/queues/payments/jobs",status_code="202"}', values: counter(api.good) },
        { series: 'http_request_duration_seconds_count{job="api",instance="api:9464",method="POST",route="/v1/queues/payments/jobs",status_code="503"}', values: counter(api.bad) },
      ],
      notYetAt: '3m', firingAt: '10m', labels: { job: 'api' }, value: humanizePercentage(api.ratio), alsoWarning: crit,
    });
  }
  out.push(...saturationAndDependencyScenarios(t));
  out.push(
    {
      alert: 'BullMQQueueStuck', severity: 'critical', why: 'jobs wait and nothing completed for the stuck window',
      series: [
        { series: 'bullmq_queue_jobs{job="worker",instance="w1",queue="webhooks",state="prioritized"}', values: gauge(5) },
        // Completing until minute 15, then nothing.
        { series: 'bullmq_jobs_completed_total{job="worker",instance="w1",queue="webhooks"}', values: '0+1x15 15x30' },
      ],
      notYetAt: '20m', firingAt: '30m', labels: { queue: 'webhooks' }, value: '5',
    },
    {
      alert: 'BullMQQueueStuck', severity: 'critical', why: 'jobs wait in a queue no worker has ever completed a job of',
      // No bullmq_jobs_completed_total series for notifications at all: still stuck once `for:` has passed.
      series: [{ series: 'bullmq_queue_jobs{job="worker",instance="w1",queue="notifications",state="waiting"}', values: gauge(3) }],
      notYetAt: '0m', firingAt: '5m', labels: { queue: 'notifications' }, value: '3',
    },
    {
      alert: 'BullMQNoWorkers', severity: 'critical', why: 'no worker connection consumes payments',
      series: ['w1', 'w2'].map((i) => ({ series: `bullmq_queue_workers{job="worker",instance="${i}",queue="payments"}`, values: '2x5 0x30' })),
      // The worker processes themselves are up (so the "no worker at all" rule stays quiet).
      control: ['w1', 'w2'].map((i) => ({ series: `up{job="worker",instance="${i}"}`, values: gauge(1) })),
      notYetAt: '8m', firingAt: '15m', labels: { queue: 'payments' }, value: '0',
    },
    {
      alert: 'BullMQNoWorkers', severity: 'critical', why: 'no worker target is up at all', ruleIndex: 1,
      series: [{ series: 'up{job="worker",instance="w1"}', values: '1x3 0x20' }],
      notYetAt: '5m', firingAt: '8m', labels: { job: 'worker' }, value: '1',
    },
    {
      alert: 'RedisDown', severity: 'critical', why: 'redis_exporter reports redis_up 0',
      series: [{ series: 'redis_up{job="redis",instance="redis_exporter:9121"}', values: '1x3 0x20' }],
      notYetAt: '4m', firingAt: '8m', labels: { job: 'redis', instance: 'redis_exporter:9121' }, value: '0',
    },
    {
      alert: 'RedisEvictionPolicyUnsafe', severity: 'critical', why: 'maxmemory-policy changes to allkeys-lru',
      series: [
        { series: 'redis_instance_info{job="redis",instance="redis_exporter:9121",maxmemory_policy="noeviction"}', values: '1x4 _x20' },
        { series: 'redis_instance_info{job="redis",instance="redis_exporter:9121",maxmemory_policy="allkeys-lru"}', values: '_x5 1x20' },
      ],
      notYetAt: '3m', firingAt: '8m', labels: { instance: 'redis_exporter:9121', maxmemory_policy: 'allkeys-lru' }, value: '1',
    },
    {
      alert: 'TargetDown', severity: 'critical', why: 'a worker stops answering scrapes',
      series: [{ series: 'up{job="worker",instance="w1"}', values: '1x3 0x20' }],
      notYetAt: '5m', firingAt: '9m', labels: { job: 'worker', instance: 'w1' }, value: '0',
    },
  );
  return out;
}

/** The outbound dependencies (label `dependency` of the outbound_* metrics, docs/contracts.md). */
const OUTBOUND_DEPENDENCIES = ['payment_provider', 'notification_provider', 'webhook_host'] as const;

/** Two worker replicas' gauges of one queue (every replica exports the same queue state). */
const onReplicas = (metric: string, labels: string, values: string) =>
  ['w1', 'w2'].map((i) => ({ series: `${metric}{job="worker",instance="${i}",${labels}}`, values }));

function saturationAndDependencyScenarios(t: Thresholds): Scenario[] {
  // Two replicas of 5 slots each: the capacity is their sum (10), the active count the max of their reports.
  const slots = 10;
  const busy = Math.ceil(t.saturation.busy_ratio * slots);
  const forMin = (d: string) => durationSeconds(d) / 60;
  const saturatedFor = forMin(t.saturation.for);
  const soft = split((t.outbound.soft_timeout_ratio + 1) / 2);
  const atSoft = split(t.outbound.soft_timeout_ratio);
  const pausedFor = forMin(t.paused.for);
  const throttledFor = forMin(t.outbound.throttled_backlog_for);
  const circuitFor = forMin(t.outbound.circuit_open_for);
  const pageDep = t.outbound.page_dependencies[0]!;
  // The dependencies that only warn (webhook_host, notification_provider with the shipped thresholds).
  const [warnDep, otherWarnDep] = OUTBOUND_DEPENDENCIES.filter((d) => !t.outbound.page_dependencies.includes(d));
  return [
    {
      alert: 'BullMQWorkersSaturated', severity: 'warning', why: `${busy} of payments' ${slots} worker slots (two replicas) are busy while jobs wait`,
      series: [
        ...onReplicas('bullmq_worker_concurrency', 'queue="payments"', gauge(slots / 2)),
        ...onReplicas('bullmq_queue_jobs', 'queue="payments",state="active"', gauge(busy)),
        ...onReplicas('bullmq_queue_jobs', 'queue="payments",state="waiting"', gauge(3)),
      ],
      // Every slot of webhooks busy but nothing waiting; notifications one slot below the ratio with jobs waiting.
      control: [
        ...onReplicas('bullmq_worker_concurrency', 'queue="webhooks"', gauge(4)),
        ...onReplicas('bullmq_queue_jobs', 'queue="webhooks",state="active"', gauge(8)),
        ...onReplicas('bullmq_queue_jobs', 'queue="webhooks",state="waiting"', gauge(0)),
        ...onReplicas('bullmq_worker_concurrency', 'queue="notifications"', gauge(slots / 2)),
        ...onReplicas('bullmq_queue_jobs', 'queue="notifications",state="active"', gauge(busy - 1)),
        ...onReplicas('bullmq_queue_jobs', 'queue="notifications",state="waiting"', gauge(3)),
      ],
      notYetAt: `${saturatedFor - 2}m`, firingAt: `${saturatedFor + 2}m`, labels: { queue: 'payments' }, value: humanizePercentage(busy / slots),
    },
    {
      alert: 'BullMQQueuePaused', severity: 'warning', why: 'webhooks is paused with 4 jobs waiting',
      series: [...onReplicas('bullmq_queue_paused', 'queue="webhooks"', gauge(1)), ...onReplicas('bullmq_queue_jobs', 'queue="webhooks",state="waiting"', gauge(4))],
      // Paused but empty; waiting but not paused.
      control: [
        ...onReplicas('bullmq_queue_paused', 'queue="notifications"', gauge(1)),
        ...onReplicas('bullmq_queue_jobs', 'queue="notifications",state="waiting"', gauge(0)),
        ...onReplicas('bullmq_queue_paused', 'queue="payments"', gauge(0)),
        ...onReplicas('bullmq_queue_jobs', 'queue="payments",state="waiting"', gauge(4)),
        { series: 'bullmq_jobs_completed_total{job="worker",instance="w1",queue="payments"}', values: counter(10) },
      ],
      notYetAt: `${pausedFor - 3}m`, firingAt: `${pausedFor + 3}m`, labels: { queue: 'webhooks' }, value: '4',
    },
    {
      alert: 'BullMQQueueThrottled', severity: 'warning', why: 'webhooks jobs wait for their quota while the backlog keeps growing',
      series: [
        { series: 'bullmq_rate_limit_hits_total{job="worker",instance="w1",queue="webhooks",source="quota"}', values: counter(120) },
        ...onReplicas('bullmq_queue_jobs', 'queue="webhooks",state="delayed"', '0+10x40'),
      ],
      // Throttled too, but its backlog holds steady: the quota keeps up.
      control: [
        { series: 'bullmq_rate_limit_hits_total{job="worker",instance="w1",queue="payments",source="quota"}', values: counter(120) },
        ...onReplicas('bullmq_queue_jobs', 'queue="payments",state="waiting"', gauge(50)),
      ],
      notYetAt: `${throttledFor - 2}m`, firingAt: `${throttledFor + 8}m`, labels: { queue: 'webhooks' }, value: humanize(2),
    },
    {
      alert: 'BullMQJobSoftTimeoutsHigh', severity: 'warning', why: `${humanizePercentage(soft.ratio)} of payments attempts pass 80% of the timeout`,
      series: [
        { series: 'bullmq_job_soft_timeouts_total{job="worker",instance="w1",queue="payments"}', values: counter(soft.bad) },
        { series: 'bullmq_job_processing_seconds_count{job="worker",instance="w1",queue="payments",status="completed"}', values: counter(soft.good + soft.bad) },
      ],
      control: [
        { series: 'bullmq_job_soft_timeouts_total{job="worker",instance="w1",queue="notifications"}', values: counter(atSoft.bad) },
        { series: 'bullmq_job_processing_seconds_count{job="worker",instance="w1",queue="notifications",status="completed"}', values: counter(atSoft.good + atSoft.bad) },
      ],
      notYetAt: '3m', firingAt: '10m', labels: { queue: 'payments' }, value: humanizePercentage(soft.ratio),
    },
    {
      alert: 'OutboundCircuitOpen', severity: 'page', why: `the ${pageDep} circuit stays open`,
      series: onReplicas('outbound_circuits_open', `dependency="${pageDep}"`, '0x2 1x30'),
      notYetAt: `${2 + circuitFor - 1}m`, firingAt: `${2 + circuitFor + 2}m`, labels: { dependency: pageDep }, value: '1',
    },
    {
      alert: 'OutboundCircuitOpen', severity: 'warning', why: `three ${warnDep} circuits stay open`, ruleIndex: 0,
      series: onReplicas('outbound_circuits_open', `dependency="${warnDep}"`, '0x2 3x30'),
      control: otherWarnDep ? onReplicas('outbound_circuits_open', `dependency="${otherWarnDep}"`, gauge(0)) : [],
      notYetAt: `${2 + circuitFor - 1}m`, firingAt: `${2 + circuitFor + 2}m`, labels: { dependency: warnDep! }, value: '3',
    },
  ];
}

/** Expands the rule's annotation templates for a known label set and `$value` string (the subset used here). */
export function expand(template: string, labels: Record<string, string>, value: string): string {
  return template
    .replace(/\{\{ \$value \| \w+ \}\}/g, value)
    .replace(/\{\{ \$value \}\}/g, value)
    .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => labels[k] ?? '');
}

/**
 * `series_gone` (rules.ts endsVisibly) for a known outcome of its template query: empty while the series is
 * measured; once gone, its text, with the optional "jobs still waiting" branch taken or not.
 */
export function expandGone(template: string, labels: Record<string, string>, gone: false | { waiting?: number }): string {
  if (!gone) return '';
  const text = /^\{\{ if not \(.*? \| query\) \}\}([\s\S]*)\{\{ end \}\}$/.exec(template)?.[1];
  if (text === undefined) throw new Error(`unexpected series_gone template: ${template}`);
  const branched = text.replace(/\{\{ with .*? \| query \}\}([\s\S]*?)\{\{ else \}\}([\s\S]*?)\{\{ end \}\}/, (_, waiting: string, none: string) =>
    gone.waiting !== undefined ? waiting.replace('{{ . | first | value | humanize }}', humanize(gone.waiting)) : none,
  );
  return expand(branched, labels, '');
}

function expected(rule: AlertRule, s: { labels: Record<string, string>; value: string }, gone: false | { waiting?: number } = false) {
  const labels = { ...s.labels, severity: rule.labels.severity };
  const annotations = Object.fromEntries(
    Object.entries(rule.annotations)
      // An annotation that expands to nothing is still sent, empty (Prometheus and promtool alike).
      .map(([k, v]) => [k, k === 'series_gone' ? expandGone(String(v), s.labels, gone) : expand(String(v), s.labels, s.value)]),
  );
  return { exp_labels: labels, exp_annotations: annotations };
}

/**
 * How alerts end: a signal that vanishes (no job ends any more) keeps its alert firing briefly with
 * `series_gone` set, so the resolved notification cannot claim a recovery; a latency alert of a queue whose jobs
 * wait but none ends keeps firing until BullMQQueueStuck has taken over; a real recovery resolves at once; a
 * paused queue is BullMQQueuePaused's, not BullMQQueueStuck's.
 */
function endingTests(t: Thresholds, rules: AlertRule[]) {
  const crit = forQueue(t, 'payments', 'job_latency_p95_seconds');
  const p95 = crit.critical * 1.5;
  const le = String(p95 / 0.95);
  const labels = { queue: 'payments' };
  const latency = (severity: string) => rules.find((r) => r.alert === 'BullMQJobLatencyHigh' && r.labels.severity === severity && r.labels.queue === 'payments')!;
  const both = (gone: false | { waiting?: number }) => ['warning', 'critical'].map((sev) => expected(latency(sev), { labels, value: humanizeDuration(p95) }, gone));
  // Jobs end (all in one bucket: p95 = 0.95 × le) until minute 10, then none does.
  const ending = (extra: InputSeries[] = []) => [
    ...hist('bullmq_job_e2e_seconds', 'job="worker",instance="w1",queue="payments",status="completed"', { [le]: 10, '+Inf': 10 }).map((x) => ({ ...x, values: '0+10x10 100x40' })),
    { series: 'bullmq_jobs_completed_total{job="worker",instance="w1",queue="payments"}', values: '0+10x10 100x40' },
    ...extra,
  ];
  const stuck = durationSeconds(t.for.queue_stuck_window) / 60;
  const stuckRule = rules.find((r) => r.alert === 'BullMQQueueStuck')!;
  return [
    {
      name: 'BullMQJobLatencyHigh says its series is gone, then resolves, when payments jobs stop ending and none waits',
      interval: '1m',
      input_series: ending(),
      alert_rule_test: [
        { eval_time: '12m', alertname: 'BullMQJobLatencyHigh', exp_alerts: both(false) },
        { eval_time: '16m', alertname: 'BullMQJobLatencyHigh', exp_alerts: both({}) },
        { eval_time: '20m', alertname: 'BullMQJobLatencyHigh', exp_alerts: [] },
      ],
    },
    {
      name: 'BullMQJobLatencyHigh keeps firing while payments jobs wait and none ends, until BullMQQueueStuck takes over',
      interval: '1m',
      input_series: ending([{ series: 'bullmq_queue_jobs{job="worker",instance="w1",queue="payments",state="waiting"}', values: gauge(5, 50) }]),
      alert_rule_test: [
        { eval_time: `${10 + stuck - 2}m`, alertname: 'BullMQJobLatencyHigh', exp_alerts: both({ waiting: 5 }) },
        { eval_time: `${10 + stuck - 2}m`, alertname: 'BullMQQueueStuck', exp_alerts: [] },
        { eval_time: `${10 + stuck + 2}m`, alertname: 'BullMQJobLatencyHigh', exp_alerts: both({ waiting: 5 }) },
        { eval_time: `${10 + stuck + 2}m`, alertname: 'BullMQQueueStuck', exp_alerts: [expected(stuckRule, { labels, value: '5' })] },
      ],
    },
    {
      name: 'BullMQJobLatencyHigh resolves at once, not as a vanished series, when payments p95 is back within its threshold',
      interval: '1m',
      input_series: [
        // Slow until minute 10, then every job in the first bucket (well under the threshold), which appears then.
        { series: `bullmq_job_e2e_seconds_bucket{job="worker",instance="w1",queue="payments",status="completed",le="0.05"}`, values: '_x10 0+100x40' },
        { series: `bullmq_job_e2e_seconds_bucket{job="worker",instance="w1",queue="payments",status="completed",le="${le}"}`, values: '0+10x10 100+100x40' },
        { series: `bullmq_job_e2e_seconds_bucket{job="worker",instance="w1",queue="payments",status="completed",le="+Inf"}`, values: '0+10x10 100+100x40' },
      ],
      alert_rule_test: [
        { eval_time: '9m', alertname: 'BullMQJobLatencyHigh', exp_alerts: both(false) },
        { eval_time: '16m', alertname: 'BullMQJobLatencyHigh', exp_alerts: [] },
      ],
    },
    {
      name: 'BullMQQueueStuck is silent when the queue is paused (BullMQQueuePaused reports it)',
      interval: '1m',
      input_series: [
        { series: 'bullmq_queue_jobs{job="worker",instance="w1",queue="webhooks",state="waiting"}', values: gauge(5) },
        { series: 'bullmq_queue_paused{job="worker",instance="w1",queue="webhooks"}', values: gauge(1) },
      ],
      alert_rule_test: [{ eval_time: `${stuck + 10}m`, alertname: 'BullMQQueueStuck', exp_alerts: [] }],
    },
  ];
}

export function ruleTestsFile(t: Thresholds, rulesPath: string) {
  const rules = alertRules(t);
  // The rule that applies to the scenario's queue: its own override, else the default one (no `queue="…"`).
  const rule = (s: Scenario, severity: string) => {
    const named = rules.filter((r) => r.alert === s.alert && r.labels.severity === severity);
    if (s.ruleIndex !== undefined) return named[s.ruleIndex]!;
    const queue = s.labels.queue;
    return (queue && named.find((r) => r.expr.includes(`{queue="${queue}"}`))) || named.find((r) => !/\{queue="/.test(r.expr)) || named[0]!;
  };
  return {
    rule_files: [rulesPath],
    evaluation_interval: '1m',
    group_eval_order: RULE_GROUP_ORDER,
    tests: [
      ...scenarios(t).map((s) => ({
        name: `${s.alert} (${s.severity}) fires when ${s.why}`,
        interval: '1m',
        input_series: [...s.series, ...(s.control ?? [])],
        alert_rule_test: [
          { eval_time: s.notYetAt, alertname: s.alert, exp_alerts: [] },
          {
            eval_time: s.firingAt,
            alertname: s.alert,
            exp_alerts: [...(s.alsoWarning ? [expected(rule(s, 'warning'), s)] : []), expected(rule(s, s.severity), s)],
          },
        ],
      })),
      ...endingTests(t, rules),
    ],
  };
}
