/** Alertmanager config through the real amtool: valid, routes by severity, inhibition, Slack URL from a file. */
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

t.test('routes: critical → slack-critical, warning → slack-warning, grouped by alertname and queue', async (t) => {
  const route = (...labels: string[]) => amtool('config', 'routes', 'test', `--config.file=${CONFIG}`, ...labels).stdout.trim();
  t.equal(route('alertname=BullMQJobErrorRateHigh', 'queue=payments', 'severity=critical'), 'slack-critical');
  t.equal(route('alertname=BullMQJobErrorRateHigh', 'queue=payments', 'severity=warning'), 'slack-warning');
  t.equal(route('alertname=TargetDown', 'severity=critical'), 'slack-critical');
  t.equal(route('alertname=Unknown'), 'slack-warning', 'default receiver');
  const cfg = YAML.parse(readFileSync(CONFIG, 'utf8'));
  t.same(cfg.route.group_by, ['alertname', 'queue']);
  t.same(cfg.inhibit_rules, [{ source_matchers: ['severity="critical"'], target_matchers: ['severity="warning"'], equal: ['alertname', 'queue'] }]);
});

t.test('Slack: URL only from a file, resolved messages sent, templates have firing/resolved, links', async (t) => {
  const cfg = YAML.parse(readFileSync(CONFIG, 'utf8'));
  const text = readFileSync(CONFIG, 'utf8');
  t.notMatch(text, /hooks\.slack\.com/, 'no Slack URL in the repo');
  for (const r of cfg.receivers) {
    for (const s of r.slack_configs) {
      t.ok(s.api_url_file, `${r.name} reads its URL from a file`);
      t.notOk(s.api_url, `${r.name} has no literal URL`);
      t.equal(s.send_resolved, true, `${r.name} sends resolved`);
    }
  }
  const tmpl = readFileSync(path.join(REPO_ROOT, 'observability/alertmanager/templates/slack.tmpl'), 'utf8');
  for (const needle of ['*Firing*', '*Resolved*', '.Labels.queue', '.Annotations.runbook_url', '.Annotations.dashboard_url', '.Annotations.description', '.Annotations.value', '.Annotations.burn_rate']) {
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
  t.equal((await post([alert('critical', 'payments'), alert('warning', 'payments'), alert('warning', 'webhooks')])).status, 200);

  const state = async () => {
    const list = (await (await fetch(`${base}/alerts`)).json()) as { labels: Record<string, string>; status: { state: string; inhibitedBy: string[] } }[];
    return Object.fromEntries(list.map((a) => [`${a.labels.queue}/${a.labels.severity}`, a.status]));
  };
  const s = await waitFor(async () => {
    const now = await state();
    return now['payments/warning']?.state === 'suppressed' ? now : undefined;
  }, { timeoutMs: 10_000, intervalMs: 100, what: 'the payments warning to be inhibited' }).catch(() => state());
  t.equal(s['payments/warning']?.state, 'suppressed', 'payments warning inhibited by payments critical');
  t.ok(s['payments/warning']?.inhibitedBy.length, 'inhibitedBy names the critical alert');
  t.equal(s['payments/critical']?.state, 'active');
  t.equal(s['webhooks/warning']?.state, 'active', 'another queue is not inhibited');

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

  const past = new Date(Date.now() - 1000).toISOString();
  await post([alert('critical', 'payments', past)]);
  await received('resolved payments', () => texts().some((x) => x.text.startsWith('[RESOLVED] BullMQJobErrorRateHigh — queue payments (critical)')));
  const resolved = texts().find((x) => x.text.startsWith('[RESOLVED]'))!.text;
  t.match(resolved, /\*Resolved\*\n• \*Resolved:\* Jobs failing in payments \(queue `payments`\)\n\s+Back within its threshold at \d\d:\d\d:\d\d UTC; value at the last evaluation: 12%\./, 'resolved section says resolved, when, and the value');
  t.notMatch(resolved, /above its/, 'the firing description (a threshold crossed) is not repeated once resolved');
  t.match(resolved, /\|Runbook>/, 'resolved keeps the runbook link');
});
