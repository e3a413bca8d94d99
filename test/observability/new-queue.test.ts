/**
 * A fourth queue is one catalog entry plus one processor file: the observability generator takes its queues from the
 * catalog, so thresholds.yaml needs no edit and the rules, SLOs, dashboards and load-test thresholds cover the new
 * queue with the defaults. Generated here for a catalog with an extra queue ("exports"), then checked by promtool.
 */
import t from 'tap';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { generatedFiles } from '../../observability/generate/main';
import { loadThresholds } from '../../services/common/thresholds';
import { repoPath } from '../../scripts/lib/repo-root';
import { QUEUE_NAMES } from '../../services/common/queue-catalog';
import { tool } from './tools';

const NEW_QUEUE = 'exports';
const catalog = [...QUEUE_NAMES, NEW_QUEUE];
const thresholdsFile = repoPath('observability', 'thresholds.yaml');

interface Rule { record?: string; alert?: string; expr: string; labels?: Record<string, string> }
interface Panel { title?: string; targets?: { expr: string }[]; panels?: Panel[] }

t.test('the shipped thresholds.yaml, generated for a catalog with a fourth queue, covers it everywhere', async (t) => {
  const th = loadThresholds(thresholdsFile, catalog);
  t.same(th.queues[NEW_QUEUE], {}, 'no overrides: the defaults apply');
  t.same(th.slo.queues[NEW_QUEUE], th.slo.defaults, 'the default SLOs apply');
  const files = generatedFiles(th);

  const rules = (YAML.parse(files['observability/prometheus/rules/bullmq.rules.yml']!) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);
  const sli = rules.filter((r) => r.record?.startsWith('queue:bullmq_slo_') && r.expr.includes(`queue="${NEW_QUEUE}"`));
  t.ok(sli.length > 0, `SLI recording rules for ${NEW_QUEUE} (${sli.length})`);
  for (const alert of ['BullMQSLOErrorBudgetBurn', 'BullMQSLOLatencyBudgetBurn']) {
    const mine = rules.filter((r) => r.alert === alert && r.labels?.queue === NEW_QUEUE);
    t.equal(mine.length, 4, `${alert}: one rule per window pair for ${NEW_QUEUE}`);
  }
  // Threshold alerts: per-queue rules for the queues with overrides, one default rule for every other queue.
  for (const alert of ['BullMQJobLatencyHigh', 'BullMQQueueDepthHigh', 'BullMQJobErrorRateHigh']) {
    const defaults = rules.filter((r) => r.alert === alert && !r.labels?.queue);
    t.ok(defaults.length > 0, `${alert} has a default rule`);
    for (const r of defaults) {
      const excluded = /queue!~"([^"]*)"/.exec(r.expr)?.[1]?.split('|') ?? [];
      t.notOk(excluded.includes(NEW_QUEUE), `${alert} (${r.labels?.severity}) default rule covers ${NEW_QUEUE}`);
    }
  }

  const openslo = files['observability/slo/bullmq.openslo.yaml']!;
  t.match(openslo, `queue="${NEW_QUEUE}"`, 'the OpenSLO export has its objectives');

  const slo = JSON.parse(files['observability/grafana/dashboards/slo.json']!) as { panels: Panel[] };
  const flat = (ps: Panel[]): Panel[] => ps.flatMap((p) => [p, ...flat(p.panels ?? [])]);
  t.ok(flat(slo.panels).some((p) => p.targets?.some((x) => x.expr.includes(`queue="${NEW_QUEUE}"`))), 'the SLO dashboard has its panels');
  const api = JSON.parse(files['observability/grafana/dashboards/api.json']!) as { panels: Panel[] };
  t.ok(flat(api.panels).some((p) => p.targets?.some((x) => x.expr.includes(`route="/v1/queues/${NEW_QUEUE}/jobs"`))), 'the API dashboard has its enqueue route');
  const queues = JSON.parse(files['observability/grafana/dashboards/queues.json']!) as { templating: { list: { name: string; query: unknown }[] } };
  t.match(JSON.stringify(queues.templating.list.find((v) => v.name === 'queue')?.query), /label_values\(bullmq_queue_jobs, queue\)/, 'the queues dashboard lists queues from the metrics');

  const load = JSON.parse(files['loadtest/thresholds.json']!) as { default_http_p95_ms: number; queues: Record<string, { http_p95_ms: number }> };
  t.same(load.queues[NEW_QUEUE], { http_p95_ms: load.default_http_p95_ms }, 'the load tests have its HTTP threshold');

  // And the whole generated set is still valid and its tests pass.
  const dir = mkdtempSync(path.join(tmpdir(), 'obs-new-queue-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'rules'));
  mkdirSync(path.join(dir, 'tests'));
  writeFileSync(path.join(dir, 'rules', 'bullmq.rules.yml'), files['observability/prometheus/rules/bullmq.rules.yml']!);
  for (const f of ['bullmq.rules.test.yml', 'bullmq-slo.rules.test.yml']) writeFileSync(path.join(dir, 'tests', f), files[`observability/prometheus/tests/${f}`]!);
  const check = tool('promtool', ['check', 'rules', '--lint=all', '--lint-fatal', path.join(dir, 'rules', 'bullmq.rules.yml')]);
  t.equal(check.status, 0, `check rules: ${check.stdout}${check.stderr}`);
  const run = tool('promtool', ['test', 'rules', 'bullmq.rules.test.yml', 'bullmq-slo.rules.test.yml'], path.join(dir, 'tests'));
  t.equal(run.status, 0, `test rules: ${run.stdout}${run.stderr}`);
});

t.test('thresholds.yaml naming a queue the catalog does not have is an error, not a silent no-op', async (t) => {
  t.throws(() => loadThresholds(thresholdsFile, ['payments', 'notifications']), /queues names webhooks, not in the queue catalog/);
});
