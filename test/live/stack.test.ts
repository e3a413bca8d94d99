/**
 * Live checks against the native stack (real redis-server, Prometheus, Alertmanager, redis_exporter, API, two
 * workers), in drill mode (1 s scrapes, `for: 0s`, 30 s rate windows, fast Alertmanager grouping):
 * 1. after a short load with injected latency, failures and 429s, every query of every panel of every dashboard
 *    (but k6's) returns at least one series;
 * 2. alert drill: payments failure rate 50 % → BullMQJobErrorRateHigh{queue="payments"} and the SLO page
 *    BullMQSLOErrorBudgetBurn{queue="payments",severity="critical"} (drill SLO windows: seconds, not hours) reach the
 *    Slack-compatible receiver with labels, burn rate, budget left and runbook link; back to 0 → the resolved
 *    messages; a stopped worker → TargetDown;
 * 3. the live status line (requests/s, depth and failing % per queue, firing alerts) reads that Prometheus, and every
 *    process writes its output to its own log file;
 * 4. an evicting maxmemory-policy set at runtime → RedisEvictionPolicyUnsafe (the exporter's label is right).
 */
import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { startStack, type Stack } from '../../scripts/stack/stack';
import { runLoad } from '../../loadtest/run';
import { loadThresholds } from '../../services/common/thresholds';
import { leMatcher } from '../../observability/generate/slo';
import { REPO_ROOT } from '../../scripts/lib/repo-root';
import { waitFor } from '../helpers/wait';
import { formatStatus, loadedRecordingRules, readStatus, signalQueries, SIGNALS } from '../../scripts/stack/status';

// About 2.5 minutes alone (two timed loads, alert round trips); more on a loaded CI box than .taprc's 240 s allows.
t.setTimeout(480_000);

let stack: Stack;

t.before(async () => {
  stack = await startStack({ drill: true, env: { WORKER_TIMEOUT_MS_NOTIFICATIONS: '200' } });
});
t.teardown(() => stack?.stop());

/** Fault settings go through the admin API with the stack's admin key (ADMIN_API_KEYS; FAULTS_ENABLED=true). */
async function setFaults(queue: string, faults: Record<string, number>) {
  const res = await fetch(`${stack.urls.api}/v1/admin/faults/${queue}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${stack.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  // A refused setting would make every check below meaningless: fail here, with the API's answer.
  if (!res.ok) throw new Error(`PUT /v1/admin/faults/${queue}: ${res.status} ${await res.text()}`);
  return res.json() as Promise<any>;
}

async function query(expr: string): Promise<unknown[]> {
  const res = await fetch(`${stack.urls.prometheus}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; data: { result: unknown[] }; error?: string };
  if (body.status !== 'success') throw new Error(`${expr}: ${body.error}`);
  return body.data.result;
}

t.test('every dashboard panel query returns data from the live Prometheus', async (t) => {
  await setFaults('payments', { failureRate: 0.3, rateLimitRate: 0.2, latencyMs: 30 });
  await setFaults('notifications', { timeoutRate: 0.1 });
  const report = await runLoad({ scenario: 'smoke', baseUrl: stack.urls.api!, apiKey: stack.apiKey, webhookUrl: stack.urls.receiver!, duration: '20s', quiet: true });
  t.ok(report.queues.every((q) => q.requests > 0), 'load reached every queue');
  await setFaults('payments', { failureRate: 0, rateLimitRate: 0, latencyMs: 0 });
  await setFaults('notifications', { timeoutRate: 0 });

  const dir = path.join(REPO_ROOT, 'observability/grafana/dashboards');
  const empty: string[] = [];
  let checked = 0;
  // Recording rules and rates need a few evaluations: poll until every query has data (bounded).
  await waitFor(
    async () => {
      empty.length = 0;
      checked = 0;
      for (const file of readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'k6.json')) {
        const d = JSON.parse(readFileSync(path.join(dir, file), 'utf8'));
        // Rows are section headings, without queries.
        for (const p of d.panels) {
          for (const target of p.targets ?? []) {
            const expr = String(target.expr).replace(/\$queue/g, '.+');
            checked++;
            if ((await query(expr)).length === 0) empty.push(`${file} / ${p.title}: ${expr}`);
          }
        }
      }
      return empty.length === 0;
    },
    { timeoutMs: 60_000, intervalMs: 3_000, what: 'every panel query to return data' },
  ).catch(() => undefined);
  t.same(empty, [], `all ${checked} panel queries return at least one series`);
});

t.test('each SLO latency bound is a bucket boundary of the live bullmq_job_e2e_seconds', async (t) => {
  for (const [queue, s] of Object.entries(loadThresholds().slo.queues)) {
    const series = await query(`bullmq_job_e2e_seconds_bucket{queue="${queue}",${leMatcher(s.latency_bound_seconds)}}`);
    t.ok(series.length > 0, `${queue}: a bucket le="${s.latency_bound_seconds}" is exported`);
  }
});

t.test('live status line reads the stack Prometheus through the recording rules; process output is in log files', async (t) => {
  const queries = signalQueries(await loadedRecordingRules(stack.urls.prometheus!));
  t.same(queries, signalQueries(new Set(Object.values(SIGNALS).map((s) => s.recorded))), 'the drill rules have every recording rule the status uses');
  // Under load every queue has a depth and a failing ratio (finished jobs in the window), the API a request rate.
  const load = runLoad({ scenario: 'smoke', baseUrl: stack.urls.api!, apiKey: stack.apiKey, webhookUrl: stack.urls.receiver!, duration: '15s', quiet: true });
  const status = await waitFor(
    async () => {
      const s = await readStatus(stack.urls.prometheus!, queries);
      return s.requestsPerSecond !== undefined && s.queues.every((q) => q.depth !== undefined && q.failingRatio !== undefined) ? s : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 1_000, what: 'a status with every signal' },
  );
  await load;
  t.ok(status.requestsPerSecond! > 0, `API requests/s from the recording rule: ${status.requestsPerSecond}`);
  t.same(status.queues.map((q) => q.queue), ['payments', 'notifications', 'webhooks']);
  t.match(formatStatus(status), /^\d\d:\d\d:\d\d {2}api [\d.]+ req\/s \| payments depth \d+ failing [\d.]+% \| notifications depth \d+ failing [\d.]+% \| webhooks depth \d+ failing [\d.]+% \| /);
  const names = ['redis', 'redis_exporter', 'alertmanager', 'receiver', 'api', 'worker-1', 'worker-2', 'prometheus'];
  t.same(Object.keys(stack.logs).sort(), names.sort(), 'one log file per process');
  t.match(readFileSync(stack.logs.api!, 'utf8'), /"msg":"api listening"/, 'the API log has its startup line');
  t.match(readFileSync(stack.logs.prometheus!, 'utf8'), /Server is ready to receive web requests/, 'the Prometheus log too');
});

t.test('the console the stack prints is served to the admin key (Basic, as a browser logs in) and to no one else', async (t) => {
  const url = `${stack.urls.api}/admin/queues`;
  const basic = (password: string) => `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
  const page = await fetch(url, { headers: { authorization: basic(stack.adminKey) } });
  t.equal(page.status, 200, 'admin:<admin key> opens the console');
  t.match(await page.text(), /<html/i, 'its page');
  t.equal((await fetch(url)).status, 401, 'no credentials → 401');
  t.equal((await fetch(url, { headers: { authorization: `Bearer ${stack.apiKey}` } })).status, 403, 'the client key → 403');
});

t.test('dashboard variables have values; exemplars carry the trace id label Grafana links to Jaeger', async (t) => {
  const dir = path.join(REPO_ROOT, 'observability/grafana/dashboards');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'k6.json')) {
    // The SDK leaves `templating.list` out of a dashboard without variables (the SLO one).
    for (const v of JSON.parse(readFileSync(path.join(dir, file), 'utf8')).templating.list ?? []) {
      const m = /^label_values\((\w+), (\w+)\)$/.exec(v.definition);
      t.ok(m, `${file} $${v.name}: a label_values() query`);
      const res = await fetch(`${stack.urls.prometheus}/api/v1/label/${m![2]}/values?match[]=${encodeURIComponent(m![1]!)}`);
      const values = ((await res.json()) as { data: string[] }).data;
      t.ok(values.length > 0, `${file} $${v.name} has values (${values.join(', ')})`);
    }
  }
  const ds = YAML.parse(readFileSync(path.join(REPO_ROOT, 'observability/grafana/provisioning/datasources/datasources.yml'), 'utf8'));
  const label: string = ds.datasources.find((d: { uid: string }) => d.uid === 'prometheus').jsonData.exemplarTraceIdDestinations[0].name;
  const end = Date.now() / 1000;
  for (const metric of ['bullmq_job_wait_seconds_bucket', 'bullmq_job_processing_seconds_bucket', 'bullmq_job_e2e_seconds_bucket', 'http_request_duration_seconds_bucket']) {
    const res = await fetch(`${stack.urls.prometheus}/api/v1/query_exemplars?query=${metric}&start=${end - 600}&end=${end}`);
    const series = ((await res.json()) as { data: { exemplars: { labels: Record<string, string> }[] }[] }).data;
    const ids = series.flatMap((x) => x.exemplars.map((e) => e.labels[label])).filter(Boolean);
    t.ok(ids.length > 0 && ids.every((id) => /^[0-9a-f]{32}$/.test(id!)), `${metric}: ${ids.length} exemplars with a ${label} label`);
  }
});

t.test('alert drill: error rate → Slack, resolved → Slack; stopped worker → TargetDown', async (t) => {
  const slack = stack.slack!;
  const titles = () => slack.messages.flatMap((m) => (m.attachments ?? []).map((a) => `${a.title}\n${a.text}`));
  // The first test's injected failures burn payments' budget too: start once that page has resolved in
  // Prometheus, and count only SLO messages that arrive from then on.
  await waitFor(async () => (await query('ALERTS{alertname="BullMQSLOErrorBudgetBurn",queue="payments"}')).length === 0, {
    timeoutMs: 90_000,
    intervalMs: 1_000,
    what: 'no SLO burn alert for payments before the drill',
  });
  const sloMessage = (re: RegExp, after: number) =>
    slack.messages
      .filter((m) => m.receivedAt > after)
      .flatMap((m) => (m.attachments ?? []).map((a) => ({ text: `${a.title}\n${a.text}`, at: m.receivedAt })))
      .find((x) => re.test(x.text));
  const drillStart = Date.now();
  await setFaults('payments', { failureRate: 0.5 });
  const load = runLoad({ scenario: 'smoke', baseUrl: stack.urls.api!, apiKey: stack.apiKey, webhookUrl: stack.urls.receiver!, duration: '40s', quiet: true });
  const firing = await waitFor(() => titles().find((x) => /^\[FIRING:\d+\] BullMQJobErrorRateHigh — queue payments/.test(x)), {
    timeoutMs: 60_000,
    intervalMs: 500,
    what: 'BullMQJobErrorRateHigh firing message',
  });
  t.match(firing, /\((warning|critical)\)/, 'severity in the title');
  t.match(firing, /#bullmqjoberrorratehigh/, 'runbook link');
  t.match(firing, /\/d\/bullmq-queues/, 'dashboard link');
  t.match(firing, /\d+(\.\d+)?% of payments jobs failed over 30s, above its (warning|critical) threshold of \d/, 'description with the value, the drill window and only payments\' threshold');
  // The error-budget page: 50 % failures burn payments' 0.1 % budget ~500x, over both drill page windows.
  const pageMessage = await waitFor(() => sloMessage(/^\[FIRING:\d+\] BullMQSLOErrorBudgetBurn — queue payments \(critical\)/, drillStart), {
    timeoutMs: 60_000,
    intervalMs: 500,
    what: 'BullMQSLOErrorBudgetBurn page for payments',
  });
  const page = pageMessage.text;
  t.match(page, /over (30s and 10s|1m and 20s)/, 'long and short windows (drill) in the message');
  t.match(page, /spends its error budget \d+(\.\d)?x as fast as the SLO allows/, 'burn rate');
  t.match(page, /Error budget left over 5m: -?\d+(\.\d+)?%/, 'budget left');
  t.match(page, /#bullmqsloerrorbudgetburn\|Runbook/, 'runbook link');
  t.match(page, /\/d\/bullmq-slo\|Dashboard/, 'SLO dashboard link');
  await load;
  await setFaults('payments', { failureRate: 0 });
  // Successful traffic so the ratio falls below the threshold.
  const recovery = runLoad({ scenario: 'smoke', baseUrl: stack.urls.api!, apiKey: stack.apiKey, webhookUrl: stack.urls.receiver!, duration: '45s', quiet: true });
  const resolved = await waitFor(() => titles().find((x) => /^\[RESOLVED\] BullMQJobErrorRateHigh — queue payments/.test(x)), {
    timeoutMs: 90_000,
    intervalMs: 500,
    what: 'BullMQJobErrorRateHigh resolved message',
  });
  t.match(resolved, /\*Resolved\*\n• \*Resolved:\* Jobs failing in payments/, 'says resolved');
  t.match(resolved, /value at the last evaluation: \d+(\.\d+)?%/, 'with the value');
  const pageResolved = await waitFor(() => sloMessage(/^\[RESOLVED\] BullMQSLOErrorBudgetBurn — queue payments \(critical\)/, pageMessage.at)?.text, {
    timeoutMs: 90_000,
    intervalMs: 500,
    what: 'BullMQSLOErrorBudgetBurn page resolved',
  });
  t.match(pageResolved, /burn rate at the last evaluation: \d+(\.\d+)?x; budget left: -?\d+(\.\d+)?%/, 'resolved page shows the burn rate and budget left');
  await recovery;

  t.same(titles().filter((x) => /TargetDown|BullMQNoWorkers/.test(x)), [], 'no target was reported down while everything ran (startup included)');
  // Only messages sent after the stop count (a TargetDown from earlier would prove nothing).
  const stoppedAt = Date.now();
  await stack.stopWorker(0);
  const after = () => slack.messages.filter((m) => m.receivedAt >= stoppedAt).flatMap((m) => (m.attachments ?? []).map((a) => `${a.title}\n${a.text}`));
  const down = await waitFor(() => after().find((x) => /^\[FIRING:\d+\] TargetDown/.test(x) && x.includes(`127.0.0.1:${stack.ports.workerMetrics[0]}`)), {
    timeoutMs: 60_000,
    intervalMs: 500,
    what: 'TargetDown for the stopped worker',
  });
  t.match(down, /FIRING/);
  const status = await readStatus(stack.urls.prometheus!, signalQueries(await loadedRecordingRules(stack.urls.prometheus!)));
  t.ok(status.firing.some((a) => a.alertname === 'TargetDown' && a.instance === `127.0.0.1:${stack.ports.workerMetrics[0]}`), 'the status line lists TargetDown as firing');
});

t.test('unsafe eviction policy → RedisEvictionPolicyUnsafe reaches Slack and /readyz says why', async (t) => {
  const { Redis } = await import('ioredis');
  const redis = new Redis({ port: stack.ports.redis, host: '127.0.0.1', lazyConnect: true });
  await redis.connect();
  t.teardown(async () => {
    await redis.config('SET', 'maxmemory-policy', 'noeviction');
    redis.disconnect();
  });
  await redis.config('SET', 'maxmemory-policy', 'allkeys-lru');
  const texts = () => stack.slack!.messages.flatMap((m) => (m.attachments ?? []).map((a) => `${a.title}\n${a.text}`));
  const msg = await waitFor(() => texts().find((x) => /^\[FIRING:1\] RedisEvictionPolicyUnsafe \(critical\)/.test(x)), {
    timeoutMs: 30_000,
    intervalMs: 500,
    what: 'RedisEvictionPolicyUnsafe firing message',
  });
  t.match(msg, /maxmemory-policy allkeys-lru/, 'the exporter label names the policy');
  t.match(msg, /#redisevictionpolicyunsafe\|Runbook/, 'runbook link');
  const ready = await fetch(`${stack.urls.api}/readyz`);
  t.equal(ready.status, 503, '/readyz refuses');
  t.match(await ready.text(), /REDIS_EVICTION_POLICY_UNSAFE/);
});
