/**
 * Processes of `npm run bench`, all through the shared helpers of scripts/lib (a process that dies while
 * starting fails the bench at once, with its output): a private redis-server configured like compose.yaml's, the
 * OTLP sink, and the API / worker started from dist/ exactly as `npm run start:api` / `start:worker` do, ready
 * when they log "api listening" / "worker started" (works with METRICS_ENABLED=false too).
 */
import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';
import { freePort } from '../scripts/lib/ports';
import { WORKER_NODE_FLAGS } from '../scripts/lib/node-flags';
import { type ManagedProcess, describeExit, startProcess } from '../scripts/lib/process';
import { type RedisServer, startRedisServer } from '../scripts/lib/redis-server';
import type { RedisClusterHandle } from '../scripts/lib/redis-cluster';
import { type OtlpSink, startOtlpSink } from '../scripts/lib/otlp-sink';
import type { BenchOptions } from './cli';
import type { LoadResult, LoadSpec, LoadTarget } from '../scripts/lib/load-generator';
import { API_KEY, type BenchQueue, type Plan, PREFIX, QUEUES, loadTargets, planFor } from './plan';

/** Quotas far above what the bench can reach, for every outbound dependency (serviceEnv). */
export const BENCH_OUTBOUND_RATE_LIMITS = 'payment_provider=1000000/s,notification_provider=1000000/s,webhook_host=1000000/s';

/** Repository root (this file runs from dist/bench/). */
export const ROOT = path.resolve(__dirname, '..', '..');

/**
 * Telemetry of the services under test: `default` as shipped (lean explicit tracing, metrics), `disabled` (none),
 * `auto` (opt-in auto-instrumentation of http, ioredis and undici with the AsyncLocalStorage context manager).
 */
export type Mode = 'default' | 'disabled' | 'auto';
/** The instrumentations the `auto` mode loads (OTEL_NODE_ENABLED_INSTRUMENTATIONS). */
export const AUTO_INSTRUMENTATIONS = 'http,ioredis,undici';

/** Everything one bench run shares; created by `openBench`, passed to every stage. */
export interface BenchContext {
  options: BenchOptions;
  plan: Plan;
  redisServer: RedisServer;
  /** The orchestrator's own connection (counts, samplers, FLUSHALL between stages). */
  redis: Redis;
  otlp: OtlpSink;
  /** Windows measured while other processes loaded the machine: reported, never hidden. */
  contention: string[];
  log(line: string): void;
  /** True while the run may still spend time on repeats and quiet-waits (plan.budgetMs). */
  withinBudget(): boolean;
  /** Where --profile writes the services' .cpuprofile files. */
  profileDir: string | undefined;
}

export async function openBench(options: BenchOptions, log: (line: string) => void): Promise<BenchContext> {
  const plan = planFor(options.quick);
  const started = Date.now();
  const profileDir = options.profile ? path.join(tmpdir(), `bench-profiles-${started}`) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  // compose.yaml's Redis: AOF everysec, maxmemory 1gb, noeviction. The shared 6379 is not touched.
  const redisServer = await startRedisServer({ appendonly: true, appendfsync: 'everysec', maxmemory: '1gb', maxmemoryPolicy: 'noeviction' });
  const otlp = await startOtlpSink({ keepSpans: false }).catch(async (err: unknown) => {
    await redisServer.stop();
    throw err;
  });
  return {
    options,
    plan,
    redisServer,
    redis: new Redis(redisServer.url, { maxRetriesPerRequest: null }),
    otlp,
    contention: [],
    log,
    withinBudget: () => Date.now() - started < plan.budgetMs,
    profileDir,
  };
}

export async function closeBench(ctx: BenchContext): Promise<void> {
  ctx.redis.disconnect();
  await Promise.all([ctx.redisServer.stop(), ctx.otlp.close()]);
}

export interface Service {
  kind: 'api' | 'worker';
  pid: number;
  port?: number;
  metricsPort: number;
  process: ManagedProcess;
}

async function startService(ctx: BenchContext, kind: 'api' | 'worker', env: Record<string, string>, profileDir = ctx.profileDir): Promise<Service> {
  // One directory per kind, so bench/profile.ts knows whose profile a file is.
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, kind)}`] : [];
  const metricsPort = await freePort();
  const port = kind === 'api' ? await freePort() : undefined;
  const entry = kind === 'api' ? 'dist/services/api/server.js' : 'dist/services/worker/main.js';
  const proc = await startProcess({
    name: kind,
    command: process.execPath,
    args: [...nodeArgs, ...(kind === 'worker' ? WORKER_NODE_FLAGS : []), '--require', `./dist/services/${kind}/tracing.js`, entry],
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env, METRICS_PORT: String(metricsPort), ...(port ? { API_PORT: String(port) } : {}) },
    ready: { line: kind === 'api' ? '"msg":"api listening"' : '"msg":"worker started"' },
  });
  return { kind, pid: proc.pid, port, metricsPort, process: proc };
}

function serviceEnv(ctx: BenchContext, mode: Mode, opts: ServiceOptions): Record<string, string> {
  const concurrency = String(ctx.options.concurrency);
  return {
    NODE_ENV: 'production',
    ...(opts.cluster
      ? // REDIS_URL points at nothing: every connection must go through the cluster client.
        { REDIS_CLUSTER_NODES: opts.cluster.seeds, REDIS_URL: 'redis://127.0.0.1:1' }
      : { REDIS_URL: ctx.redisServer.url }),
    QUEUE_PREFIX: PREFIX,
    API_KEYS: API_KEY,
    API_RATE_LIMIT_MAX: '0', // capacity is measured, not the per-key limit (1,000/s by default)
    WORKER_QUEUES: (opts.queues ?? QUEUES).join(','),
    WORKER_CONCURRENCY_PAYMENTS: concurrency,
    WORKER_CONCURRENCY_NOTIFICATIONS: concurrency,
    LOG_LEVEL: 'info',
    // The pipeline's capacity is measured, not a provider's contract: the catalog's default quotas (1,000 calls/s
    // per dependency) would cap a notifications-only run. The quota is still taken on every call.
    OUTBOUND_RATE_LIMITS: BENCH_OUTBOUND_RATE_LIMITS,
    ...(mode === 'disabled'
      ? { OTEL_SDK_DISABLED: 'true', METRICS_ENABLED: 'false' }
      : {
          OTEL_EXPORTER_OTLP_ENDPOINT: ctx.otlp.endpoint, // OTEL_TRACES_SAMPLER unset: shipped parent-based 10 %
          ...(mode === 'auto' ? { OTEL_NODE_ENABLED_INSTRUMENTATIONS: AUTO_INSTRUMENTATIONS } : {}),
        }),
  };
}

/** The services under test of one stage (or one overhead run). */
export interface Services {
  apis: Service[];
  workers: Service[];
  mode: Mode;
  /** Requests for the load generator: alternating payments / notifications over every API. */
  targets: LoadTarget[];
  stop(): Promise<void>;
}

export interface ServiceOptions {
  /** Run against this Redis Cluster instead of the bench's single node. */
  cluster?: RedisClusterHandle;
  /** Queues the workers serve and the load generator posts to (default: payments and notifications). */
  queues?: readonly BenchQueue[];
  /** Run these services with --cpu-prof into this directory; null: never (default: --profile's directory, if any). */
  profileDir?: string | null;
}

/** FLUSHALL (every master of a cluster), then workers and APIs started fresh; any that fails to start stops the others. */
export async function startServices(ctx: BenchContext, apis: number, workers: number, mode: Mode, opts: ServiceOptions = {}): Promise<Services> {
  if (opts.cluster) await flushCluster(opts.cluster);
  else await ctx.redis.flushall();
  const env = serviceEnv(ctx, mode, opts);

  const started: Service[] = [];
  const stop = () => Promise.all(started.map((s) => s.process.stop({ signal: 'SIGTERM', killAfterMs: 5_000 }))).then(() => undefined);
  const launch = async (kind: 'api' | 'worker') => {
    const s = await startService(ctx, kind, env, opts.profileDir === undefined ? ctx.profileDir : (opts.profileDir ?? undefined));
    started.push(s);
    return s;
  };
  try {
    const w = await Promise.all(Array.from({ length: workers }, () => launch('worker')));
    const a = await Promise.all(Array.from({ length: apis }, () => launch('api')));
    return { apis: a, workers: w, mode, targets: loadTargets(a.map((s) => s.port!), opts.queues), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export async function flushCluster(cluster: RedisClusterHandle): Promise<void> {
  await Promise.all((await cluster.masters()).map(async (server) => {
    const node = new Redis(server.url, { maxRetriesPerRequest: 1 });
    try {
      await node.flushall();
    } finally {
      node.disconnect();
    }
  }));
}

/** One bench load: open loop at `rate` req/s, or (`rate` 0) closed loop with `concurrency` requests in flight. */
export interface BenchLoad {
  targets: LoadTarget[];
  seconds: number;
  rate: number;
  concurrency: number;
  /** Keep-alive connections per API (default 64). */
  connections?: number;
}

/** One run of the load generator (scripts/lib/load-generator.ts) in its own process, so its CPU use is measurable. */
export async function runLoad(load: BenchLoad): Promise<LoadResult> {
  const stage = load.rate > 0 ? { seconds: load.seconds, rate: load.rate } : { seconds: load.seconds, users: load.concurrency };
  const spec: LoadSpec = { targets: load.targets, apiKey: API_KEY, stages: [stage], connections: load.connections ?? 64 };
  let last = '';
  const gen = await startProcess({
    name: 'loadgen',
    command: process.execPath,
    args: [path.join(ROOT, 'dist', 'scripts', 'lib', 'load-generator.js'), JSON.stringify(spec)],
    onLine: (line, stream) => {
      if (stream === 'stdout' && line.trim()) last = line;
    },
  });
  const status = await gen.exited;
  if (status.code !== 0) throw new Error(`load generator exited (${describeExit(status)}):\n${gen.tail()}`);
  return JSON.parse(last) as LoadResult;
}
