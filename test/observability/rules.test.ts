/** Prometheus config and rules checked by the real promtool; generated files must be what the generator makes. */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { generatedFiles } from '../../observability/generate/main';
import { loadThresholds, REPO_ROOT } from '../../observability/generate/thresholds';
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
  const tests = promtool(['test', 'rules', 'bullmq.rules.test.yml'], path.join(REPO_ROOT, 'observability/prometheus/tests'));
  t.equal(tests.status, 0, `test rules: ${tests.stdout}${tests.stderr}`);
});

t.test('promtool rule tests fail when a rule is wrong (the tests can fail)', async (t) => {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  const rules = readFileSync(path.join(REPO_ROOT, 'observability/prometheus/rules/bullmq.rules.yml'), 'utf8');
  // Summing replica gauges instead of max doubles the depth: the warning case must now see a critical alert.
  execFileSync('mkdir', ['-p', `${dir}/rules`, `${dir}/tests`]);
  require('node:fs').writeFileSync(`${dir}/rules/bullmq.rules.yml`, rules.replace('max by (queue, state) (bullmq_queue_jobs', 'sum by (queue, state) (bullmq_queue_jobs'));
  require('node:fs').copyFileSync(path.join(REPO_ROOT, 'observability/prometheus/tests/bullmq.rules.test.yml'), `${dir}/tests/t.yml`);
  const res = promtool(['test', 'rules', 't.yml'], `${dir}/tests`);
  t.not(res.status, 0, 'a broken aggregation is caught');
  t.match(res.stdout + res.stderr, /BullMQQueueDepthHigh \(warning\) fires when/);
});

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
  const tests = readFileSync(path.join(REPO_ROOT, 'observability/prometheus/tests/bullmq.rules.test.yml'), 'utf8');
  for (const a of alerts) {
    t.match(a.labels, { severity: /^(warning|critical)$/ }, `${a.alert} severity`);
    t.ok(a.annotations.summary && a.annotations.description, `${a.alert} summary and description`);
    const anchor = String(a.annotations.runbook_url).split('#')[1];
    t.ok(anchors.has(anchor!), `${a.alert} runbook anchor #${anchor} exists in docs/runbooks.md`);
    t.equal(String(a.annotations.runbook_url).split('#')[0], `${thresholdsFile.links.runbook_base_url}`, `${a.alert} runbook_url points at docs/runbooks.md`);
    t.ok(tests.includes(`name: ${a.alert} (${a.labels.severity}) fires when`), `${a.alert} ${a.labels.severity} has a promtool test`);
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
  const latencyCrit = alerts.find((a: any) => a.alert === 'BullMQJobLatencyHigh' && a.labels.severity === 'critical');
  t.match(latencyCrit.expr, `{queue="payments"} > ${thresholds.queues.payments!.job_latency_p95_seconds!.critical}`, 'per-queue override');
  t.match(latencyCrit.expr, /queue!~"payments\|notifications\|webhooks"/, 'default covers queues without overrides');
});
