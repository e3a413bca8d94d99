/**
 * The native stack's CLI pieces without starting it: argument checking (scripts/stack/main.ts), the status line
 * (scripts/stack/status.ts) and the compact Slack messages (scripts/stack/slack-receiver.ts). The live stack test
 * (test/live/stack.test.ts) reads the status from a real Prometheus.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { parseStackArgs } from '../../scripts/stack/main';
import { formatStatus, signalQueries, SIGNALS } from '../../scripts/stack/status';
import { formatSlackMessage, startSlackReceiver } from '../../scripts/stack/slack-receiver';
import { ROOT } from '../helpers/services';

t.test('stack CLI: defaults, the demo implies drill timings, bad values are usage errors', async (t) => {
  const d = parseStackArgs([]);
  t.match(d, { demo: false, drill: false, workers: 2, scenario: 'light', faultsAfterMs: 30_000, statusEveryMs: 5_000, logDir: path.join(ROOT, '.stack', 'logs') });
  t.match(parseStackArgs(['--demo', '--workers', '3', '--scenario', 'smoke', '--faults-after', '10s']), { demo: true, drill: true, workers: 3, scenario: 'smoke', faultsAfterMs: 10_000 });
  t.equal(parseStackArgs(['--status-every=2s']).statusEveryMs, 2_000);
  t.equal(d.redisCluster, false, 'one Redis by default');
  t.equal(parseStackArgs(['--redis-cluster']).redisCluster, true, '--redis-cluster: a local Redis Cluster');
  const bad: [string[], RegExp][] = [
    [['--workers', 'x'], /--workers must be a whole number from 1 to 16, got "x"/],
    [['--workers', '0'], /--workers must be a whole number from 1 to 16, got "0"/],
    [['--workers', '2.5'], /--workers must be a whole number/],
    [['--workers'], /Option '--workers <value>' argument missing/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['--demo', '--scenario', 'huge'], /--scenario must be one of smoke, light/],
    [['--scenario', 'smoke'], /only apply with --demo/],
    [['--status-every', '100ms'], /--status-every must be at least 1s/],
    [['--demo', '--faults-after', 'soon'], /--faults-after: invalid duration "soon"/],
    [['--slack-url-file', '/nonexistent/slack-url'], /--slack-url-file: no such file/],
  ];
  for (const [argv, re] of bad) t.throws(() => parseStackArgs(argv), { name: 'UsageError', message: re }, argv.join(' '));
});

t.test('stack CLI process: a bad value prints the error and the usage and exits 2, before starting anything', async (t) => {
  const res = spawnSync(process.execPath, ['dist/scripts/stack/main.js', '--workers', 'x'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  t.equal(res.status, 2);
  t.match(res.stderr, /--workers must be a whole number from 1 to 16, got "x"/);
  t.match(res.stderr, /usage: npm run stack/);
  t.notMatch(res.stdout, /starting the stack/);
});

t.test('status: recording rules when Prometheus has them, raw PromQL otherwise', async (t) => {
  const all = new Set(Object.values(SIGNALS).map((s) => s.recorded));
  const q = signalQueries(all);
  t.equal(q.requestsPerSecond, 'sum(route:http_requests:rate5m)');
  t.equal(q.depth, 'queue:bullmq_queue_depth:max');
  t.equal(q.failingRatio, 'queue:bullmq_job_error_ratio:rate5m');
  const none = signalQueries(new Set());
  t.match(none.requestsPerSecond, /rate\(http_request_duration_seconds_count\{job="api"\}/);
  t.match(none.depth, /bullmq_queue_jobs\{state=~"waiting\|prioritized"\}/);
  t.match(none.failingRatio, /bullmq_jobs_failed_total/);
});

t.test('status: the recording rules it names exist in the shipped rules file', async (t) => {
  const { readFileSync } = await import('node:fs');
  const rules = readFileSync(path.join(ROOT, 'observability/prometheus/rules/bullmq.rules.yml'), 'utf8');
  for (const s of Object.values(SIGNALS)) t.match(rules, new RegExp(`record: ${s.recorded.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`), s.recorded);
});

t.test('status line: rate, depth and failing % per queue, firing alerts; "-" where there is no data', async (t) => {
  const line = formatStatus({
    at: new Date('2026-01-01T12:00:05Z'),
    requestsPerSecond: 41.234,
    queues: [
      { queue: 'payments', depth: 3, failingRatio: 0.48 },
      { queue: 'notifications', depth: 0, failingRatio: 0 },
      { queue: 'webhooks' },
    ],
    firing: [{ alertname: 'BullMQJobErrorRateHigh', queue: 'payments', severity: 'warning' }, { alertname: 'TargetDown', instance: '127.0.0.1:9465', severity: 'critical' }],
  });
  t.equal(
    line,
    '12:00:05  api 41.2 req/s | payments depth 3 failing 48.0% | notifications depth 0 failing 0.0% | webhooks depth - failing - | ' +
      'firing: BullMQJobErrorRateHigh(payments, warning) TargetDown(127.0.0.1:9465, critical)',
  );
  t.match(formatStatus({ at: new Date(), queues: [], firing: [] }), /api - req\/s \| no alerts firing$/);
});

const firing = {
  channel: '#alerts-critical',
  attachments: [
    {
      title: '[FIRING:1] BullMQJobErrorRateHigh — queue payments (critical)',
      text:
        '*Firing*\n• *payments jobs are failing* (queue `payments`)\n  52.3% of payments jobs failed over 30s, above the critical threshold of 20%.\n' +
        '  <https://example.com/runbooks#bullmqjoberrorratehigh|Runbook> · <http://grafana/d/bullmq-queues|Dashboard>\n',
    },
  ],
  receivedAt: 0,
};

t.test('Slack messages print compactly: channel and title, then summary and description without link lines', async (t) => {
  t.equal(
    formatSlackMessage(firing),
    [
      'slack #alerts-critical  [FIRING:1] BullMQJobErrorRateHigh — queue payments (critical)',
      '    • payments jobs are failing (queue payments)',
      '    52.3% of payments jobs failed over 30s, above the critical threshold of 20%.',
    ].join('\n'),
  );
  const many = { ...firing, attachments: [{ title: 't', text: Array.from({ length: 10 }, (_, i) => `line ${i}`).join('\n') }] };
  t.match(formatSlackMessage(many, 3), /line 2\n {4}… 7 more lines$/);
});

t.test('Slack receiver: keeps each message, hands it over as it arrives, refuses bad JSON', async (t) => {
  const seen: string[] = [];
  const slack = await startSlackReceiver(0, '127.0.0.1', (m) => seen.push(formatSlackMessage(m)));
  t.teardown(() => slack.close());
  const ok = await fetch(slack.url, { method: 'POST', body: JSON.stringify(firing) });
  t.equal(ok.status, 200);
  t.equal(slack.messages.length, 1);
  t.match(seen[0], /^slack #alerts-critical {2}\[FIRING:1\] BullMQJobErrorRateHigh/);
  const bad = await fetch(slack.url, { method: 'POST', body: '{not json' });
  t.equal(bad.status, 400);
  t.equal(slack.messages.length, 1, 'a bad payload is not kept');
});
