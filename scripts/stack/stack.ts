/**
 * The whole stack natively, with the real binaries from Debian packages: Redis (noeviction, AOF everysec),
 * redis_exporter, Prometheus (rules, remote-write receiver, exemplars), Alertmanager (Slack → a local
 * Slack-compatible receiver unless a URL file is given), the API, N workers and a webhook receiver.
 *
 * Each process is started with the shared process helper (scripts/lib/process.ts): a readiness wait fails at
 * once, with the process's last output, when it exits instead of becoming ready. Every process's output goes to
 * its own log file (`logs`), never to the terminal. `startStack()` is what `npm run stack` and the live tests use.
 */
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, writeFileSync, copyFileSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import YAML from 'yaml';
import { loadThresholds } from '../../services/common/thresholds';
import { repoPath } from '../lib/repo-root';
import { writeDrillRules } from '../../observability/generate/main';
import { startProcess, type ManagedProcess, type Readiness } from '../lib/process';
import { pingRedis } from '../lib/redis-server';
import { startRedisCluster, type RedisClusterHandle } from '../lib/redis-cluster';
import { freePort } from '../lib/ports';
import { WORKER_NODE_FLAGS } from '../lib/node-flags';
import { alertmanagerConfig, prometheusConfig, prometheusFlags, type StackPorts } from './configs';
import { startSlackReceiver, type SlackMessage, type SlackReceiver } from './slack-receiver';

export interface StackOptions {
  /** Fixed ports (the CLI); tests leave them out and get free ones. */
  ports?: StackPorts;
  workers?: number;
  /** Drill mode: short `for:` and rate windows, 1 s scrapes, fast Alertmanager grouping. */
  drill?: boolean;
  /** File holding a real Slack webhook URL; without it a local Slack-compatible receiver is used. */
  slackUrlFile?: string;
  /** Each local Slack receiver message as it arrives (the CLI prints it). */
  onSlackMessage?: (msg: SlackMessage) => void;
  /** Folder for the processes' log files (default: `logs/` in the stack's temporary folder, removed on stop). */
  logDir?: string;
  /** Extra environment for the API and the workers. */
  env?: Record<string, string>;
  /**
   * A local Redis Cluster (3 masters + 3 replicas, scripts/lib/redis-cluster.ts) instead of one redis-server: API
   * and workers get REDIS_CLUSTER_NODES, redis_exporter scrapes every node.
   */
  redisCluster?: boolean;
}

export interface Stack {
  ports: StackPorts;
  /** Temporary folder: configs, rules, Redis/Prometheus/Alertmanager data (removed by `stop()`). */
  dir: string;
  /** Log file of each process, by name ("api", "worker-1", "prometheus", …). */
  logs: Record<string, string>;
  /** Client key (API_KEYS): jobs and queue reads. */
  apiKey: string;
  /** Operator key (ADMIN_API_KEYS): /v1/admin/*, e.g. fault injection (FAULTS_ENABLED=true here). */
  adminKey: string;
  urls: Record<string, string>;
  slack?: SlackReceiver;
  /** With `redisCluster`: one line per node (address, role, slots) as the cluster reported it at start. */
  redisNodes?: string[];
  processes: Record<string, ManagedProcess>;
  /** Stops worker `index` (0-based) with SIGTERM, as an orchestrator would. */
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

/** How long a process gets to become ready; Prometheus and the services load more on a busy machine. */
const READY_TIMEOUT_MS = 60_000;
/** A process still running this long after SIGTERM is killed (workers drain their jobs first). */
const STOP_KILL_AFTER_MS = 15_000;

const httpOk = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;

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
  if (ports.workerMetrics.length !== workers) throw new Error(`stack: ${workers} workers need ${workers} worker metrics ports, got ${ports.workerMetrics.length}`);
  const dir = mkdtempSync(path.join(tmpdir(), 'bullmq-stack-'));
  for (const d of ['redis', 'prometheus', 'alertmanager', 'rules']) mkdirSync(path.join(dir, d));
  const logDir = o.logDir ?? path.join(dir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const thresholds = loadThresholds();
  if (o.drill) writeDrillRules(thresholds, path.join(dir, 'rules'), { forOverride: '0s', rateWindow: '30s', stuckWindow: '1m', goneWindow: '30s' });
  else copyFileSync(repoPath('observability/prometheus/rules/bullmq.rules.yml'), path.join(dir, 'rules', 'bullmq.rules.yml'));

  const apiKey = `stack-${randomBytes(12).toString('hex')}`;
  const adminKey = `stack-admin-${randomBytes(12).toString('hex')}`;
  const secret = randomBytes(16).toString('hex');
  const redisUrl = `redis://127.0.0.1:${ports.redis}`;
  let cluster: RedisClusterHandle | undefined;
  if (o.redisCluster) {
    cluster = await startRedisCluster({ parentDir: path.join(dir, 'redis'), maxmemory: '256mb' });
  }
  const redisNodes = cluster?.seeds.split(',');
  writeFileSync(path.join(dir, 'prometheus.yml'), YAML.stringify(prometheusConfig(ports, path.join(dir, 'rules'), o.drill ? '1s' : undefined, redisNodes)));
  const appEnv = {
    PATH: process.env.PATH ?? '',
    // With a cluster, REDIS_URL names a port where nothing listens: no connection may use it.
    REDIS_URL: redisUrl,
    ...(cluster ? { REDIS_CLUSTER_NODES: cluster.seeds } : {}),
    API_KEYS: apiKey,
    ADMIN_API_KEYS: adminKey,
    // A demo and drill stack: faults are injected through the admin API (off by default in production).
    FAULTS_ENABLED: 'true',
    WEBHOOK_SIGNING_SECRET: secret,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    LOG_LEVEL: 'info',
    ...o.env,
  };

  const processes: Record<string, ManagedProcess> = {};
  const logs: Record<string, string> = {};
  const streams: WriteStream[] = [];
  let slack: SlackReceiver | undefined;

  const stopAll = async () => {
    await Promise.all(Object.values(processes).map((p) => p.stop({ signal: 'SIGTERM', killAfterMs: STOP_KILL_AFTER_MS })));
    await cluster?.stop();
    await slack?.close();
    await Promise.all(streams.map((s) => new Promise((resolve) => s.end(resolve))));
    rmSync(dir, { recursive: true, force: true });
  };

  /** Starts one process with its output in <logDir>/<name>.log and waits until it is ready. */
  const start = async (name: string, command: string, args: string[], ready: Readiness, env?: NodeJS.ProcessEnv) => {
    const file = path.join(logDir, `${name}.log`);
    const log = createWriteStream(file, { flags: 'w' });
    streams.push(log);
    logs[name] = file;
    const proc = await startProcess({
      name,
      command,
      args,
      cwd: repoPath(),
      env: env ?? { PATH: process.env.PATH ?? '' },
      onLine: (line) => log.write(`${line}\n`),
      ready,
      readyTimeoutMs: READY_TIMEOUT_MS,
    });
    processes[name] = proc;
    return proc;
  };
  const nodeService = (kind: 'api' | 'worker', entry: string) => [...(kind === 'worker' ? WORKER_NODE_FLAGS : []), '--require', `./dist/services/${kind}/tracing.js`, entry];

  try {
    // The local Slack receiver first: Alertmanager must be able to deliver from its first notification on.
    if (!o.slackUrlFile) slack = await startSlackReceiver(ports.slack, '127.0.0.1', o.onSlackMessage);
    const slackUrlFile = o.slackUrlFile ?? path.join(dir, 'slack_webhook_url');
    if (slack) writeFileSync(slackUrlFile, slack.url);
    writeFileSync(path.join(dir, 'alertmanager.yml'), YAML.stringify(alertmanagerConfig(slackUrlFile, !!o.drill)));

    if (!cluster) {
      await start(
        'redis',
        'redis-server',
        ['--port', String(ports.redis), '--bind', '127.0.0.1', '--dir', path.join(dir, 'redis'), '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory', '256mb', '--maxmemory-policy', 'noeviction'],
        { probe: () => pingRedis(ports.redis) },
      );
    }
    // allSettled, not all: when one fails, the others are still starting and must be stopped too.
    const settled = await Promise.allSettled([
      // Cluster: no default address; Prometheus asks for each node through /scrape?target= (configs.ts).
      start('redis_exporter', 'prometheus-redis-exporter', [`--redis.addr=${cluster ? '' : redisUrl}`, `--web.listen-address=127.0.0.1:${ports.redisExporter}`], {
        probe: httpOk(`http://127.0.0.1:${ports.redisExporter}/metrics`),
      }),
      start(
        'alertmanager',
        'prometheus-alertmanager',
        [`--config.file=${path.join(dir, 'alertmanager.yml')}`, `--storage.path=${path.join(dir, 'alertmanager')}`, `--web.listen-address=127.0.0.1:${ports.alertmanager}`, '--cluster.listen-address='],
        { probe: httpOk(`http://127.0.0.1:${ports.alertmanager}/-/ready`) },
      ),
      start('receiver', process.execPath, ['dist/services/webhook-receiver/main.js'], { probe: httpOk(`http://127.0.0.1:${ports.receiver}/healthz`) }, {
        PATH: process.env.PATH ?? '',
        RECEIVER_PORT: String(ports.receiver),
        WEBHOOK_SIGNING_SECRET: secret,
      }),
      start('api', process.execPath, nodeService('api', 'dist/services/api/server.js'), { probe: httpOk(`http://127.0.0.1:${ports.api}/readyz`) }, {
        ...appEnv,
        API_PORT: String(ports.api),
        METRICS_PORT: String(ports.apiMetrics),
      }),
      ...ports.workerMetrics.map((p, i) =>
        start(`worker-${i + 1}`, process.execPath, nodeService('worker', 'dist/services/worker/main.js'), { probe: httpOk(`http://127.0.0.1:${p}/metrics`) }, { ...appEnv, METRICS_PORT: String(p) }),
      ),
    ]);
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    // Prometheus last, once every target answers: otherwise its first evaluations page TargetDown (and, with
    // drill timings, send it to Slack) for processes that are merely still starting.
    await start(
      'prometheus',
      'prometheus',
      prometheusFlags(path.join(dir, 'prometheus.yml'), path.join(dir, 'prometheus'), ports.prometheus, thresholds),
      { probe: httpOk(`http://127.0.0.1:${ports.prometheus}/-/ready`) },
    );
  } catch (err) {
    await stopAll();
    throw err;
  }

  const workerProcesses = ports.workerMetrics.map((_, i) => processes[`worker-${i + 1}`]!);
  return {
    ports,
    dir,
    logs,
    apiKey,
    adminKey,
    slack,
    redisNodes: await cluster?.describe(),
    processes,
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
      const worker = workerProcesses[i];
      if (!worker) throw new Error(`stack: no worker ${i} (there are ${workerProcesses.length})`);
      await worker.stop({ signal: 'SIGTERM', killAfterMs: STOP_KILL_AFTER_MS });
    },
    stop: stopAll,
  };
}
