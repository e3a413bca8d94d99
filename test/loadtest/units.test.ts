/**
 * Unit-level logic of the load tools: scenario parsing and validation, mix selection (node runner and k6),
 * threshold verdicts (node runner and k6 summary), CLI arguments, the progressive report, and the threshold
 * derivative loadtest/thresholds.json against its source observability/thresholds.yaml.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { loadScenarios, loadLoadThresholds, payloadFor, validateScenarios, type ScenarioFile, type LoadThresholds } from '../../loadtest/lib/scenarios';
import { verdicts } from '../../loadtest/lib/verdict';
import { parseDuration } from '../../scripts/lib/cli';
import { connectionsFor, loadStages, loadTargets, parseArgs } from '../../loadtest/run';
import { markdownReport, parseProgressiveArgs, summaryFromK6 } from '../../loadtest/progressive';
import { ROOT } from '../helpers/services';
import { esmImport } from '../helpers/esm-import';

const k6Options = () => esmImport(`data:text/javascript;base64,${readFileSync(path.join(ROOT, 'loadtest/k6/options.js')).toString('base64')}`);

const TH: LoadThresholds = { error_ratio: 0.05, default_http_p95_ms: 1000, queues: { payments: { http_p95_ms: 500 }, notifications: { http_p95_ms: 300 } } };

t.test('durations', async (t) => {
  t.equal(parseDuration('500ms'), 500);
  t.equal(parseDuration('15s'), 15_000);
  t.equal(parseDuration('2m'), 120_000);
  t.equal(parseDuration('1.5h'), 5_400_000);
  for (const bad of ['', '10', '5 min', '-1s', '1d']) t.throws(() => parseDuration(bad), /invalid duration/, `"${bad}" refused`);
});

t.test('scenarios file validation names the bad entry', async (t) => {
  const good = (): ScenarioFile => JSON.parse(readFileSync(path.join(ROOT, 'loadtest/scenarios.json'), 'utf8'));
  t.ok(validateScenarios(good()));
  const cases: [string, (s: ScenarioFile) => void, RegExp][] = [
    ['think time', (s) => (s.thinkTimeMs = 0), /thinkTimeMs/],
    ['no mix', (s) => (s.mix = []), /mix must list/],
    ['zero weights', (s) => s.mix.forEach((m) => (m.weight = 0)), /add up to more than 0/],
    ['negative weight', (s) => (s.mix[0]!.weight = -1), /weight of "payments"/],
    ['payload missing', (s) => delete s.payloads.webhooks, /no payload for queue "webhooks"/],
    ['bad duration', (s) => (s.scenarios.light!.stages[0]!.duration = '2 minutes'), /scenario "light": invalid duration/],
    ['bad target', (s) => (s.scenarios.heavy!.stages[0]!.target = 0), /scenario "heavy": target/],
    ['no stages', (s) => (s.scenarios.smoke!.stages = []), /"smoke" has no stages/],
    ['unknown progressive step', (s) => s.progressive.push('insane'), /unknown scenario "insane"/],
    ['idempotent queue outside the mix', (s) => s.idempotentQueues.push('refunds'), /idempotentQueues names "refunds"/],
    ['idempotentQueues missing', (s) => delete (s as Partial<ScenarioFile>).idempotentQueues, /idempotentQueues must list/],
  ];
  for (const [name, mutate, re] of cases) {
    const s = good();
    mutate(s);
    t.throws(() => validateScenarios(s), re, name);
  }
});

t.test('payments are the queue whose requests each carry a new Idempotency-Key', async (t) => {
  t.same(loadScenarios().idempotentQueues, ['payments']);
  const { idempotencyKey } = await k6Options();
  t.equal(idempotencyKey('k6-abc', 3, 17), 'k6-abc-3-17');
  t.not(idempotencyKey('k6-abc', 3, 17), idempotencyKey('k6-abc', 3, 18), 'another iteration, another key');
  t.not(idempotencyKey('k6-abc', 3, 17), idempotencyKey('k6-abc', 4, 17), 'another VU, another key');
});

t.test('payload templates: ${VARS} filled, a missing one refused', async (t) => {
  const s = loadScenarios();
  const w = JSON.parse(payloadFor(s, 'webhooks', { WEBHOOK_TARGET_URL: 'http://webhook-receiver:8099/hooks' }));
  t.equal(w.data.url, 'http://webhook-receiver:8099/hooks');
  t.throws(() => payloadFor(s, 'webhooks', {}), /needs WEBHOOK_TARGET_URL/);
  t.notMatch(payloadFor(s, 'payments', {}), /\$\{/, 'payments has no template variable');
});

t.test('mix selection: the node runner weights the generator\'s targets, k6 picks by weight', async (t) => {
  const s = loadScenarios();
  const odd = { ...s, mix: [{ queue: 'a', weight: 3 }, { queue: 'b', weight: 1 }] };
  // VU mode: closed loop, the scenario's VUs with its think time; rate mode: open loop at the total rate.
  const stages = [{ seconds: 10, target: 100 }, { seconds: 5, target: 20 }];
  t.same(loadStages(s, stages, undefined), [{ seconds: 10, users: 100, thinkTimeMs: s.thinkTimeMs }, { seconds: 5, users: 20, thinkTimeMs: s.thinkTimeMs }]);
  t.same(loadStages(s, stages, 1000), [{ seconds: 10, rate: 1000 }, { seconds: 5, rate: 1000 }]);
  t.equal(connectionsFor(loadStages(s, stages, undefined)), 100, 'one connection per VU of the largest stage');
  t.equal(connectionsFor([{ seconds: 1, rate: 1000 }]), 500, 'rate mode: answers up to 500 ms keep the pace');
  t.equal(connectionsFor([{ seconds: 1, rate: 3 }]), 4, 'at least 4');
  t.equal(connectionsFor([{ seconds: 1, rate: 100_000 }]), 1000, 'capped');
  // The mix's weights go to the generator; only the idempotent queues send a key.
  const targets = loadTargets(s, 'http://127.0.0.1:3000/base/', 'http://hooks/h');
  t.same(targets.map((x) => [x.label, x.weight, x.path, x.idempotencyKeyPrefix]), [
    ['payments', 40, '/base/v1/queues/payments/jobs', 'loadtest-'],
    ['notifications', 40, '/base/v1/queues/notifications/jobs', undefined],
    ['webhooks', 20, '/base/v1/queues/webhooks/jobs', undefined],
  ]);
  t.match(JSON.parse(targets[2]!.body), { data: { url: 'http://hooks/h' } }, 'the webhook URL filled in');
  const k6 = await k6Options();
  const counts: Record<string, number> = {};
  for (let i = 0; i < 1000; i++) {
    const q = k6.pickQueue(s.mix, i / 1000);
    counts[q] = (counts[q] ?? 0) + 1;
  }
  t.same(counts, { payments: 400, notifications: 400, webhooks: 200 });
  t.equal(k6.pickQueue(odd.mix, 0.999), 'b');
});

t.test('threshold verdicts: strictly below the limit, per-queue p95 with a default, no requests = fail', async (t) => {
  const v = verdicts(
    [
      { queue: 'payments', requests: 100, errors: 4, p50: 10, p95: 499.9, p99: 900 },
      { queue: 'notifications', requests: 100, errors: 5, p50: 10, p95: 300, p99: 310 },
      { queue: 'webhooks', requests: 100, errors: 0, p50: 10, p95: 999, p99: 2000 },
      { queue: 'reports', requests: 0, errors: 0, p50: 0, p95: 0, p99: 0 },
    ],
    TH,
  );
  const by = (q: string, c: string) => v.find((x) => x.queue === q && x.check.startsWith(c))!;
  t.match(by('payments', 'http p95'), { limit: 500, actual: 499.9, pass: true });
  t.match(by('payments', 'error'), { limit: 0.05, actual: 0.04, pass: true });
  t.match(by('notifications', 'http p95'), { limit: 300, pass: false }, 'p95 equal to the limit fails (k6: p(95)<300)');
  t.match(by('notifications', 'error'), { actual: 0.05, pass: false }, 'error ratio equal to the limit fails (k6: rate<0.05)');
  t.match(by('webhooks', 'http p95'), { limit: 1000, pass: true }, 'queue without its own limit uses the default');
  t.match(by('reports', 'http p95'), { pass: false });
  t.match(by('reports', 'error'), { actual: 1, pass: false });
});

t.test('k6 verdicts from handleSummary data, and the text summary', async (t) => {
  const data = {
    metrics: {
      http_reqs: { values: { count: 300, rate: 50 } },
      vus_max: { values: { max: 100 } },
      'http_req_duration{queue:payments}': { values: { med: 12, 'p(95)': 620, 'p(99)': 800 }, thresholds: { 'p(95)<500': { ok: false } } },
      'http_req_failed{queue:payments}': { values: { rate: 0.02, passes: 2, fails: 98 }, thresholds: { 'rate<0.05': { ok: true } } },
      'http_req_duration{queue:webhooks}': { values: { med: 5, 'p(95)': 9, 'p(99)': 11 }, thresholds: { 'p(95)<1000': { ok: true } } },
      'http_req_failed{queue:webhooks}': { values: { rate: 0, passes: 0, fails: 200 }, thresholds: { 'rate<0.05': { ok: true } } },
    },
  };
  const s = summaryFromK6('light', data, false);
  t.match(s, { scenario: 'light', vus: 100, requests: 300, rps: 50, passed: false, failed: ['http_req_duration{queue:payments} p(95)<500'] });
  t.same(
    s.queues.find((q) => q.queue === 'payments'),
    { queue: 'payments', requests: 100, errors: 2, p50: 12, p95: 620, p99: 800 },
    'http_req_failed passes are the failed requests',
  );
  t.equal(summaryFromK6('light', data, true).passed, false, 'a crossed threshold fails even with exit code 0');
  const k6 = await k6Options();
  const text: string = k6.summaryText(data, 'light-1', ['payments', 'notifications', 'webhooks']);
  t.match(text, /^k6 light-1: 300 requests/);
  t.match(text, /payments\s+100\s+2\.0\s+12\.0\s+620\.0\s+800\.0/);
  t.match(text, /✗ http_req_duration\{queue:payments\} p\(95\)<500/);
  t.match(text, /FAIL: 1 threshold\(s\) crossed/);
});

t.test('progressive report compares the runs and names what failed', async (t) => {
  const q = (queue: string, p95: number) => ({ queue, requests: 1000, errors: 0, p50: 5, p95, p99: p95 * 1.5 });
  const runs = [
    { scenario: 'light', vus: 100, requests: 6000, rps: 100, queues: [q('payments', 40)], passed: true, failed: [] },
    { scenario: 'medium', vus: 250, requests: 15000, rps: 250, queues: [q('payments', 700)], passed: false, failed: ['payments http p95 (ms) 700 (limit 500)'] },
  ];
  const md = markdownReport(runs, ['light', 'medium', 'heavy', 'extreme']);
  t.match(md, /stopped at \*\*medium\*\*: thresholds failed/);
  t.match(md, /Highest load that held every threshold: \*\*light\*\* \(100 VUs, 100 req\/s\)/);
  t.match(md, /\| medium \| 250 \| 15000 \| 250 \| payments \| 5\.0 \| 700\.0 \| 1050\.0 \| 0 \| FAIL \|/);
  t.match(md, /- payments http p95 \(ms\) 700 \(limit 500\)/);
  t.match(md, /Not run: heavy, extreme\./);
  t.match(markdownReport([], ['light']), /No scenario held every threshold/);
});

t.test('CLI: flags, then the k6 script env names, then defaults', async (t) => {
  const a = parseArgs(['--scenario', 'light', '--api-key', 'k', '--rate', '200', '--scale', '0.5', '--duration', '10s'], {});
  t.match(a.options, { scenario: 'light', apiKey: 'k', rate: 200, scale: 0.5, duration: '10s', baseUrl: 'http://127.0.0.1:3000', webhookUrl: 'http://127.0.0.1:8099/hooks' });
  const e = parseArgs([], { API_KEY: 'env-key', BASE_URL: 'http://api:3000', WEBHOOK_TARGET_URL: 'http://webhook-receiver:8099/hooks', SCENARIO: 'medium' });
  t.match(e.options, { scenario: 'medium', apiKey: 'env-key', baseUrl: 'http://api:3000', webhookUrl: 'http://webhook-receiver:8099/hooks', rate: undefined });
  t.equal(parseArgs(['--api-key', 'flag'], { API_KEY: 'env' }).options.apiKey, 'flag', 'a flag wins over the env');
  t.throws(() => parseArgs([], {}), /--api-key \(or API_KEY\) is required/);
  t.throws(() => parseArgs(['--api-key', 'k', '--rate=-5'], {}), /--rate must be a number > 0, got "-5"/);
  t.throws(() => parseArgs(['--api-key', 'k', '--duration', 'soon'], {}), /invalid duration/);
  t.throws(() => parseArgs(['--api-key', 'k', '--bogus', '1'], {}), /Unknown option '--bogus'/);
  t.throws(() => parseArgs(['--api-key'], {}), /Option '--api-key <value>' argument missing/);
  t.throws(() => parseArgs(['--api-key', '--rate', '5'], {}), /argument is ambiguous/, 'a flag is not taken as the previous flag\'s value');
  t.throws(() => parseArgs(['--api-key', 'k', 'light'], {}), /Unexpected argument 'light'/);
  t.throws(() => parseArgs(['--api-key', 'k', '--rate', 'fast'], {}), /--rate must be a number > 0, got "fast"/);
  t.throws(() => parseArgs(['--api-key', 'k', '--scale', '0'], {}), /--scale must be a number > 0, got "0"/);
  t.throws(() => parseArgs(['--api-key', 'k'], { RATE: 'x' }), /--rate must be a number > 0, got "x"/, 'RATE from the env is checked too');
  t.throws(() => parseArgs(['--api-key', 'k', '--scenario', 'huge'], {}), /--scenario must be one of smoke, light, .*got "huge"/);
  t.throws(() => parseArgs(['--api-key', 'k', '--base-url', 'localhost:3000'], {}), /--base-url must be an http\(s\) URL, got "localhost:3000"/);
  t.throws(() => parseArgs(['--api-key', 'k', '--webhook-url', 'not a url'], {}), /--webhook-url must be an http\(s\) URL/);
  for (const bad of [['--bogus'], ['--rate', '0']]) {
    t.throws(() => parseArgs(['--api-key', 'k', ...bad], {}), { name: 'UsageError', message: /usage: npm run loadtest/ }, `${bad.join(' ')}: a UsageError with the usage text`);
  }
  t.equal(parseArgs(['--help'], {}).help, true);
  t.equal(parseArgs(['--api-key=k', '--rate=50'], {}).options.rate, 50, '--flag=value works too');
});

t.test('loadtest/thresholds.json is exactly what observability/thresholds.yaml says', async (t) => {
  const src = YAML.parse(readFileSync(path.join(ROOT, 'observability/thresholds.yaml'), 'utf8'));
  const json = loadLoadThresholds();
  t.equal(json.error_ratio, src.loadtest_error_ratio);
  t.equal(json.default_http_p95_ms, src.defaults.http_p95_ms);
  const fromYaml = Object.fromEntries(Object.entries(src.queues as Record<string, { http_p95_ms?: number }>).map(([q, v]) => [q, v.http_p95_ms ?? src.defaults.http_p95_ms]));
  const fromJson = Object.fromEntries(Object.entries(json.queues).map(([q, v]) => [q, v.http_p95_ms]));
  t.same(fromJson, fromYaml, 'per-queue HTTP p95');
  // The scaling guide's table (docs/loadtest.md), so a drift in either file is visible here too.
  t.same(fromJson, { payments: 500, notifications: 300, webhooks: 1000 });
  t.equal(json.error_ratio, 0.05);
  for (const { queue } of loadScenarios().mix) t.ok(json.queues[queue], `${queue} of the traffic mix has a threshold`);
});

t.test('the k6 dashboard only queries series that our remote-write settings produce', async (t) => {
  // K6_PROMETHEUS_RW_TREND_STATS decides which k6_<trend>_<stat> series exist; other k6 series are fixed.
  const trendStats = new Set<string>();
  const sources = ['compose.yaml', 'loadtest/progressive.ts', 'docs/loadtest.md'].map((f) => readFileSync(path.join(ROOT, f), 'utf8'));
  for (const src of sources) {
    const m = /K6_PROMETHEUS_RW_TREND_STATS[:=]\s*['"]?([^'"\s,}]+(?:,[^'"\s,}]+)*)/.exec(src);
    t.ok(m, 'trend stats set');
    const stats = m![1]!.split(',').map((s) => s.replace(/^p\((\d+)\)$/, 'p$1'));
    if (!trendStats.size) stats.forEach((s) => trendStats.add(s));
    else t.same(stats.sort(), [...trendStats].sort(), 'same trend stats everywhere');
  }
  const dashboard = readFileSync(path.join(ROOT, 'observability/grafana/dashboards/k6.json'), 'utf8');
  const names = new Set(dashboard.match(/k6_[a-z0-9_]+/g) ?? []);
  t.ok(names.size > 0, 'the k6 dashboard queries k6 series');
  const fixed = new Set(['k6_vus', 'k6_vus_max', 'k6_http_reqs_total', 'k6_iterations_total', 'k6_http_req_failed_rate', 'k6_checks_rate', 'k6_data_sent_total', 'k6_data_received_total']);
  for (const n of names) {
    const trend = /^k6_(http_req_duration|iteration_duration|http_req_waiting)_(\w+)$/.exec(n);
    if (trend) t.ok(trendStats.has(trend[2]!), `${n}: stat ${trend[2]} is in K6_PROMETHEUS_RW_TREND_STATS`);
    else t.ok(fixed.has(n), `${n} is a series k6 writes`);
  }
  t.match(dashboard, /testid/, 'the dashboard selects runs by testid');
});

t.test('progressive CLI: flags, env fallbacks, runner choice', async (t) => {
  const o = parseProgressiveArgs(['--api-key', 'k', '--duration', '10s', '--scale', '0.2'], {}, false);
  t.match(o, { apiKey: 'k', runner: 'node', duration: '10s', scale: 0.2, baseUrl: 'http://127.0.0.1:3000', webhookUrl: 'http://127.0.0.1:8099/hooks', remoteWrite: undefined });
  const e = parseProgressiveArgs([], { API_KEY: 'e', BASE_URL: 'http://api:3000', K6_PROMETHEUS_RW_SERVER_URL: 'http://prometheus:9090/api/v1/write' }, true);
  t.match(e, { apiKey: 'e', runner: 'k6', baseUrl: 'http://api:3000', remoteWrite: 'http://prometheus:9090/api/v1/write' });
  t.equal(parseProgressiveArgs(['--help'], {}, true), 'help');
  t.throws(() => parseProgressiveArgs([], {}, true), /--api-key \(or API_KEY\) is required/);
  t.throws(() => parseProgressiveArgs(['--api-key', 'k', '--runner', 'jmeter'], {}, true), /--runner must be k6 or node/);
  t.throws(() => parseProgressiveArgs(['--api-key', 'k', '--scale', '0'], {}, true), /--scale must be a number > 0/);
  t.throws(() => parseProgressiveArgs(['--api-key', 'k', '--scale', 'half'], {}, true), /--scale must be a number > 0, got "half"/);
  t.throws(() => parseProgressiveArgs(['--api-key', 'k', '--duration', 'long'], {}, true), /--duration: invalid duration "long"/);
  t.throws(() => parseProgressiveArgs(['--api-key', 'k', '--remote-write', 'prometheus:9090'], {}, true), /--remote-write must be an http\(s\) URL/);
  t.throws(() => parseProgressiveArgs(['--api-key', 'k', '--vus', '10'], {}, true), { name: 'UsageError', message: /Unknown option '--vus'[\s\S]*usage: npm run loadtest:progressive/ });
});
