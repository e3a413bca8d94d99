/**
 * Prometheus keeps at least the longest window any rule reads: compose.yaml and the native stack run with the
 * retention derived from the rules (observability/generate/retention.ts), and a rule reading further back than
 * that retention fails here.
 */
import t from 'tap';
import { readFileSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { durationSeconds, loadThresholds } from '../../services/common/thresholds';
import { REPO_ROOT } from '../../scripts/lib/repo-root';
import { longestRangeSeconds, prometheusRetention, RETENTION_MARGIN_DAYS, ruleExpressions } from '../../observability/generate/retention';
import { prometheusFlags } from '../../scripts/stack/configs';

const flag = (args: readonly string[]) => args.find((a) => a.startsWith('--storage.tsdb.retention.time='))?.split('=')[1];
const composeRetention = () => {
  const compose = YAML.parse(readFileSync(path.join(REPO_ROOT, 'compose.yaml'), 'utf8')) as { services: { prometheus: { command: string[] } } };
  return flag(compose.services.prometheus.command);
};

t.test('ranges are read from range selectors and subqueries', async (t) => {
  t.equal(longestRangeSeconds(['rate(x[5m])', 'max_over_time(y[1h:1m])', 'last_over_time((z >= 0)[2d:])']), 2 * 86_400);
  t.equal(longestRangeSeconds(['up == 0']), 0);
});

t.test('the shipped rules read at most the SLO period, and the retention covers it with the margin', async (t) => {
  const th = loadThresholds();
  const longest = longestRangeSeconds(ruleExpressions(th));
  t.equal(longest, durationSeconds(th.slo.period), `the longest window is the SLO period (${th.slo.period})`);
  t.equal(prometheusRetention(th), `${durationSeconds(th.slo.period) / 86_400 + RETENTION_MARGIN_DAYS}d`);
  t.equal(prometheusRetention(th), '35d', '30d SLO period + 5d margin');
});

t.test('compose and the native stack run Prometheus with that retention', async (t) => {
  const th = loadThresholds();
  const want = prometheusRetention(th);
  t.equal(composeRetention(), want, 'compose.yaml prometheus --storage.tsdb.retention.time');
  t.equal(flag(prometheusFlags('/c.yml', '/data', 9090, th)), want, 'the native stack (scripts/stack) likewise');
  for (const r of [composeRetention(), flag(prometheusFlags('/c.yml', '/data', 9090, th))]) {
    t.ok(durationSeconds(r!) >= longestRangeSeconds(ruleExpressions(th)), `${r} holds every rule's window`);
  }
});

t.test('a rule window growing past the retention fails the check (the check can fail)', async (t) => {
  const doc = YAML.parse(readFileSync(path.join(REPO_ROOT, 'observability/thresholds.yaml'), 'utf8'));
  doc.slo.period = '40d';
  const dir = mkdtempSync(path.join(tmpdir(), 'obs-retention-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(path.join(dir, 'thresholds.yaml'), YAML.stringify(doc));
  const longer = loadThresholds(path.join(dir, 'thresholds.yaml'));
  t.equal(longestRangeSeconds(ruleExpressions(longer)), 40 * 86_400, 'the 40d period is read by the rules');
  t.ok(durationSeconds(composeRetention()!) < longestRangeSeconds(ruleExpressions(longer)), 'compose\'s retention would no longer hold it');
  t.equal(prometheusRetention(longer), '45d', 'and the derived retention moves with it');
});
