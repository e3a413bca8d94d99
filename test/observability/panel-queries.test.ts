/**
 * Every query of every generated dashboard panel parses and evaluates on a real Prometheus (with the generated
 * rules loaded), including the panels of signals other parts of the stack export (the Dependencies row, the
 * paused gauge): a typo or a wrong function is an error here, without waiting for their data. test/live checks
 * that each query also returns data from a running stack.
 */
import t from 'tap';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { REPO_ROOT } from '../../scripts/lib/repo-root';
import { startProcess, type ManagedProcess } from '../../scripts/lib/process';
import { freePort } from '../helpers/ports';

t.test('every panel query is valid PromQL for a live Prometheus', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'obs-panels-'));
  mkdirSync(path.join(dir, 'rules'));
  copyFileSync(path.join(REPO_ROOT, 'observability/prometheus/rules/bullmq.rules.yml'), path.join(dir, 'rules', 'bullmq.rules.yml'));
  const port = await freePort();
  writeFileSync(path.join(dir, 'prometheus.yml'), YAML.stringify({
    global: { scrape_interval: '1s', evaluation_interval: '1s' },
    rule_files: [path.join(dir, 'rules', '*.yml')],
    scrape_configs: [{ job_name: 'prometheus', static_configs: [{ targets: [`127.0.0.1:${port}`] }] }],
  }));
  // eslint-disable-next-line prefer-const -- assigned below, after the teardown that stops it is registered
  let prom: ManagedProcess | undefined;
  t.teardown(async () => {
    await prom?.stop({ signal: 'SIGTERM' });
    rmSync(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${port}`;
  prom = await startProcess({
    name: 'prometheus',
    command: 'prometheus',
    args: [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`],
    ready: { probe: async () => (await fetch(`${base}/-/ready`)).ok },
    readyTimeoutMs: 60_000,
  });
  const rules = (await (await fetch(`${base}/api/v1/rules`)).json()) as { data: { groups: { rules: { health: string; name: string; lastError?: string }[] }[] } };
  const loaded = rules.data.groups.flatMap((g) => g.rules);
  t.ok(loaded.length > 100, `the generated rules are loaded (${loaded.length})`);

  const bad: string[] = [];
  let checked = 0;
  const dashboards = path.join(REPO_ROOT, 'observability/grafana/dashboards');
  for (const file of readdirSync(dashboards).filter((f) => f.endsWith('.json'))) {
    const d = JSON.parse(readFileSync(path.join(dashboards, file), 'utf8')) as { panels: { title: string; type: string; targets?: { expr: string }[] }[] };
    for (const p of d.panels.filter((x) => x.type !== 'row')) {
      for (const target of p.targets ?? []) {
        const expr = target.expr.replace(/\$queue/g, '.+').replace(/\$testid/g, '.+');
        const res = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(expr)}`);
        const body = (await res.json()) as { status: string; error?: string };
        checked++;
        if (body.status !== 'success') bad.push(`${file} / ${p.title}: ${body.error ?? res.status}`);
      }
    }
  }
  t.same(bad, [], `all ${checked} panel queries evaluate`);
  t.ok(checked > 100, 'every dashboard was read');
  const dependencies = JSON.parse(readFileSync(path.join(dashboards, 'workers.json'), 'utf8')).panels.some((p: { type: string; title: string }) => p.type === 'row' && p.title === 'Dependencies');
  t.ok(dependencies, 'the Dependencies row is among them');

  // The check can fail: a malformed query is reported.
  const broken = (await (await fetch(`${base}/api/v1/query?query=${encodeURIComponent('sum by (dependency (rate(outbound_requests_total[5m]))')}`)).json()) as { status: string };
  t.equal(broken.status, 'error', 'a malformed query is refused');
});
