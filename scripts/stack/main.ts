/**
 * `npm run stack` / `npm run demo`: the whole stack natively on loopback. Process output goes to log files
 * (paths printed); the terminal shows the URLs and keys, then a compact status line every few seconds
 * (scripts/stack/status.ts) and each Slack message as it arrives. Ctrl-C stops everything.
 */
import path from 'node:path';
import { existsSync, readFileSync } from 'node:fs';
import { DEFAULT_PORTS, startStack, type Stack } from './stack';
import { formatSlackMessage } from './slack-receiver';
import { formatStatus, loadedRecordingRules, readStatus, signalQueries } from './status';
import { repoPath } from '../lib/repo-root';
import { describeExit, startProcess } from '../lib/process';
import { every } from '../lib/wait';
import { durationFlag, integerIn, parseFlags, UsageError } from '../lib/cli';

const USAGE = `usage: npm run stack -- [--workers N] [--drill] [--redis-cluster] [--slack-url-file FILE] [--status-every 5s] [--log-dir DIR]
       npm run demo  -- [--scenario light] [--faults-after 30s] [same flags]
  --demo             run the load demo: a load-test scenario, payments faults injected part-way (implies --drill)
  --scenario NAME    the demo's scenario of loadtest/scenarios.json (default light)
  --faults-after D   when the demo injects faults (default 30s)
  --drill            short alert for: and rate windows, 1 s scrapes, fast grouping: alerts within seconds
  --workers N        worker processes, 1 to 16 (default 2; metrics ports 9465, 9466, …)
  --redis-cluster    a local Redis Cluster (3 masters + 3 replicas, free ports) instead of one Redis on 6380
  --slack-url-file F send alerts to the real Slack webhook whose URL is in F instead of the local receiver
  --status-every D   status line interval (default 5s)
  --log-dir DIR      where each process's log file goes (default .stack/logs)
exit code: 0 stopped with Ctrl-C, 1 the stack failed, 2 usage error`;

export interface StackCliOptions {
  demo: boolean;
  drill: boolean;
  workers: number;
  redisCluster: boolean;
  scenario: string;
  faultsAfterMs: number;
  slackUrlFile?: string;
  statusEveryMs: number;
  logDir: string;
  help: boolean;
}


export function parseStackArgs(argv: string[]): StackCliOptions {
  const flags = parseFlags(
    argv,
    {
      demo: { type: 'boolean' },
      drill: { type: 'boolean' },
      workers: { type: 'string' },
      'redis-cluster': { type: 'boolean' },
      scenario: { type: 'string' },
      'faults-after': { type: 'string' },
      'slack-url-file': { type: 'string' },
      'status-every': { type: 'string' },
      'log-dir': { type: 'string' },
      help: { type: 'boolean' },
    },
    USAGE,
  );
  const demo = flags.demo === true;
  const scenario = flags.scenario ?? 'light';
  const known = scenarioNames();
  if (!known.includes(scenario)) throw new UsageError(`--scenario must be one of ${known.join(', ')}, got "${scenario}"`, USAGE);
  if (!demo && (flags.scenario !== undefined || flags['faults-after'] !== undefined)) throw new UsageError('--scenario and --faults-after only apply with --demo', USAGE);
  const slackUrlFile = flags['slack-url-file'];
  if (slackUrlFile !== undefined && !existsSync(slackUrlFile)) throw new UsageError(`--slack-url-file: no such file "${slackUrlFile}"`, USAGE);
  return {
    demo,
    // The demo uses drill timings so its alerts fire (and resolve) while you watch.
    drill: flags.drill === true || demo,
    workers: integerIn('workers', flags.workers, 1, 16, USAGE) ?? 2,
    redisCluster: flags['redis-cluster'] === true,
    scenario,
    faultsAfterMs: durationFlag('faults-after', flags['faults-after'] ?? '30s', USAGE, 0)!,
    slackUrlFile: slackUrlFile === undefined ? undefined : path.resolve(slackUrlFile),
    statusEveryMs: durationFlag('status-every', flags['status-every'] ?? '5s', USAGE, 1_000)!,
    logDir: path.resolve(flags['log-dir'] ?? repoPath('.stack/logs')),
    help: flags.help === true,
  };
}

/** The scenarios the demo can run: read from the load test's data file (the load test itself runs as its own process). */
function scenarioNames(): string[] {
  return Object.keys((JSON.parse(readFileSync(repoPath('loadtest', 'scenarios.json'), 'utf8')) as { scenarios: Record<string, unknown> }).scenarios);
}

const say = (text: string) => process.stdout.write(`${text}\n`);

function banner(stack: Stack): string {
  const urls = Object.entries(stack.urls).map(([k, v]) => `  ${k.padEnd(16)} ${v}`);
  const logs = Object.entries(stack.logs).map(([k, v]) => `  ${k.padEnd(16)} ${v}`);
  return [
    'stack ready:',
    ...urls,
    `  API key          ${stack.apiKey}   (API_KEYS: jobs and queue reads)`,
    `  admin key        ${stack.adminKey}   (ADMIN_API_KEYS: /v1/admin/*, fault injection is on)`,
    `  console          ${stack.urls.api}/admin/queues   (log in as user "admin", password = the admin key)`,
    '',
    ...(stack.redisNodes ? ['Redis Cluster nodes:', ...stack.redisNodes.map((n) => `  ${n}`), ''] : []),
    'process logs:',
    ...logs,
    '',
    `try: curl -s -X POST ${stack.urls.api}/v1/queues/payments/jobs -H "Authorization: Bearer ${stack.apiKey}" \\`,
    `       -H "Idempotency-Key: $(cat /proc/sys/kernel/random/uuid)" -H 'Content-Type: application/json' \\`,
    `       -d '{"data":{"amount":100,"currency":"EUR","account":"a"}}'`,
    `     curl -s -X PUT ${stack.urls.api}/v1/admin/faults/payments -H "Authorization: Bearer ${stack.adminKey}" \\`,
    `       -H 'Content-Type: application/json' -d '{"failureRate":0.5}'`,
    'Grafana and Jaeger cannot run natively here: use `docker compose up` for them (docs/compose.md).',
    'Ctrl-C stops everything.',
    '',
  ].join('\n');
}

async function setFaults(stack: Stack, queue: string, faults: Record<string, number>): Promise<string> {
  const res = await fetch(`${stack.urls.api}/v1/admin/faults/${queue}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${stack.adminKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(faults),
  });
  return res.ok ? 'accepted' : `refused: ${res.status} ${await res.text()}`;
}

async function demo(stack: Stack, o: StackCliOptions): Promise<void> {
  say(`demo: load scenario "${o.scenario}"; payments faults in ${o.faultsAfterMs / 1000} s — watch the status line and the Slack messages\n`);
  const faults = setTimeout(() => {
    setFaults(stack, 'payments', { failureRate: 0.5, rateLimitRate: 0.05, latencyMs: 150 }).then(
      (r) => say(`demo: payments faults (50 % failures, 5 % 429s, +150 ms) with the admin key: ${r}`),
      (err: Error) => say(`demo: could not inject faults: ${err.message}`),
    );
  }, o.faultsAfterMs);
  try {
    // `npm run loadtest` as a user runs it (built to dist/ like this script); its report is printed when it ends.
    const lines: string[] = [];
    const load = await startProcess({
      name: 'loadtest',
      command: process.execPath,
      args: [repoPath('dist', 'loadtest', 'run.js'), '--quiet', '--scenario', o.scenario, '--base-url', stack.urls.api!, '--api-key', stack.apiKey, '--webhook-url', stack.urls.receiver!],
      onLine: (line) => void lines.push(line),
    });
    const status = await load.exited;
    // Exit 1 is a report with a crossed threshold; anything else is a load test that could not run.
    say(`\n${lines.join('\n')}${status.code === 0 || status.code === 1 ? '' : `\ndemo: the load test failed (${describeExit(status)})`}`);
  } finally {
    clearTimeout(faults);
  }
  say(`demo: clearing the payments faults: ${await setFaults(stack, 'payments', { failureRate: 0, rateLimitRate: 0, latencyMs: 0 })} — the alerts resolve within a minute`);
  say('the stack keeps running; Ctrl-C stops it.\n');
}

async function main(o: StackCliOptions): Promise<void> {
  const ports = { ...DEFAULT_PORTS, workerMetrics: Array.from({ length: o.workers }, (_, i) => 9465 + i) };
  const redis = o.redisCluster ? 'a 6-node Redis Cluster' : 'redis';
  say(`starting the stack (${redis}, redis_exporter, prometheus, alertmanager, api, ${o.workers} workers, webhook receiver); logs in ${o.logDir}`);
  const stack = await startStack({
    ports,
    workers: o.workers,
    redisCluster: o.redisCluster,
    drill: o.drill,
    slackUrlFile: o.slackUrlFile,
    logDir: o.logDir,
    onSlackMessage: (msg) => say(formatSlackMessage(msg)),
  });
  say(`\n${banner(stack)}`);

  let stopping = false;
  // A process that ends while the stack runs is reported with its log (the others keep running: a stopped
  // worker is itself something the alerts should show).
  for (const [name, proc] of Object.entries(stack.processes)) {
    void proc.exited.then((s) => {
      if (!stopping) say(`!! ${name} exited (${describeExit(s)}); its log: ${stack.logs[name]}`);
    });
  }
  const queries = signalQueries(await loadedRecordingRules(stack.urls.prometheus!));
  const status = every(o.statusEveryMs, async () => {
    // Ctrl-C reaches the whole process group: Prometheus may already be going down.
    if (stopping) return;
    try {
      say(formatStatus(await readStatus(stack.urls.prometheus!, queries)));
    } catch (err) {
      say(`status unavailable: ${(err as Error).message}`);
    }
  });
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    say('\nstopping the stack…');
    await status.stop();
    await stack.stop();
    say(`stopped; process logs kept in ${o.logDir}`);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());

  if (o.demo) await demo(stack, o);
}

if (require.main === module) {
  let options: StackCliOptions;
  try {
    options = parseStackArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  }
  if (options.help) {
    say(USAGE);
    process.exit(0);
  }
  main(options).catch((err: Error) => {
    process.stderr.write(`stack failed: ${err.message}\n`);
    process.exit(1);
  });
}
