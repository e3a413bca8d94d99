/**
 * The k6 script run under Node with stand-ins for the k6 modules it imports (k6 itself cannot be installed
 * here): init code (open(), __ENV), exported options, one iteration per queue, and handleSummary's outputs.
 * This catches wiring mistakes — a wrong path, a missing env name, a malformed request — not k6 API drift.
 */
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from '../helpers/services';
import { esmImport } from '../helpers/esm-import';

const K6_DIR = path.join(ROOT, 'loadtest', 'k6');

interface Call {
  url: string;
  body: string;
  params: { headers: Record<string, string>; tags: Record<string, string> };
}

/** Loads script.js with the given __ENV; k6/http and k6 are replaced by recorders. */
async function loadScript(env: Record<string, string>, status = 202) {
  const calls: Call[] = [];
  const checks: { tags: unknown; ok: boolean }[] = [];
  const g = globalThis as any;
  g.__ENV = env;
  // k6's execution globals: the VU number and that VU's iteration counter (advanced by iterate()).
  g.__VU = 1;
  g.__ITER = 0;
  // k6 resolves open() paths relative to the script's folder.
  g.open = (p: string) => readFileSync(path.resolve(K6_DIR, p), 'utf8');
  g.__k6stub = {
    http: {
      post: (url: string, body: string, params: Call['params']) => (calls.push({ url, body, params }), { status }),
      setResponseCallback: (cb: unknown) => (g.__k6stub.responseCallback = cb),
      expectedStatuses: (...codes: number[]) => ({ expected: codes }),
    },
    k6: {
      check: (res: unknown, sets: Record<string, (r: unknown) => boolean>, tags: unknown) => {
        const ok = Object.values(sets).every((f) => f(res));
        checks.push({ tags, ok });
        return ok;
      },
      sleep: () => undefined,
    },
  };
  const stub = (name: 'http' | 'k6', names: string[]) =>
    // Looked up at call time: the stub module is cached across loads, the recorders are not.
    `data:text/javascript,${encodeURIComponent(names.map((n) => `export const ${n} = (...a) => globalThis.__k6stub.${name}.${n}(...a);`).join(' ') + ` export default { ${names.join(', ')} };`)}`;
  let src = readFileSync(path.join(K6_DIR, 'script.js'), 'utf8');
  src = src
    .replace(`from 'k6/http'`, `from '${stub('http', ['post', 'setResponseCallback', 'expectedStatuses'])}'`)
    .replace(`from 'k6'`, `from '${stub('k6', ['check', 'sleep'])}'`)
    // options.js is an ES module for k6; the repo's package.json says CommonJS, so it goes in as a data: URL.
    .replace(`from './options.js'`, `from 'data:text/javascript;base64,${readFileSync(path.join(K6_DIR, 'options.js')).toString('base64')}'`);
  const mod = await esmImport(`data:text/javascript;base64,${Buffer.from(src + `\n// ${Math.random()}`).toString('base64')}`);
  /** One iteration as k6 runs it: the default function, then __ITER advances. */
  const iterate = (vu = 1) => {
    g.__VU = vu;
    mod.default();
    g.__ITER++;
  };
  return { mod, calls, checks, iterate, responseCallback: g.__k6stub.responseCallback };
}

t.test('init: options from the scenarios file and thresholds, testid tag, 202-only success', async (t) => {
  const { mod, responseCallback } = await loadScript({ SCENARIO: 'heavy', API_KEY: 'k', TESTID: 'heavy-7' });
  t.equal(mod.options.scenarios.heavy.executor, 'ramping-vus');
  t.equal(Math.max(...mod.options.scenarios.heavy.stages.map((s: { target: number }) => s.target)), 500);
  t.same(mod.options.tags, { testid: 'heavy-7' });
  t.same(mod.options.thresholds['http_req_failed{queue:webhooks}'], ['rate<0.05']);
  t.same(responseCallback, { expected: [202] });
  const rate = await loadScript({ SCENARIO: 'smoke', API_KEY: 'k', RATE: '300' });
  t.match(rate.mod.options.scenarios.smoke, { executor: 'constant-arrival-rate', rate: 300 });
  t.same(rate.mod.options.tags, { testid: 'smoke' }, 'testid defaults to the scenario name');
});

t.test('init refuses to run without API_KEY or with an unknown scenario', async (t) => {
  await t.rejects(loadScript({ SCENARIO: 'smoke' }), /API_KEY is required/);
  await t.rejects(loadScript({ SCENARIO: 'nope', API_KEY: 'k' }), /unknown SCENARIO "nope"/);
});

t.test('iterations: one POST per iteration to the queue it picked, bearer key, valid body, queue tags', async (t) => {
  const { calls, checks, iterate } = await loadScript({ SCENARIO: 'smoke', API_KEY: 'secret-key', BASE_URL: 'http://api:3000', WEBHOOK_TARGET_URL: 'http://webhook-receiver:8099/hooks' });
  const realRandom = Math.random;
  const draws = [0.1, 0.5, 0.9]; // payments (0–0.4), notifications (0.4–0.8), webhooks (0.8–1)
  Math.random = () => draws.shift() ?? 0;
  try {
    for (let i = 0; i < 3; i++) iterate();
  } finally {
    Math.random = realRandom;
  }
  t.same(calls.map((c) => c.url), ['http://api:3000/v1/queues/payments/jobs', 'http://api:3000/v1/queues/notifications/jobs', 'http://api:3000/v1/queues/webhooks/jobs']);
  for (const c of calls) {
    t.equal(c.params.headers.Authorization, 'Bearer secret-key');
    t.equal(c.params.headers['Content-Type'], 'application/json');
    const queue = c.url.split('/')[5]!;
    t.same(c.params.tags, { queue, name: `POST /v1/queues/${queue}/jobs` }, `${queue}: tagged by queue, one URL name`);
    t.ok(JSON.parse(c.body).data, `${queue}: body has data`);
  }
  t.equal(JSON.parse(calls[2]!.body).data.url, 'http://webhook-receiver:8099/hooks', 'webhooks go to WEBHOOK_TARGET_URL');
  t.same(checks, [{ tags: { queue: 'payments' }, ok: true }, { tags: { queue: 'notifications' }, ok: true }, { tags: { queue: 'webhooks' }, ok: true }]);
  t.match(calls[0]!.params.headers['Idempotency-Key'], /^k6-[0-9a-z]+-[0-9a-z]+-1-0$/, 'a payments request carries an Idempotency-Key');
  t.notOk('Idempotency-Key' in calls[1]!.params.headers || 'Idempotency-Key' in calls[2]!.params.headers, 'notifications and webhooks carry none');
  const failing = await loadScript({ SCENARIO: 'smoke', API_KEY: 'k' }, 500);
  failing.iterate();
  t.equal(failing.checks[0]!.ok, false, 'a non-202 fails the status check');
  t.match(failing.calls[0]!.url, /^http:\/\/127\.0\.0\.1:3000\//, 'BASE_URL defaults to the native API');
});

t.test('every payments request carries its own Idempotency-Key (across iterations and VUs)', async (t) => {
  const { calls, iterate } = await loadScript({ SCENARIO: 'smoke', API_KEY: 'k' });
  const realRandom = Math.random;
  Math.random = () => 0.1; // always payments
  try {
    for (let vu = 1; vu <= 3; vu++) for (let i = 0; i < 20; i++) iterate(vu);
  } finally {
    Math.random = realRandom;
  }
  const keys = calls.map((c) => c.params.headers['Idempotency-Key']);
  t.equal(keys.length, 60);
  t.ok(keys.every((k) => typeof k === 'string' && /^[\x21-\x7E]{1,255}$/.test(k)), 'printable ASCII, at most 255 characters (the API\'s Idempotency-Key schema)');
  t.equal(new Set(keys).size, 60, 'no key repeats');
  const other = await loadScript({ SCENARIO: 'smoke', API_KEY: 'k' });
  Math.random = () => 0.1;
  try {
    other.iterate(1);
  } finally {
    Math.random = realRandom;
  }
  t.not(other.calls[0]!.params.headers['Idempotency-Key'], keys[0], 'another run (VU 1, iteration 0 again) gets another key');
});

t.test('handleSummary: text to stdout, full JSON to RESULTS_DIR/<testid>.json', async (t) => {
  const { mod } = await loadScript({ SCENARIO: 'light', API_KEY: 'k', TESTID: 'light-3', RESULTS_DIR: '/results' });
  const data = {
    metrics: {
      http_reqs: { values: { count: 10, rate: 1 } },
      'http_req_duration{queue:payments}': { values: { med: 3, 'p(95)': 7, 'p(99)': 9 }, thresholds: { 'p(95)<500': { ok: true } } },
      'http_req_failed{queue:payments}': { values: { rate: 0, passes: 0, fails: 10 }, thresholds: { 'rate<0.05': { ok: true } } },
    },
  };
  const out = mod.handleSummary(data);
  t.same(Object.keys(out).sort(), ['/results/light-3.json', 'stdout']);
  t.same(JSON.parse(out['/results/light-3.json']), data);
  t.match(out.stdout, /payments\s+10\s+0\.0\s+3\.0\s+7\.0\s+9\.0/);
  t.match(out.stdout, /PASS/);
  const local = await loadScript({ SCENARIO: 'light', API_KEY: 'k' });
  const file = Object.keys(local.mod.handleSummary(data)).find((k) => k !== 'stdout')!;
  t.equal(file, 'loadtest-results/light.json', 'default folder loadtest-results/');
  // k6 writes handleSummary files relative to where it runs (the repository root, as the README shows it) and
  // cannot create folders: the folder must be in every fresh clone, i.e. tracked by git and not ignored.
  const dir = path.dirname(file);
  const tracked = execFileSync('git', ['ls-files', '--', dir], { cwd: ROOT, encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  t.ok(tracked.length > 0, `${dir}/ is tracked by git (${tracked.join(', ') || 'nothing'}), so a fresh clone has it`);
  t.ok(existsSync(path.join(ROOT, dir)), `${dir}/ exists in this checkout`);
  const ignored = spawnSync('git', ['check-ignore', '-q', '--', path.join(dir, 'light.json')], { cwd: ROOT }).status === 0;
  t.ok(ignored, 'the results k6 writes there stay out of git');
});
