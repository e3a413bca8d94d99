/**
 * promtool unit tests for every alert: for each severity, "not yet" (condition true but `for:` not elapsed, or
 * condition false) and "firing" with the exact labels and annotations. Inputs are written per alert below with
 * the value each should show; expected annotations are the rule's templates expanded by hand for those values,
 * so a wrong expression, threshold or template fails `promtool test rules`.
 */
import { alertRules, AlertName, AlertRule } from './rules';
import { Thresholds } from './thresholds';

interface Scenario {
  alert: AlertName;
  severity: 'warning' | 'critical';
  why: string;
  series: { series: string; values: string }[];
  notYetAt: string;
  firingAt: string;
  /** Labels the alert carries besides alertname/severity. */
  labels: Record<string, string>;
  /** What `$value` renders as in the description, for the chosen inputs. */
  value: string;
  /** Also firing at firingAt (a critical condition also satisfies the warning rule). */
  alsoWarning?: boolean;
  /** Which of the rules with this name and severity (default the first). */
  ruleIndex?: number;
  /** Series present during the whole case that must never alert (at the threshold, or under their own override). */
  control?: { series: string; values: string }[];
}

const counter = (perMinute: number) => `0+${perMinute}x40`;
const gauge = (v: number | string, n = 40) => `${v}x${n}`;

function hist(name: string, labels: string, buckets: Record<string, number>): { series: string; values: string }[] {
  return Object.entries(buckets).map(([le, perMinute]) => ({ series: `${name}_bucket{${labels},le="${le}"}`, values: counter(perMinute) }));
}

export function scenarios(t: Thresholds): Scenario[] {
  const out: Scenario[] = [];
  const levels = ['warning', 'critical'] as const;
  for (const severity of levels) {
    const crit = severity === 'critical';
    // Two replicas report the same depth: max makes it V, a sum would make it 2V (above critical): caught here.
    const depth = crit ? 12000 : 6000;
    const replicas = (state: string, v: number) =>
      ['w1', 'w2'].map((i) => ({ series: `bullmq_queue_jobs{job="worker",instance="${i}",queue="payments",state="${state}"}`, values: gauge(v) }));
    // Warning cases also hold a queue exactly at the warning threshold (alerts are strictly "above").
    const atWarning = (state: string, v: number) =>
      crit ? [] : ['w1', 'w2'].map((i) => ({ series: `bullmq_queue_jobs{job="worker",instance="${i}",queue="notifications",state="${state}"}`, values: gauge(v) }));
    out.push({ alert: 'BullMQQueueDepthHigh', severity, why: `payments depth is ${depth} on both replicas`, series: replicas('prioritized', depth), control: atWarning('waiting', t.defaults.queue_depth.warning), notYetAt: '3m', firingAt: '8m', labels: { queue: 'payments' }, value: crit ? '12k' : '6k', alsoWarning: crit });
    const active = crit ? 16000 : 9000;
    out.push({ alert: 'BullMQActiveJobsHigh', severity, why: `payments has ${active} active jobs on both replicas`, series: replicas('active', active), control: atWarning('active', t.defaults.active_jobs.warning), notYetAt: '3m', firingAt: '8m', labels: { queue: 'payments' }, value: crit ? '16k' : '9k', alsoWarning: crit });

    const [failed, completed] = crit ? [20, 80] : [7, 93];
    out.push({
      alert: 'BullMQJobErrorRateHigh', severity, why: `${failed}% of notifications jobs fail`,
      series: [
        { series: 'bullmq_jobs_completed_total{job="worker",instance="w1",queue="notifications"}', values: counter(completed) },
        { series: 'bullmq_jobs_failed_total{job="worker",instance="w1",queue="notifications",reason="provider_error"}', values: counter(failed) },
      ],
      notYetAt: '3m', firingAt: '10m', labels: { queue: 'notifications' }, value: `${failed}%`, alsoWarning: crit,
    });
    const [timedOut, ok] = crit ? [10, 90] : [3, 97];
    out.push({
      alert: 'BullMQJobTimeoutRateHigh', severity, why: `${timedOut}% of webhooks jobs time out`,
      series: [
        { series: 'bullmq_jobs_completed_total{job="worker",instance="w1",queue="webhooks"}', values: counter(ok) },
        { series: 'bullmq_jobs_failed_total{job="worker",instance="w1",queue="webhooks",reason="timeout"}', values: counter(timedOut) },
      ],
      notYetAt: '3m', firingAt: '10m', labels: { queue: 'webhooks' }, value: `${timedOut}%`, alsoWarning: crit,
    });
    // payments: wait p95 0.095 s (all in ≤0.1 s); processing p95 0.975 s (0.5–1 s) or 2.425 s (1–2.5 s).
    const proc = crit ? { '0.1': 0, '0.5': 0, '1': 0, '2.5': 10, '+Inf': 10 } : { '0.1': 0, '0.5': 0, '1': 10, '2.5': 10, '+Inf': 10 };
    out.push({
      alert: 'BullMQJobLatencyHigh', severity, why: `payments end-to-end p95 is ${crit ? '2.52' : '1.07'} s`,
      series: [
        ...hist('bullmq_job_wait_seconds', 'job="worker",instance="w1",queue="payments"', { '0.1': 10, '0.5': 10, '1': 10, '2.5': 10, '+Inf': 10 }),
        ...hist('bullmq_job_processing_seconds', 'job="worker",instance="w1",queue="payments",status="completed"', proc),
      ],
      // The same 1.07 s p95 for webhooks is under webhooks' own threshold: the per-queue override must hold.
      control: crit ? [] : [
        ...hist('bullmq_job_wait_seconds', 'job="worker",instance="w1",queue="webhooks"', { '0.1': 10, '0.5': 10, '1': 10, '2.5': 10, '+Inf': 10 }),
        ...hist('bullmq_job_processing_seconds', 'job="worker",instance="w1",queue="webhooks",status="completed"', proc),
      ],
      notYetAt: '3m', firingAt: '10m', labels: { queue: 'payments' }, value: crit ? '2.52s' : '1.07s', alsoWarning: crit,
    });
    const rss = crit ? 1610612736 : 629145600;
    out.push({
      alert: 'WorkerMemoryHigh', severity, why: `a worker's RSS is ${crit ? '1.5 GiB' : '600 MiB'}`,
      series: [{ series: 'process_resident_memory_bytes{job="worker",instance="w1"}', values: gauge(rss) }],
      control: crit ? [] : [{ series: 'process_resident_memory_bytes{job="worker",instance="w2"}', values: gauge(t.worker_memory_bytes.warning) }],
      notYetAt: '3m', firingAt: '8m', labels: { job: 'worker', instance: 'w1' }, value: crit ? '1.5Gi' : '600Mi', alsoWarning: crit,
    });
    const used = crit ? 970 : 850;
    out.push({
      alert: 'RedisMemoryHigh', severity, why: `Redis uses ${used / 10}% of maxmemory`,
      series: [
        { series: 'redis_memory_used_bytes{job="redis",instance="redis_exporter:9121"}', values: gauge(used) },
        { series: 'redis_memory_max_bytes{job="redis",instance="redis_exporter:9121"}', values: gauge(1000) },
      ],
      notYetAt: '3m', firingAt: '8m', labels: { job: 'redis', instance: 'redis_exporter:9121' }, value: `${used / 10}%`, alsoWarning: crit,
    });
    const [fivexx, twoxx] = crit ? [10, 90] : [2, 98];
    out.push({
      alert: 'ApiErrorRateHigh', severity, why: `${fivexx}% of API requests answer 5xx`,
      series: [
        { series: 'http_request_duration_seconds_count{job="api",instance="api:9464",method="POST",route="/v1/queues/payments/jobs",status_code="202"}', values: counter(twoxx) },
        { series: 'http_request_duration_seconds_count{job="api",instance="api:9464",method="POST",route="/v1/queues/payments/jobs",status_code="503"}', values: counter(fivexx) },
      ],
      notYetAt: '3m', firingAt: '10m', labels: { job: 'api' }, value: `${fivexx}%`, alsoWarning: crit,
    });
  }
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

/** Expands the rule's annotation templates for a known label set and `$value` string (the subset used here). */
function expand(template: string, labels: Record<string, string>, value: string): string {
  return template
    .replace(/\{\{ \$value \| \w+ \}\}/g, value)
    .replace(/\{\{ \$value \}\}/g, value)
    .replace(/\{\{ \$labels\.(\w+) \}\}/g, (_, k: string) => labels[k] ?? '');
}

function expected(rule: AlertRule, s: Scenario) {
  const labels = { ...s.labels, severity: rule.labels.severity };
  const annotations = Object.fromEntries(Object.entries(rule.annotations).map(([k, v]) => [k, expand(String(v), s.labels, s.value)]));
  return { exp_labels: labels, exp_annotations: annotations };
}

export function ruleTestsFile(t: Thresholds, rulesPath: string) {
  const rules = alertRules(t);
  const rule = (alert: AlertName, severity: string, index = 0) => rules.filter((r) => r.alert === alert && r.labels.severity === severity)[index]!;
  return {
    rule_files: [rulesPath],
    evaluation_interval: '1m',
    tests: scenarios(t).map((s) => ({
      name: `${s.alert} (${s.severity}) fires when ${s.why}`,
      interval: '1m',
      input_series: [...s.series, ...(s.control ?? [])],
      alert_rule_test: [
        { eval_time: s.notYetAt, alertname: s.alert, exp_alerts: [] },
        {
          eval_time: s.firingAt,
          alertname: s.alert,
          exp_alerts: [
            ...(s.alsoWarning ? [expected(rule(s.alert, 'warning'), { ...s, value: s.value })] : []),
            expected(rule(s.alert, s.severity, s.ruleIndex), s),
          ],
        },
      ],
    })),
  };
}
