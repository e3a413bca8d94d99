/**
 * The whole stack natively, with the real binaries from Debian packages: Redis (noeviction, AOF everysec),
 * redis_exporter, Prometheus (rules, remote-write receiver, exemplars), Alertmanager (Slack → a local
 * Slack-compatible receiver unless a URL file is given), the API, N workers and a webhook receiver. Processes
 * run under `concurrently` (prefixed output, Ctrl-C stops them all). `startStack()` is what live tests use.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync, copyFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import net from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { concurrently, Command } from 'concurrently';
import YAML from 'yaml';
import { loadThresholds, repoPath } from '../../observability/generate/thresholds';
import { writeDrillRules } from '../../observability/generate/main';
import { alertmanagerConfig, prometheusConfig, StackPorts } from './configs';
import { startSlackReceiver } from './slack-receiver';
import { freePort } from './ports';

export interface StackOptions {
  /** Fixed ports (the CLI); tests leave them out and get free ones. */
  ports?: StackPorts;
  workers?: number;
  /** Drill mode: short `for:` and rate windows, 1 s scrapes, fast Alertmanager grouping. */
  drill?: boolean;
  /** File holding a real Slack webhook URL; without it a local Slack-compatible receiver is used. */
  slackUrlFile?: string;
  /** Where process output goes (default: discarded). */
  output?: Writable;
  env?: Record<string, string>;
}

export interface Stack {
  ports: StackPorts;
  dir: string;
  apiKey: string;
  urls: Record<string, string>;
  slack?: Awaited<ReturnType<typeof startSlackReceiver>>;
  workerCommands: Command[];
  stopWorker(index: number): Promise<void>;
  stop(): Promise<void>;
}

export const DEFAULT_PORTS: StackPorts = {
  redis: 6380,
  redisExporter: 9121,
  prometheus: 9090,
  alertmanager: 9093,
  api: 3000,
  apiMetrics: 9464,
  workerMetrics: [9465, 9466],
  receiver: 8099,
  slack: 8098,
};

async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch {
      /* not yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`stack: ${what} not ready after ${timeoutMs} ms`);
}

const httpOk = (url: string) => async () => (await fetch(url)).ok;

export async function startStack(o: StackOptions = {}): Promise<Stack> {
  for (const entry of ['dist/services/api/server.js', 'dist/services/worker/main.js', 'dist/services/webhook-receiver/main.js']) {
    if (!existsSync(repoPath(entry))) throw new Error(`stack: ${entry} is missing: run npm run build first`);
  }
  const workers = o.workers ?? 2;
  const ports: StackPorts = o.ports ?? {
    redis: await freePort(),
    redisExporter: await freePort(),
    prometheus: await freePort(),
    alertmanager: await freePort(),
    api: await freePort(),
    apiMetrics: await freePort(),
    workerMetrics: await Promise.all(Array.from({ length: workers }, freePort)),
    receiver: await freePort(),
    slack: await freePort(),
  };
  const dir = mkdtempSync(path.join(tmpdir(), 'bullmq-stack-'));
  for (const d of ['redis', 'prometheus', 'alertmanager', 'rules']) mkdirSync(path.join(dir, d));
  const thresholds = loadThresholds();
  if (o.drill) writeDrillRules(thresholds, path.join(dir, 'rules'), { forOverride: '0s', rateWindow: '30s', stuckWindow: '1m' });
  else copyFileSync(repoPath('observability/prometheus/rules/bullmq.rules.yml'), path.join(dir, 'rules', 'bullmq.rules.yml'));
  writeFileSync(path.join(dir, 'prometheus.yml'), YAML.stringify(prometheusConfig(ports, path.join(dir, 'rules'), o.drill ? '1s' : undefined)));

  // Messages are printed only when the stack talks to a person (the CLI); tests read slack.messages.
  const slack = o.slackUrlFile ? undefined : await startSlackReceiver(ports.slack, '127.0.0.1', o.output === process.stdout);
  const slackUrlFile = o.slackUrlFile ?? path.join(dir, 'slack_webhook_url');
  if (slack) writeFileSync(slackUrlFile, slack.url);
  writeFileSync(path.join(dir, 'alertmanager.yml'), YAML.stringify(alertmanagerConfig(slackUrlFile, !!o.drill)));

  const apiKey = `stack-${randomBytes(8).toString('hex')}`;
  const secret = randomBytes(16).toString('hex');
  const redisUrl = `redis://127.0.0.1:${ports.redis}`;
  const output = o.output ?? new PassThrough().resume();
  const appEnv = {
    PATH: process.env.PATH ?? '',
    REDIS_URL: redisUrl,
    API_KEYS: apiKey,
    WEBHOOK_SIGNING_SECRET: secret,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    LOG_LEVEL: 'warn',
    ...o.env,
  };
  const node = (entry: string, kind: string) => `"${process.execPath}" --require ./dist/services/${kind}/tracing.js ${entry}`;

  const infra = concurrently(
    [
      {
        name: 'redis',
        command: `redis-server --port ${ports.redis} --bind 127.0.0.1 --dir ${path.join(dir, 'redis')} --appendonly yes --appendfsync everysec --save "" --maxmemory 256mb --maxmemory-policy noeviction`,
      },
      { name: 'redis_exporter', command: `prometheus-redis-exporter --redis.addr=${redisUrl} --web.listen-address=127.0.0.1:${ports.redisExporter}` },
      {
        name: 'alertmanager',
        command: `prometheus-alertmanager --config.file=${path.join(dir, 'alertmanager.yml')} --storage.path=${path.join(dir, 'alertmanager')} --web.listen-address=127.0.0.1:${ports.alertmanager} --cluster.listen-address=`,
      },
      {
        name: 'receiver',
        command: `"${process.execPath}" dist/services/webhook-receiver/main.js`,
        env: { RECEIVER_PORT: String(ports.receiver), WEBHOOK_SIGNING_SECRET: secret },
      },
    ],
    { cwd: repoPath(), prefix: 'name', outputStream: output, killOthersOn: [], handleInput: false },
  );
  // concurrently's result rejects when any command exits non-zero — which every process does when stopped.
  infra.result.catch(() => undefined);
  const all: Command[] = [...infra.commands];
  const stopAll = async () => {
    for (const c of all) if (c.exited === false) c.kill('SIGTERM');
    await Promise.race([
      Promise.all(all.map((c) => (c.exited ? undefined : new Promise((r) => c.close.subscribe(r))))),
      new Promise((r) => setTimeout(r, 15_000)),
    ]);
    for (const c of all) if (c.exited === false) c.kill('SIGKILL');
    await slack?.close();
    rmSync(dir, { recursive: true, force: true });
  };

  try {
    await waitUntil('redis', async () => {
      const sock = net.connect(ports.redis, '127.0.0.1');
      return new Promise<boolean>((resolve) => {
        sock.once('connect', () => sock.write('PING\r\n'));
        sock.once('data', (d) => {
          sock.destroy();
          resolve(d.toString().startsWith('+PONG'));
        });
        sock.once('error', () => resolve(false));
      });
    });
    const apps = concurrently(
      [
        { name: 'api', command: node('dist/services/api/server.js', 'api'), env: { ...appEnv, API_PORT: String(ports.api), METRICS_PORT: String(ports.apiMetrics) } },
        ...ports.workerMetrics.map((p, i) => ({
          name: `worker-${i + 1}`,
          command: node('dist/services/worker/main.js', 'worker'),
          env: { ...appEnv, METRICS_PORT: String(p) },
        })),
      ],
      { cwd: repoPath(), prefix: 'name', outputStream: output, killOthersOn: [], handleInput: false },
    );
    apps.result.catch(() => undefined);
    all.push(...apps.commands);
    await waitUntil('alertmanager', httpOk(`http://127.0.0.1:${ports.alertmanager}/-/ready`));
    await waitUntil('api', httpOk(`http://127.0.0.1:${ports.api}/readyz`));
    for (const p of ports.workerMetrics) await waitUntil(`worker :${p}`, httpOk(`http://127.0.0.1:${p}/metrics`));
    await waitUntil('redis_exporter', httpOk(`http://127.0.0.1:${ports.redisExporter}/metrics`));
    // Prometheus last, once every target answers: otherwise its first evaluations page TargetDown (and, with
    // drill timings, send it to Slack) for processes that are merely still starting.
    const prom = concurrently(
      [
        {
          name: 'prometheus',
          command: `prometheus --config.file=${path.join(dir, 'prometheus.yml')} --storage.tsdb.path=${path.join(dir, 'prometheus')} --web.listen-address=127.0.0.1:${ports.prometheus} --web.enable-remote-write-receiver --enable-feature=exemplar-storage --web.enable-lifecycle`,
        },
      ],
      { cwd: repoPath(), prefix: 'name', outputStream: output, killOthersOn: [], handleInput: false },
    );
    prom.result.catch(() => undefined);
    all.push(...prom.commands);
    await waitUntil('prometheus', httpOk(`http://127.0.0.1:${ports.prometheus}/-/ready`));
    await waitUntil('receiver', httpOk(`http://127.0.0.1:${ports.receiver}/healthz`));
    const workerCommands = apps.commands.slice(1);
    return {
      ports,
      dir,
      apiKey,
      slack,
      workerCommands,
      urls: {
        api: `http://127.0.0.1:${ports.api}`,
        prometheus: `http://127.0.0.1:${ports.prometheus}`,
        alertmanager: `http://127.0.0.1:${ports.alertmanager}`,
        receiver: `http://127.0.0.1:${ports.receiver}/hooks`,
        ...(slack ? { slack: slack.url } : {}),
        apiMetrics: `http://127.0.0.1:${ports.apiMetrics}/metrics`,
        ...Object.fromEntries(ports.workerMetrics.map((p, i) => [`worker${i + 1}Metrics`, `http://127.0.0.1:${p}/metrics`])),
        redisExporter: `http://127.0.0.1:${ports.redisExporter}/metrics`,
      },
      stopWorker: async (i) => {
        const c = workerCommands[i]!;
        c.kill('SIGTERM');
        await new Promise((r) => c.close.subscribe(r));
      },
      stop: stopAll,
    };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
