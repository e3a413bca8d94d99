/** Grafana provisioning and dashboards: stable uids, datasource uids, threshold lines equal thresholds.yaml. */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { loadThresholds, type PerQueueKey } from '../../services/common/thresholds';
import { REPO_ROOT } from '../../scripts/lib/repo-root';
import { dashboards } from '../../observability/generate/dashboards';
import { BURN_RATE_ALERTS, S } from '../../observability/generate/slo';

const dir = path.join(REPO_ROOT, 'observability/grafana/dashboards');
const load = (f: string) => JSON.parse(readFileSync(path.join(dir, f), 'utf8'));

t.test('datasources: Prometheus and Jaeger with fixed uids; exemplars link trace_id to Jaeger', async (t) => {
  const ds = YAML.parse(readFileSync(path.join(REPO_ROOT, 'observability/grafana/provisioning/datasources/datasources.yml'), 'utf8'));
  const prom = ds.datasources.find((d: any) => d.type === 'prometheus');
  const jaeger = ds.datasources.find((d: any) => d.type === 'jaeger');
  t.equal(prom.uid, 'prometheus');
  t.equal(jaeger.uid, 'jaeger');
  t.same(prom.jsonData.exemplarTraceIdDestinations, [{ name: 'trace_id', datasourceUid: 'jaeger' }]);
  const prov = YAML.parse(readFileSync(path.join(REPO_ROOT, 'observability/grafana/provisioning/dashboards/dashboards.yml'), 'utf8'));
  t.equal(prov.providers[0].type, 'file');
});

t.test('dashboards: stable unique uids, every panel on the prometheus datasource with a query', async (t) => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  t.same(files, ['api.json', 'k6.json', 'queues.json', 'redis.json', 'slo.json', 'workers.json']);
  const uids = files.map((f) => load(f).uid);
  t.same(uids, ['bullmq-api', 'bullmq-k6', 'bullmq-queues', 'bullmq-redis', 'bullmq-slo', 'bullmq-workers']);
  t.same(files.map((f) => load(f).title), ['BullMQ — API', 'BullMQ — k6 load tests', 'BullMQ — queues', 'BullMQ — Redis', 'BullMQ — SLOs', 'BullMQ — workers']);
  for (const f of files) {
    const d = load(f);
    const ids = d.panels.map((p: any) => p.id);
    t.equal(new Set(ids).size, ids.length, `${f}: panel ids unique`);
    for (const p of d.panels) {
      // A row is a section heading: no datasource, no query.
      if (p.type === 'row') continue;
      t.equal(p.datasource.uid, 'prometheus', `${f} "${p.title}" datasource`);
      t.ok(p.targets.length > 0 && p.targets.every((q: any) => q.expr && q.refId), `${f} "${p.title}" has queries`);
    }
  }
  const queues = load('queues.json');
  const text = JSON.stringify(queues);
  t.notMatch(text, /sum by \(queue, state\) \(bullmq_queue_jobs/, 'queue state never summed across replicas');
});

t.test('panel ids are stable: adding a per-queue override adds panels without renumbering the others', async (t) => {
  const th = loadThresholds();
  const before = dashboards(th);
  const more = dashboards({ ...th, queues: { ...th.queues, payments: { ...th.queues.payments, queue_depth: { warning: 100, critical: 200 } } } });
  // The SDK's Dashboard type has optional panels, ids and titles; every generated one has them.
  const panelsOf = (d: { panels?: { id?: number; title?: string }[] }) => d.panels ?? [];
  const ids = (d: { panels?: { id?: number; title?: string }[] }) => new Map(panelsOf(d).map((p) => [p.title, p.id]));
  const a = ids(before.queues);
  const b = ids(more.queues);
  t.ok(b.size > a.size, 'the override added panels');
  for (const [title, id] of a) {
    // The panels the override renames: the all-queues depth graph loses its lines and says so in its title; the
    // depth tile becomes one tile per overriding queue.
    const kept = [title!, `${title}, all queues`, `${title} — payments`].find((x) => b.has(x)) ?? title!;
    t.ok(b.has(kept), `"${title}" is still there${kept === title ? '' : ` as "${kept}"`}`);
    if (kept === title) t.equal(b.get(title), id, `"${title}" keeps id ${id}`);
  }
  for (const [name, d] of Object.entries(before)) {
    t.ok(panelsOf(d).length > 0 && panelsOf(d).every((p) => Number.isInteger(p.id) && p.id! > 0), `${name}: positive integer ids`);
  }
  t.same(load('queues.json').panels.map((p: { id: number }) => p.id), panelsOf(before.queues).map((p) => p.id), 'committed ids are the generated ones');
});

t.test('threshold lines: every line is the thresholds.yaml value for what the panel shows, per queue', async (t) => {
  const th = loadThresholds();
  const lv = (l: { warning: number; critical: number }) => [l.warning, l.critical];
  // Signal shown by a panel (recognised in its query) → the thresholds.yaml entry its lines must equal.
  const perQueue: [RegExp, PerQueueKey | 'http_p95_ms'][] = [
    [/queue:bullmq_queue_depth:max/, 'queue_depth'],
    [/queue:bullmq_job_error_ratio:rate5m/, 'job_error_ratio'],
    [/queue:bullmq_job_timeout_ratio:rate5m/, 'job_timeout_ratio'],
    [/queue:bullmq_job_e2e_seconds:p95/, 'job_latency_p95_seconds'],
    [/k6_http_req_duration_p95|histogram_quantile\(0\.95,[^{]*http_request_duration_seconds_bucket\{[^}]*method="POST"/, 'http_p95_ms'],
  ];
  const global: [RegExp, number[]][] = [
    [/process_resident_memory_bytes\{job="worker"\}/, lv(th.worker_memory_bytes)],
    [/instance:redis_memory_used_ratio/, lv(th.redis_memory_ratio)],
    [/job:http_5xx_ratio:rate5m/, lv(th.api_5xx_ratio)],
    [/k6_http_req_failed_rate/, [th.loadtest_error_ratio]],
    // Stat tiles with fixed state colours.
    [/ALERTS\{alertstate="firing"/, [1]],
    [/count\(up\{job="worker"\} == 1\)|min\(redis_up\)|maxmemory_policy="noeviction"/, [1]],
    [/increase\((redis_evicted_keys_total|worker_memory_limit_events_total\{job="worker"\})\[1h\]\)\) or vector\(0\)/, [1]],
    [/_budget:remaining\{queue="/, [0, 0.25]],
    [/^queue:bullmq_worker_saturation:ratio\{/, [th.saturation.busy_ratio]],
    [/count\(queue:bullmq_queue_paused:max/, [1]],
    [/^max by \(dependency\) \(outbound_circuits_open\)$/, [1]],
    [/^queue:bullmq_job_soft_timeout_ratio:rate5m$/, [th.outbound.soft_timeout_ratio]],
  ];
  // Burn-rate panels: one line at the burn rate of the pair whose long window they show.
  for (const a of BURN_RATE_ALERTS) global.push([new RegExp(`^queue:bullmq_slo_\\w+:ratio_rate${a.long} / on \\(queue\\)`), [a.burnRate]]);
  const expectedFor = (key: PerQueueKey | 'http_p95_ms', queue?: string): number[] | undefined => {
    if (key === 'http_p95_ms') {
      const v = queue ? th.queues[queue]?.http_p95_ms ?? th.defaults.http_p95_ms : th.defaults.http_p95_ms;
      const overridden = Object.values(th.queues).some((q) => q.http_p95_ms !== undefined && q.http_p95_ms !== th.defaults.http_p95_ms);
      return queue || !overridden ? [v / 1000] : undefined;
    }
    if (queue) return lv(th.queues[queue]?.[key] ?? th.defaults[key]);
    // A panel for all queues may only draw the default lines when no queue has other values.
    const overridden = Object.values(th.queues).some((q) => q[key] && lv(q[key]).join() !== lv(th.defaults[key]).join());
    return overridden ? undefined : lv(th.defaults[key]);
  };
  const seen = new Set<string>();
  let withLines = 0;
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    for (const p of load(f).panels.filter((x: { type: string }) => x.type !== 'row')) {
      const lines = p.fieldConfig.defaults.thresholds.steps.filter((s: any) => s.value !== null).map((s: any) => s.value);
      const expr = p.targets.map((q: any) => q.expr).join(' ');
      const queue = /queue="([^"]+)"/.exec(expr)?.[1] ?? /route="\/v1\/queues\/([^/"]+)\/jobs"/.exec(expr)?.[1];
      const pq = perQueue.find(([re]) => re.test(expr));
      const g = global.find(([re]) => re.test(expr));
      const expected = pq ? expectedFor(pq[1], queue) : g?.[1];
      if (pq && queue) seen.add(`${pq[1]}/${queue}`);
      if (lines.length) withLines++;
      t.same(lines, expected ?? [], `${f} "${p.title}": threshold lines ${JSON.stringify(expected ?? 'none')}`);
      if (p.type === 'timeseries') t.equal(p.fieldConfig.defaults.custom.thresholdsStyle.mode, lines.length ? 'line+area' : 'off', `${f} "${p.title}" draws its lines`);
    }
  }
  for (const [q, over] of Object.entries(th.queues)) {
    for (const key of Object.keys(over)) t.ok(seen.has(`${key}/${q}`), `a panel draws ${q}'s own ${key} lines`);
  }
  t.ok(withLines >= 10, `threshold lines drawn (${withLines} panels)`);
});

t.test('every dashboard opens with a row of stat panels; latency histograms get heatmaps', async (t) => {
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    const d = load(f);
    const top = d.panels.filter((p: any) => p.gridPos.y === 0);
    t.ok(top.length >= 3 && top.every((p: any) => p.type === 'stat'), `${f}: the first row is stat panels (${top.map((p: any) => p.title).join(', ')})`);
    for (const p of d.panels.filter((x: any) => x.type === 'stat')) {
      t.equal(p.options.colorMode, 'background', `${f} "${p.title}" is coloured by state`);
      t.ok(p.fieldConfig.defaults.thresholds.steps.length >= 1, `${f} "${p.title}" has colour steps`);
    }
    // Panels never overlap and stay within the 24 columns.
    const cells = new Set<string>();
    for (const p of d.panels) {
      const { x, y, w, h } = p.gridPos;
      t.ok(x >= 0 && x + w <= 24, `${f} "${p.title}" fits the grid`);
      let overlaps = false;
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          overlaps ||= cells.has(`${i},${j}`);
          cells.add(`${i},${j}`);
        }
      }
      t.notOk(overlaps, `${f} "${p.title}" overlaps no other panel`);
    }
  }
  const heatmaps = load('queues.json').panels.filter((p: any) => p.type === 'heatmap');
  for (const metric of ['bullmq_job_wait_seconds', 'bullmq_job_processing_seconds', 'bullmq_job_e2e_seconds']) {
    const h = heatmaps.find((p: any) => p.targets[0].expr.includes(`${metric}_bucket`));
    t.ok(h, `queues.json has a heatmap of ${metric}`);
    t.equal(h?.targets[0].format, 'heatmap', `${metric} heatmap reads buckets as a heatmap`);
    t.equal(h?.options.calculate, false, `${metric} heatmap keeps Prometheus' buckets`);
    t.match(h?.targets[0].expr, /sum by \(le\)/, `${metric} heatmap sums by le`);
  }
});

t.test('no panel shows a `paused` job state: a paused queue is shown by bullmq_queue_paused', async (t) => {
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json'))) {
    t.notMatch(readFileSync(path.join(dir, f), 'utf8'), /state=~?\\"[^"]*paused/, `${f} reads no paused job state`);
  }
  const queues = load('queues.json');
  t.ok(queues.panels.some((p: any) => p.type === 'stat' && /bullmq_queue_paused/.test(p.targets[0].expr)), 'a stat tile counts the paused queues');
});

t.test('workers dashboard: a Dependencies row with outbound calls by outcome against the allowed rate, circuits, calls not sent', async (t) => {
  const d = load('workers.json');
  const row = d.panels.findIndex((p: any) => p.type === 'row' && p.title === 'Dependencies');
  t.ok(row > 0, 'a Dependencies row');
  const after = d.panels.slice(row + 1);
  const exprs = after.flatMap((p: any) => p.targets.map((q: any) => q.expr)).join('\n');
  for (const needle of ['dependency_outcome:outbound_requests:rate5m', 'outbound_rate_limit', 'outbound_circuits_open', 'outbound_circuit_transitions_total', 'outcome=~"short_circuited|throttled"', 'bullmq_rate_limit_hits_total']) {
    t.ok(exprs.includes(needle), `the row reads ${needle}`);
  }
  t.ok(after.every((p: any) => p.gridPos.y > d.panels[row].gridPos.y), 'its panels are below the row heading');
});

t.test('SLO dashboard: budget left per queue, the burn rate of every window pair, from thresholds.yaml', async (t) => {
  const th = loadThresholds();
  const d = load('slo.json');
  const exprs = d.panels.flatMap((p: any) => p.targets.map((q: any) => q.expr));
  for (const q of Object.keys(th.slo.queues)) {
    for (const kind of ['errors', 'slow'] as const) {
      const tile = d.panels.find((p: any) => p.type === 'stat' && p.targets[0].expr === `${S.remaining(kind)}{queue="${q}"}`);
      t.ok(tile, `${q} ${kind}: a budget-left tile`);
    }
  }
  for (const kind of ['errors', 'slow'] as const) {
    t.ok(exprs.includes(S.remaining(kind)), `${kind}: budget remaining over the period for every queue`);
    for (const a of BURN_RATE_ALERTS) {
      for (const w of [a.long, a.short]) t.ok(exprs.includes(`${S.ratio(kind, w)} / on (queue) ${S.budget(kind)}`), `${kind}: burn rate over ${w}`);
    }
  }
  t.equal(d.time.from, 'now-7d', 'SLO dashboard opens on a week (budgets move slowly)');
});
