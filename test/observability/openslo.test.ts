/**
 * The OpenSLO export: one success and one latency SLO per queue with thresholds.yaml's objectives, period and
 * bound; its queries select the right series (the real promtool evaluates them on known counters).
 */
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { loadThresholds } from '../../services/common/thresholds';
import { REPO_ROOT } from '../../scripts/lib/repo-root';
import { tool } from './tools';

const docs = YAML.parseAllDocuments(readFileSync(path.join(REPO_ROOT, 'observability/slo/bullmq.openslo.yaml'), 'utf8')).map((d) => d.toJS());
const th = loadThresholds();

t.test('one success and one latency SLO per queue, objectives and period from thresholds.yaml', async (t) => {
  t.ok(docs.every((d: any) => d.apiVersion === 'openslo/v1'), 'every document is openslo/v1');
  const service = docs.find((d: any) => d.kind === 'Service');
  t.ok(service, 'a Service');
  const slos = docs.filter((d: any) => d.kind === 'SLO');
  t.equal(slos.length, Object.keys(th.slo.queues).length * 2);
  for (const [queue, s] of Object.entries(th.slo.queues)) {
    const success = slos.find((d: any) => d.metadata.name === `${queue}-job-success`);
    const latency = slos.find((d: any) => d.metadata.name === `${queue}-job-latency`);
    for (const [slo, target] of [[success, s.success], [latency, s.latency]] as const) {
      t.equal(slo?.spec.service, service.metadata.name, `${slo?.metadata.name} belongs to the service`);
      t.same(slo?.spec.objectives.map((o: any) => o.target), [target], `${slo?.metadata.name} target ${target}`);
      t.same(slo?.spec.timeWindow, [{ duration: th.slo.period, isRolling: true }], `${slo?.metadata.name} rolling ${th.slo.period}`);
      t.equal(slo?.spec.budgetingMethod, 'Occurrences');
      t.equal(slo?.spec.indicator.spec.ratioMetric.counter, true);
    }
    t.match(latency.spec.indicator.spec.ratioMetric.good.metricSource.spec.query, `le=~"${String(s.latency_bound_seconds).replace('.', '\\\\.')}`, `${queue}: the bound's bucket`);
  }
});

t.test('the queries select the right series (promtool evaluates them)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'obs-openslo-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const q = (m: any, k: string) => m.spec.indicator.spec.ratioMetric[k].metricSource.spec.query as string;
  const input_series: { series: string; values: string }[] = [];
  const promql_expr_test: unknown[] = [];
  for (const [queue, s] of Object.entries(th.slo.queues)) {
    const w = `job="worker",instance="w1",queue="${queue}"`;
    // 10 % of jobs fail; 95 % of completed jobs end within the bound (and a slower bucket above it).
    input_series.push(
      { series: `bullmq_jobs_completed_total{${w}}`, values: '0+90x10' },
      { series: `bullmq_jobs_failed_total{${w},reason="timeout"}`, values: '0+10x10' },
      { series: `bullmq_job_e2e_seconds_bucket{${w},status="completed",le="${s.latency_bound_seconds}"}`, values: '0+95x10' },
      { series: `bullmq_job_e2e_seconds_bucket{${w},status="completed",le="${s.latency_bound_seconds * 10}"}`, values: '0+99x10' },
      { series: `bullmq_job_e2e_seconds_bucket{${w},status="completed",le="+Inf"}`, values: '0+100x10' },
      { series: `bullmq_job_e2e_seconds_count{${w},status="completed"}`, values: '0+100x10' },
      // The failed jobs' own latency series must not count.
      { series: `bullmq_job_e2e_seconds_count{${w},status="failed"}`, values: '0+10x10' },
    );
    const success = docs.find((d: any) => d.metadata.name === `${queue}-job-success`);
    const latency = docs.find((d: any) => d.metadata.name === `${queue}-job-latency`);
    promql_expr_test.push(
      { expr: `(${q(success, 'bad')}) / (${q(success, 'total')})`, eval_time: '10m', exp_samples: [{ labels: '{}', value: 0.1 }] },
      { expr: `(${q(latency, 'good')}) / (${q(latency, 'total')})`, eval_time: '10m', exp_samples: [{ labels: '{}', value: 0.95 }] },
    );
  }
  writeFileSync(path.join(dir, 't.yml'), YAML.stringify({ evaluation_interval: '1m', tests: [{ interval: '1m', input_series, promql_expr_test }] }));
  const res = tool('promtool', ['test', 'rules', 't.yml'], dir);
  t.equal(res.status, 0, res.stdout + res.stderr);
});
