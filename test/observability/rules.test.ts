/** Prometheus config and rules checked by the real promtool; generated files must be what the generator makes. */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { e2eBuckets, generatedFiles } from '../../observability/generate/main';
import { assertSloBoundsAreBuckets, loadThresholds, type Thresholds } from '../../services/common/thresholds';
import { REPO_ROOT } from '../../scripts/lib/repo-root';
import { ALERT_NAMES } from '../../observability/generate/rules';

import { tool } from './tools';

const promtool = (args: string[], cwd = REPO_ROOT) => tool('promtool', args, cwd);

t.test('committed rules, rule tests, dashboards and k6 thresholds are exactly what the generator makes', async (t) => {
  for (const [rel, content] of Object.entries(generatedFiles(loadThresholds()))) {
    t.equal(readFileSync(path.join(REPO_ROOT, rel), 'utf8'), content, `${rel} is up to date (npm run observability:generate)`);
  }
});

t.test('promtool: config, rules and rule unit tests pass', async (t) => {
  const config = promtool(['check', 'config', 'observability/prometheus/prometheus.yml']);
  t.equal(config.status, 0, `check config: ${config.stdout}${config.stderr}`);
  const rules = promtool(['check', 'rules', '--lint=all', '--lint-fatal', 'observability/prometheus/rules/bullmq.rules.yml']);
  t.equal(rules.status, 0, `check rules: ${rules.stdout}${rules.stderr}`);
  const tests = promtool(['test', 'rules', 'bullmq.rules.test.yml', 'bullmq-slo.rules.test.yml'], path.join(REPO_ROOT, 'observability/prometheus/tests'));
  t.equal(tests.status, 0, `test rules: ${tests.stdout}${tests.stderr}`);
});

/** Writes the generated rules and rule tests for `th` to a fresh directory and runs promtool on them. */
function generateAndTest(th: Thresholds, mutateRules: (rules: string) => string = (r) => r) {
  const dir = mkdtempSync(path.join(tmpdir(), 'obs-rules-'));
  const files = generatedFiles(th);
  mkdirSync(path.join(dir, 'rules'));
  mkdirSync(path.join(dir, 'tests'));
  const rules = files['observability/prometheus/rules/bullmq.rules.yml']!;
  writeFileSync(path.join(dir, 'rules', 'bullmq.rules.yml'), mutateRules(rules));
  for (const f of ['bullmq.rules.test.yml', 'bullmq-slo.rules.test.yml']) writeFileSync(path.join(dir, 'tests', f), files[`observability/prometheus/tests/${f}`]!);
  const check = promtool(['check', 'rules', '--lint=all', '--lint-fatal', path.join(dir, 'rules', 'bullmq.rules.yml')]);
  const res = promtool(['test', 'rules', 'bullmq.rules.test.yml', 'bullmq-slo.rules.test.yml'], path.join(dir, 'tests'));
  rmSync(dir, { recursive: true, force: true });
  return { rules, check, res };
}

t.test('generated tests follow the thresholds: other thresholds and objectives, regenerated, still pass promtool', async (t) => {
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'obs-thresholds-')), 'thresholds.yaml');
  t.teardown(() => rmSync(path.dirname(file), { recursive: true, force: true }));
  const doc = YAML.parse(readFileSync(path.join(REPO_ROOT, 'observability/thresholds.yaml'), 'utf8'));
  doc.defaults.queue_depth = { warning: 7000, critical: 13000 };
  doc.saturation = { busy_ratio: 0.75, for: '15m' };
  doc.outbound.page_dependencies = ['payment_provider', 'webhook_host'];
  doc.queues.notifications.job_error_ratio = { warning: 0.2, critical: 0.4 };
  doc.queues.payments.job_latency_p95_seconds = { warning: 1, critical: 2.5 };
  doc.worker_memory_bytes = { warning: 268435456, critical: 805306368 };
  doc.redis_memory_ratio = { warning: 0.5, critical: 0.7 };
  doc.slo.queues.payments = { success: 0.99, latency: 0.95, latency_bound_seconds: 2 }; // another e2e bucket
  doc.slo.queues.webhooks.success = 0.98;
  writeFileSync(file, YAML.stringify(doc));
  const { rules, check, res } = generateAndTest(loadThresholds(file));
  t.equal(check.status, 0, `check rules: ${check.stdout}${check.stderr}`);
  t.equal(res.status, 0, `test rules with edited thresholds: ${res.stdout}${res.stderr}`);
  t.match(rules, '> 13000', 'the new depth threshold is in the rules');
  t.match(rules, 'queue:bullmq_worker_saturation:ratio >= 0.75', 'the new saturation ratio is in the rules');
  t.match(rules, 'outbound_circuits_open{dependency=~"payment_provider|webhook_host"}', 'the paging dependencies are in the rules');
  t.match(rules, 'queue:bullmq_slo_errors:ratio_rate1h{queue="payments"} / 0.01 >= 14.4', 'the new payments objective is in the burn-rate alert');
  t.match(rules, 'queue="payments",status="completed",le=~"2|2\\\\.0"', 'the new payments latency bound is the bucket read');
});

t.test('SLO config errors are clear', async (t) => {
  const doc = YAML.parse(readFileSync(path.join(REPO_ROOT, 'observability/thresholds.yaml'), 'utf8'));
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'obs-thresholds-')), 'thresholds.yaml');
  t.teardown(() => rmSync(path.dirname(file), { recursive: true, force: true }));
  const load = (mutate: (d: any) => void) => {
    const d = structuredClone(doc);
    mutate(d);
    writeFileSync(file, YAML.stringify(d));
    return () => loadThresholds(file);
  };
  t.throws(load((d) => (d.slo.queues.payments.success = 99.9)), /slo\.queues\.payments\.success must be a ratio strictly between 0 and 1/);
  t.throws(load((d) => (d.slo.period = '30 days')), /slo\.period must be a Prometheus duration/);
  t.throws(load((d) => delete d.slo.queues.webhooks.latency_bound_seconds), /latency_bound_seconds must be a positive number/);
  const th = loadThresholds();
  t.throws(() => assertSloBoundsAreBuckets(th.slo, [0.5, 1, 2.5, 5]), /slo\.queues\.payments\.latency_bound_seconds 1\.5 is not a bucket boundary of bullmq_job_e2e_seconds/);
  t.doesNotThrow(() => assertSloBoundsAreBuckets(th.slo, [0.1, 0.25, 0.5, 1, 1.5, 2, 3, 5]));
  const buckets = e2eBuckets();
  t.ok(buckets.length > 0, 'the worker defines the bullmq_job_e2e_seconds buckets');
  t.doesNotThrow(() => assertSloBoundsAreBuckets(th.slo, buckets), `every bound is one of the worker's buckets (${buckets.join(', ')})`);
});

t.test('promtool rule tests fail when a rule is wrong (the tests can fail)', async (t) => {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const rules = readFileSync(path.join(REPO_ROOT, 'observability/prometheus/rules/bullmq.rules.yml'), 'utf8');
  // Summing replica gauges instead of max doubles the depth: the warning case must now see a critical alert.
  execFileSync('mkdir', ['-p', `${dir}/rules`, `${dir}/tests`]);
  writeFileSync(`${dir}/rules/bullmq.rules.yml`, rules.replace('max by (queue, state) (bullmq_queue_jobs', 'sum by (queue, state) (bullmq_queue_jobs'));
  copyFileSync(path.join(REPO_ROOT, 'observability/prometheus/tests/bullmq.rules.test.yml'), `${dir}/tests/t.yml`);
  const res = promtool(['test', 'rules', 't.yml'], `${dir}/tests`);
  t.not(res.status, 0, 'a broken aggregation is caught');
  t.match(res.stdout + res.stderr, /BullMQQueueDepthHigh \(warning\) fires when/);
});

t.test('SLO rule tests fail when a burn-rate rule is wrong (the tests can fail)', async (t) => {
  // Either window alone is enough: the "only one window burns" cases must catch it.
  const or = generateAndTest(loadThresholds(), (r) => r.replace(/ >= 14\.4 and /g, ' >= 14.4 or '));
  t.not(or.res.status, 0, '`or` instead of `and` is caught');
  t.match(or.res.stdout + or.res.stderr, /BullMQSLOErrorBudgetBurn \(critical, 1h\/5m\) is silent when only the (long|short) window burns/);
  // The slow ratio read from the wrong bucket.
  const bucket = generateAndTest(loadThresholds(), (r) => r.replace(/le=~"1\\\\\.5"/g, 'le=~"2\\\\.5"'));
  t.not(bucket.res.status, 0, 'a wrong latency bucket is caught');
  t.match(bucket.res.stdout + bucket.res.stderr, /BullMQSLOLatencyBudgetBurn/);
});

const FAILURE_LINKED = new Set(['BullMQJobErrorRateHigh', 'BullMQJobTimeoutRateHigh', 'BullMQJobLatencyHigh', 'BullMQSLOErrorBudgetBurn', 'BullMQSLOLatencyBudgetBurn']);

t.test('every alert: fixed name, severity, summary, description, runbook anchor that exists', async (t) => {
  const file = YAML.parse(readFileSync(path.join(REPO_ROOT, 'observability/prometheus/rules/bullmq.rules.yml'), 'utf8'));
  const thresholdsFile = loadThresholds();
  const alerts = file.groups.flatMap((g: { rules: any[] }) => g.rules.filter((r) => r.alert));
  t.same([...new Set(alerts.map((a: any) => a.alert))].sort(), [...ALERT_NAMES].sort(), 'exactly the contract alert names');
  const runbooks = readFileSync(path.join(REPO_ROOT, 'docs/runbooks.md'), 'utf8');
  // GitHub's heading anchor: lower-cased, punctuation dropped, spaces to dashes.
  const slug = (h: string) => h.trim().toLowerCase().replace(/[^\w\- ]/g, '').replace(/ /g, '-');
  const sections = new Map(runbooks.split(/^## /m).slice(1).map((sec) => [slug(sec.split('\n')[0]!), sec]));
  const anchors = new Set(sections.keys());
  const tests = ['bullmq.rules.test.yml', 'bullmq-slo.rules.test.yml'].map((f) => readFileSync(path.join(REPO_ROOT, 'observability/prometheus/tests', f), 'utf8')).join('\n');
  for (const a of alerts) {
    t.match(a.labels, { severity: /^(warning|critical|page)$/ }, `${a.alert} severity`);
    t.ok(a.annotations.summary && a.annotations.description, `${a.alert} summary and description`);
    const anchor = String(a.annotations.runbook_url).split('#')[1];
    t.ok(anchors.has(anchor!), `${a.alert} runbook anchor #${anchor} exists in docs/runbooks.md`);
    t.equal(String(a.annotations.runbook_url).split('#')[0], `${thresholdsFile.links.runbook_base_url}`, `${a.alert} runbook_url points at docs/runbooks.md`);
    // Failure and latency alerts lead to the failing jobs (console) and their traces (Jaeger), for their own queue.
    if (FAILURE_LINKED.has(a.alert)) {
      t.equal(a.annotations.console_url, `${thresholdsFile.links.console_base_url}/queue/{{ $labels.queue }}?status=failed`, `${a.alert} links the queue's failed jobs`);
      t.equal(
        a.annotations.traces_url,
        `${thresholdsFile.links.jaeger_base_url}/search?service=worker&operation=process%20{{ $labels.queue }}&tags=%7B%22error%22%3A%22true%22%7D&lookback=1h`,
        `${a.alert} links a Jaeger search for the queue's failing process spans`,
      );
    } else {
      t.notOk(a.annotations.console_url ?? a.annotations.traces_url, `${a.alert} is not about failing jobs: no console or trace link`);
    }
    if (a.labels.long_window) {
      for (const c of ['fires when', 'is silent when both windows burn just below', 'is silent when only the long window burns', 'is silent when only the short window burns']) {
        t.ok(tests.includes(`name: ${a.alert} (${a.labels.severity}, ${a.labels.long_window}/${a.labels.short_window}) ${c}`), `${a.alert} ${a.labels.long_window}/${a.labels.short_window}: "${c}" promtool test`);
      }
      t.match(a.annotations, { burn_rate: /\$value/, budget_remaining: /query/ }, `${a.alert} annotations carry the burn rate and the budget left`);
    } else {
      t.ok(tests.includes(`name: ${a.alert} (${a.labels.severity}) fires when`), `${a.alert} ${a.labels.severity} has a promtool test`);
    }
  }
  t.same([...anchors].sort(), [...ALERT_NAMES].map((n) => n.toLowerCase()).sort(), 'one runbook section per alert, no stale ones');
  for (const [anchor, sec] of sections) {
    for (const part of ['**Meaning.**', '**Impact.**', '**Diagnosis.**', '**Mitigation.**']) t.ok(sec.includes(part), `runbook #${anchor} has ${part}`);
    t.match(sec, /```promql\n/, `runbook #${anchor} gives exact PromQL`);
    const code = [...sec.matchAll(/```\w*\n([\s\S]*?)```/g)].map((m) => m[1]).join('\n');
    t.notMatch(code, /\bKEYS\b|(\$R|redis-cli\b[^\n]*?)\s+keys\s/, `runbook #${anchor} never runs KEYS`);
  }
  const thresholds = loadThresholds();
  const depthWarn = alerts.find((a: any) => a.alert === 'BullMQQueueDepthHigh' && a.labels.severity === 'warning');
  t.match(depthWarn.expr, `> ${thresholds.defaults.queue_depth.warning}`, 'threshold comes from thresholds.yaml');
  const latencyCrit = alerts.filter((a: any) => a.alert === 'BullMQJobLatencyHigh' && a.labels.severity === 'critical');
  const payments = latencyCrit.find((a: any) => a.labels.queue === 'payments');
  t.match(payments.expr, `{queue="payments"} > ${thresholds.queues.payments!.job_latency_p95_seconds!.critical}`, 'per-queue override');
  t.match(payments.expr, 'queue:bullmq_job_e2e_seconds:p95', 'latency alert reads the end-to-end histogram quantile');
  const other = latencyCrit.find((a: any) => !a.labels.queue);
  t.match(other.expr, /queue!~"payments\|notifications\|webhooks"/, 'default covers queues without overrides');
  // A description names the threshold of the queue that alerts, never the other queues' values.
  for (const a of alerts.filter((x: any) => x.labels.queue)) {
    const others = Object.keys(thresholds.queues).filter((q) => q !== a.labels.queue);
    for (const q of others) t.notMatch(a.annotations.description, q, `${a.alert} ${a.labels.queue} (${a.labels.severity}) description does not mention ${q}`);
  }
  t.match(payments.annotations.description, `threshold of ${thresholds.queues.payments!.job_latency_p95_seconds!.critical}s.`);
  t.notMatch(payments.annotations.description, /default/);
});
