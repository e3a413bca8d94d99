/** The thresholds.yaml schema (services/common/thresholds.ts) and the THRESHOLDS_FILE setting that locates it. */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { ConfigError, parseConfig, thresholdsFile } from '../../services/common/config';
import { loadThresholds } from '../../services/common/thresholds';
import { repoPath } from '../../scripts/lib/repo-root';

const shipped = repoPath('observability', 'thresholds.yaml');
const doc = YAML.parse(readFileSync(shipped, 'utf8'));
const dir = mkdtempSync(path.join(tmpdir(), 'thresholds-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
/** Writes the shipped file with one edit; returns its path. */
function edited(mutate: (d: any) => void): string {
  const d = structuredClone(doc);
  mutate(d);
  const file = path.join(dir, `thresholds-${n++}.yaml`);
  writeFileSync(file, YAML.stringify(d));
  return file;
}

t.test('the shipped file passes the schema, and the loader fills every catalog queue', async (t) => {
  const th = loadThresholds(shipped);
  t.same(Object.keys(th.queues), ['payments', 'notifications', 'webhooks']);
  t.same(Object.keys(th.slo.queues), ['payments', 'notifications', 'webhooks']);
  t.equal(th.for.queue_stuck_window, '10m');
  t.equal(th.loadtest_error_ratio, 0.05);
});

t.test('a key the schema does not name is refused with its path, in every section', async (t) => {
  const cases: [string, (d: any) => void][] = [
    ['for.queue_stuck', (d) => (d.for.queue_stuck = '10m')],
    ['links.grafana_url', (d) => (d.links.grafana_url = 'http://x')],
    ['worker_saturation', (d) => (d.worker_saturation = { warning: 0.8, critical: 0.95 })],
    ['queues.payments.queue_dept', (d) => (d.queues.payments.queue_dept = { warning: 1, critical: 2 })],
    ['defaults.queue_depth.warn', (d) => (d.defaults.queue_depth.warn = 1)],
    ['slo.queues.payments.succes', (d) => (d.slo.queues.payments.succes = 0.9)],
    ['slo.budget', (d) => (d.slo.budget = 0.1)],
  ];
  for (const [at, mutate] of cases) {
    const file = edited(mutate);
    t.throws(() => loadThresholds(file), new RegExp(`${at.replace(/\./g, '\\.')} is not a known key`), at);
  }
});

t.test('values are checked: durations, links, ratios, levels, and required keys', async (t) => {
  const cases: [RegExp, (d: any) => void][] = [
    [/for\.default must be a Prometheus duration/, (d) => (d.for.default = '5 minutes')],
    [/for\.redis_down must be a Prometheus duration .*\(missing\)/, (d) => delete d.for.redis_down],
    [/links\.jaeger_base_url must be an http\(s\) URL \(found "jaeger"\)/, (d) => (d.links.jaeger_base_url = 'jaeger')],
    [/links is missing/, (d) => delete d.links],
    [/loadtest_error_ratio must be a ratio from 0 to below 1 \(found 5\)/, (d) => (d.loadtest_error_ratio = 5)],
    [/loadtest_error_ratio must be a ratio/, (d) => (d.loadtest_error_ratio = '5%')],
    [/defaults\.http_p95_ms must be a positive number of milliseconds/, (d) => (d.defaults.http_p95_ms = 0)],
    [/queues\.webhooks\.job_error_ratio\.critical/, (d) => (d.queues.webhooks.job_error_ratio = { warning: 0.1 })],
    [/queues\.notifications\.queue_depth: warning must be below critical/, (d) => (d.queues.notifications.queue_depth = { warning: 9, critical: 3 })],
    [/saturation\.busy_ratio must be a ratio/, (d) => (d.saturation.busy_ratio = 1.5)],
    [/outbound\.circuit_open_for must be a Prometheus duration/, (d) => (d.outbound.circuit_open_for = "a minute")],
    [/api_5xx_ratio: warning must be below critical/, (d) => (d.api_5xx_ratio = { warning: 0.05, critical: 0.05 })],
  ];
  for (const [expected, mutate] of cases) {
    const file = edited(mutate);
    t.throws(() => loadThresholds(file), expected, String(expected));
  }
});

t.test('THRESHOLDS_FILE locates the file: relative to the working directory by default, any path when set', async (t) => {
  t.equal(thresholdsFile({}), path.resolve('observability/thresholds.yaml'));
  t.equal(parseConfig({}).thresholdsFile, path.resolve('observability/thresholds.yaml'));
  const file = edited((d) => (d.worker_memory_bytes = { warning: 100_000_000, critical: 200_000_000 }));
  t.equal(thresholdsFile({ THRESHOLDS_FILE: file }), file);
  const c = parseConfig({ THRESHOLDS_FILE: file });
  t.equal(c.thresholdsFile, file);
  t.equal(c.worker.memorySoftLimitBytes, 100_000_000, 'worker memory limits come from the configured file');
  t.equal(c.worker.memoryHardLimitBytes, 200_000_000);
  const missing = path.join(dir, 'nowhere.yaml');
  t.throws(() => parseConfig({ THRESHOLDS_FILE: missing }), ConfigError);
  t.throws(() => parseConfig({ THRESHOLDS_FILE: missing }), new RegExp(`THRESHOLDS_FILE ${missing.replace(/[/.]/g, '\\$&')}.*ENOENT`));
  t.throws(() => thresholdsFile({ THRESHOLDS_FILE: '' }), /THRESHOLDS_FILE/, 'an empty setting is refused');
});
