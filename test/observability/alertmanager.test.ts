/**
 * Alertmanager config through the real amtool and a real Alertmanager: valid, routes by severity (page →
 * PagerDuty and Slack), inhibition, Slack URL and PagerDuty key from files, resolved messages that say whether
 * the alert recovered or its series vanished.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { REPO_ROOT } from '../../scripts/lib/repo-root';
import { type ManagedProcess, startProcess } from '../../scripts/lib/process';
import { freePort } from '../helpers/ports';
import { waitFor } from '../helpers/wait';
import { tool } from './tools';
import { alertmanagerConfig } from '../../scripts/stack/configs';
import { startSlackReceiver } from '../../scripts/stack/slack-receiver';

const CONFIG = path.join(REPO_ROOT, 'observability/alertmanager/alertmanager.yml');
const amtool = (...args: string[]) => tool('amtool', args);

t.test('amtool check-config accepts the config and its templates', async (t) => {
  const res = amtool('check-config', CONFIG);
  t.equal(res.status, 0, res.stdout + res.stderr);
  t.match(res.stdout, /1 templates/);
});

t.test('routes: page → PagerDuty and slack-critical, critical → slack-critical, warning → slack-warning', async (t) => {
  const route = (...labels: string[]) => amtool('config', 'routes', 'test', `--config.file=${CONFIG}`, ...labels).stdout.trim();
  t.equal(route('alertname=OutboundCircuitOpen', 'dependency=payment_provider', 'severity=page'), 'pagerduty,slack-critical', 'a page goes to PagerDuty and to Slack');
  t.equal(route('alertname=OutboundCircuitOpen', 'dependency=webhook_host', 'severity=warning'), 'slack-warning');
  t.equal(route('alertname=BullMQJobErrorRateHigh', 'queue=payments', 'severity=critical'), 'slack-critical', 'critical is not paged');
  t.equal(route('alertname=BullMQJobErrorRateHigh', 'queue=payments', 'severity=warning'), 'slack-warning');
  t.equal(route('alertname=TargetDown', 'severity=critical'), 'slack-critical');
  t.equal(route('alertname=Unknown'), 'slack-warning', 'default receiver');
  const cfg = YAML.parse(readFileSync(CONFIG, 'utf8'));
  t.same(cfg.route.group_by, ['alertname', 'queue', 'dependency']);
  t.same(cfg.inhibit_rules, [
    { source_matchers: ['severity="page"'], target_matchers: ['severity=~"critical|warning"'], equal: ['alertname', 'queue', 'dependency'] },
    { source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: ['alertname', 'queue'] },
    { source_matchers: ['alertname="BullMQQueueStuck"'], target_matchers: ['alertname="BullMQJobLatencyHigh"'], equal: ['queue'] },
  ]);
});

t.test('PagerDuty: Events API v2 routing key only from a file, resolved sent; the native stack sends none', async (t) => {
  const cfg = YAML.parse(readFileSync(CONFIG, 'utf8'));
  const pd = cfg.receivers.find((r: { name: string }) => r.name === 'pagerduty');
  t.equal(pd.pagerduty_configs.length, 1);
  t.equal(pd.pagerduty_configs[0].routing_key_file, '/run/secrets/pagerduty_routing_key', 'Events API v2 key read from the mounted secret');
  t.notOk(pd.pagerduty_configs[0].routing_key ?? pd.pagerduty_configs[0].service_key, 'no literal key');
  t.equal(pd.pagerduty_configs[0].send_resolved, true);
  const native = alertmanagerConfig('/tmp/slack_webhook_url', false);
  t.notOk(native.receivers.some((r) => r.pagerduty_configs), 'the native stack and the demo call no PagerDuty');
  t.same(native.receivers.find((r) => r.name === 'slack-critical')?.slack_configs?.[0]?.api_url_file, '/tmp/slack_webhook_url', 'pages still reach the local Slack receiver');
});

t.test('Slack: URL only from a file, resolved messages sent, templates have firing/resolved, links', async (t) => {
  const cfg = YAML.parse(readFileSync(CONFIG, 'utf8'));
  const text = readFileSync(CONFIG, 'utf8');
  t.notMatch(text, /hooks\.slack\.com/, 'no Slack URL in the repo');
  const slackReceivers = cfg.receivers.filter((r: { slack_configs?: unknown[] }) => r.slack_configs);
  t.same(slackReceivers.map((r: { name: string }) => r.name), ['slack-critical', 'slack-warning'], 'Slack for everything');
  for (const r of slackReceivers) {
    for (const s of r.slack_configs) {
      t.ok(s.api_url_file, `${r.name} reads its URL from a file`);
      t.notOk(s.api_url, `${r.name} has no literal URL`);
      t.equal(s.send_resolved, true, `${r.name} sends resolved`);
    }
  }
  const tmpl = readFileSync(path.join(REPO_ROOT, 'observability/alertmanager/templates/slack.tmpl'), 'utf8');
  for (const needle of ['*Firing*', '*Resolved*', '.Labels.queue', '.Annotations.runbook_url', '.Annotations.dashboard_url', '.Annotations.description', '.Annotations.value', '.Annotations.burn_rate', '.Annotations.series_gone', 'bullmq.pagerduty.description']) {
    t.ok(tmpl.includes(needle), `template contains ${needle}`);
  }
});

t.test('the real Alertmanager: critical inhibits the warning of the same alert and queue only; Slack gets firing then resolved', async (t) => {
  const { mkdtempSync, rmSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');

  const dir = mkdtempSync(path.join(tmpdir(), 'obs-am-'));
  const slack = await startSlackReceiver(0);
  // eslint-disable-next-line prefer-const -- assigned below, after the teardown that stops it is registered
  let am: ManagedProcess | undefined;
  t.teardown(async () => {
    // Alertmanager first: on shutdown it writes its state to the directory removed below.
    await am?.stop({ signal: 'SIGTERM' });
    await slack.close();
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(path.join(dir, 'slack_webhook_url'), slack.url);
  writeFileSync(path.join(dir, 'alertmanager.yml'), YAML.stringify(alertmanagerConfig(path.join(dir, 'slack_webhook_url'), true)));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}/api/v2`;
  am = await startProcess({
    name: 'prometheus-alertmanager',
    command: 'prometheus-alertmanager',
    args: [`--config.file=${path.join(dir, 'alertmanager.yml')}`, `--storage.path=${dir}`, `--web.listen-address=127.0.0.1:${port}`, '--cluster.listen-address='],
    // Ours, not whatever else might listen there: the status carries the config we wrote.
    ready: {
      probe: async () => {
        const res = await fetch(`${base}/status`);
        return res.ok && ((await res.json()) as { config?: { original?: string } }).config?.original?.includes('slack-critical') === true;
      },
    },
    readyTimeoutMs: 20_000,
  }).catch((err: Error) => {
    throw new Error(`prometheus-alertmanager could not start (apt-get install -y prometheus-alertmanager): ${err.message}`);
  });

  const alert = (severity: string, queue: string, endsAt?: string) => ({
    labels: { alertname: 'BullMQJobErrorRateHigh', severity, queue },
    annotations: {
      summary: `Jobs failing in ${queue}`,
      description: `12% of ${queue} jobs failed over 5m, above its ${severity} threshold of 10%.`,
      value: '12%',
      runbook_url: 'https://example.test/docs/runbooks.md#bullmqjoberrorratehigh',
      dashboard_url: 'http://127.0.0.1:3001/d/bullmq-queues',
      console_url: `http://127.0.0.1:3000/admin/queues/queue/${queue}?status=failed`,
      traces_url: `http://127.0.0.1:16686/search?service=worker&operation=process%20${queue}&tags=%7B%22error%22%3A%22true%22%7D&lookback=1h`,
    },
    ...(endsAt ? { endsAt } : {}),
  });
  const post = (alerts: unknown[]) => fetch(`${base}/alerts`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(alerts) });
  const circuit = (severity: string, dependency: string) => ({
    labels: { alertname: 'OutboundCircuitOpen', severity, dependency },
    annotations: { summary: `Circuit open for ${dependency}`, description: `1 circuit(s) of ${dependency} have been open or half-open for at least 1m.`, value: '1', runbook_url: 'https://example.test/docs/runbooks.md#outboundcircuitopen' },
  });
  const latency = (severity: string, queue: string) => ({
    labels: { alertname: 'BullMQJobLatencyHigh', severity, queue },
    annotations: { summary: `Slow jobs in ${queue}`, description: `${queue} end-to-end p95 is 58.5s, above its ${severity} threshold of 3s.`, value: '58.5s', runbook_url: 'https://example.test/docs/runbooks.md#bullmqjoblatencyhigh' },
  });
  const stuck = { labels: { alertname: 'BullMQQueueStuck', severity: 'critical', queue: 'notifications' }, annotations: { summary: 'Queue notifications is stuck', description: 'notifications has 5 jobs waiting and completed none in 10m.', runbook_url: 'https://example.test/docs/runbooks.md#bullmqqueuestuck' } };
  t.equal((await post([
    alert('critical', 'payments'), alert('warning', 'payments'), alert('warning', 'webhooks'),
    circuit('page', 'payment_provider'), circuit('warning', 'payment_provider'), circuit('warning', 'webhook_host'),
    stuck, latency('critical', 'notifications'), latency('warning', 'webhooks'),
  ])).status, 200);

  const state = async () => {
    const list = (await (await fetch(`${base}/alerts`)).json()) as { labels: Record<string, string>; status: { state: string; inhibitedBy: string[] } }[];
    return Object.fromEntries(list.map((a) => [`${a.labels.alertname === 'BullMQJobErrorRateHigh' ? '' : `${a.labels.alertname}:`}${a.labels.queue ?? a.labels.dependency}/${a.labels.severity}`, a.status]));
  };
  const s = await waitFor(async () => {
    const now = await state();
    return now['payments/warning']?.state === 'suppressed' ? now : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100, what: 'the payments warning to be inhibited' }).catch(() => state());
  t.equal(s['payments/warning']?.state, 'suppressed', 'payments warning inhibited by payments critical');
  t.ok(s['payments/warning']?.inhibitedBy.length, 'inhibitedBy names the critical alert');
  t.equal(s['payments/critical']?.state, 'active');
  t.equal(s['webhooks/warning']?.state, 'active', 'another queue is not inhibited');
  t.equal(s['OutboundCircuitOpen:payment_provider/warning']?.state, 'suppressed', 'a page silences the warning of the same alert and dependency');
  t.equal(s['OutboundCircuitOpen:payment_provider/page']?.state, 'active');
  t.equal(s['OutboundCircuitOpen:webhook_host/warning']?.state, 'active', 'another dependency is not inhibited');
  t.equal(s['BullMQJobLatencyHigh:notifications/critical']?.state, 'suppressed', 'BullMQQueueStuck takes over from the latency alert of its queue');
  t.equal(s['BullMQJobLatencyHigh:webhooks/warning']?.state, 'active', 'the latency alert of a queue that is not stuck still notifies');

  const texts = () => slack.messages.flatMap((m) => (m.attachments ?? []).map((a) => ({ channel: m.channel, text: `${a.title}\n${a.text}` })));
  const received = (what: string, f: () => boolean) =>
    waitFor(f, { timeoutMs: 20_000, intervalMs: 100, what: `Slack message: ${what}` }).catch((err: Error) => {
      throw new Error(`${err.message}; got ${JSON.stringify(texts())}`);
    });
  await received('critical payments', () => texts().some((x) => x.text.startsWith('[FIRING:1] BullMQJobErrorRateHigh — queue payments (critical)')));
  await received('warning webhooks', () => texts().some((x) => x.text.startsWith('[FIRING:1] BullMQJobErrorRateHigh — queue webhooks (warning)')));
  const critical = texts().find((x) => x.text.includes('queue payments (critical)'))!;
  t.equal(critical.channel, '#alerts-critical', 'critical routed to the critical receiver');
  t.equal(texts().find((x) => x.text.includes('queue webhooks (warning)'))!.channel, '#alerts', 'warning routed to the warning receiver');
  t.match(critical.text, /\*Firing\*\n• \*Jobs failing in payments\* \(queue `payments`\)\n\s+12% of payments jobs failed/, 'firing section, summary, queue, value');
  t.match(critical.text, /<https:\/\/example\.test\/docs\/runbooks\.md#bullmqjoberrorratehigh\|Runbook> · <http:\/\/127\.0\.0\.1:3001\/d\/bullmq-queues\|Dashboard>/, 'runbook and dashboard links');
  t.ok(critical.text.includes(' · <http://127.0.0.1:3000/admin/queues/queue/payments?status=failed|Failed jobs>'), 'a link to the queue\'s failed jobs in the console');
  t.ok(critical.text.includes(' · <http://127.0.0.1:16686/search?service=worker&operation=process%20payments&tags=%7B%22error%22%3A%22true%22%7D&lookback=1h|Failing traces>'), 'a link to its failing traces in Jaeger');
  t.notOk(texts().some((x) => x.text.includes('queue payments (warning)')), 'the inhibited warning was never sent');
  await received('the page', () => texts().some((x) => x.text.startsWith('[FIRING:1] OutboundCircuitOpen (page)')));
  t.equal(texts().find((x) => x.text.startsWith('[FIRING:1] OutboundCircuitOpen (page)'))!.channel, '#alerts-critical', 'a page is posted with the critical alerts too');

  const past = new Date(Date.now() - 1000).toISOString();
  await post([alert('critical', 'payments', past)]);
  await received('resolved payments', () => texts().some((x) => x.text.startsWith('[RESOLVED] BullMQJobErrorRateHigh — queue payments (critical)')));
  const resolved = texts().find((x) => x.text.startsWith('[RESOLVED]'))!.text;
  t.match(resolved, /\*Resolved\*\n• \*Resolved:\* Jobs failing in payments \(queue `payments`\)\n\s+Back within its threshold at \d\d:\d\d:\d\d UTC; value at the last evaluation: 12%\./, 'resolved section says resolved, when, and the value');
  t.notMatch(resolved, /above its/, 'the firing description (a threshold crossed) is not repeated once resolved');
  t.match(resolved, /\|Runbook>/, 'resolved keeps the runbook link');

  // An alert whose series vanished last fired with series_gone set: its resolved message says so, not "back within".
  const gone = { ...latency('warning', 'webhooks'), annotations: { ...latency('warning', 'webhooks').annotations, series_gone: 'No webhooks job ended in the last 5m: nothing is measured any more (no traffic, or no worker), so this ends without having recovered.' } };
  await post([gone]);
  await post([{ ...gone, endsAt: new Date(Date.now() - 1000).toISOString() }]);
  await received('gone latency resolved', () => texts().some((x) => x.text.startsWith('[RESOLVED] BullMQJobLatencyHigh — queue webhooks (warning)')));
  const ended = texts().find((x) => x.text.startsWith('[RESOLVED] BullMQJobLatencyHigh — queue webhooks (warning)'))!.text;
  t.match(ended, /Ended at \d\d:\d\d:\d\d UTC without having recovered: No webhooks job ended in the last 5m: nothing is measured any more \(no traffic, or no worker\), so this ends without having recovered\. Last value seen: 58\.5s\./, 'says the series ended, with the last value seen');
  t.notMatch(ended, /Back within its threshold/, 'never claims a recovery');
});
