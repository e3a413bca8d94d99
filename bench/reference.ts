/**
 * The reference builds of the cost stage (bench/reference/<kind>/, plain JS with their own pinned dependencies):
 * `bare` = Fastify + BullMQ, no telemetry; `typical` = bare + bullmq-otel, OpenTelemetry auto-instrumentations
 * and fastify-metrics / prom-client job histograms. They take the same load (notifications over HTTP with the
 * bench's key), the product's job options and worker concurrency, and for `typical` the product's sampler
 * (parent-based, 10 %) exporting to the bench's OTLP sink.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_PRIORITY, PRIORITIES } from '../services/common/queue-catalog';
import { jobOptionsFor } from '../services/common/job-options';
import { repoPath } from '../scripts/lib/repo-root';
import { type ManagedProcess, startProcess } from '../scripts/lib/process';
import { API_KEY, PREFIX, loadTargets } from './plan';
import type { BenchContext, Service, Services } from './stack';

export const REFERENCES = ['bare', 'typical'] as const;
export type Reference = (typeof REFERENCES)[number];

export const referenceDir = (kind: Reference): string => repoPath('bench', 'reference', kind);

/** npm ci from the reference's lock file when its node_modules is missing (a fresh clone, CI). */
export function ensureReferenceDeps(kind: Reference, log: (line: string) => void): void {
  const dir = referenceDir(kind);
  if (existsSync(path.join(dir, 'node_modules'))) return;
  log(`  installing the ${kind} reference's dependencies (npm ci in ${path.relative(repoPath(), dir)})`);
  const npm = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8' });
  if (npm.status !== 0) throw new Error(`npm ci in ${dir} failed (${npm.error?.message ?? `exit ${npm.status}`}):\n${npm.stderr || npm.stdout}`);
}

/** The product's job options for notifications, with the priority the API sets: what both references add with. */
export const REFERENCE_JOB_OPTIONS = { ...jobOptionsFor('notifications'), priority: PRIORITIES[DEFAULT_PRIORITY] };

/** The environment both processes of a reference run with (bench/reference/<kind>/*.js read these names). */
export function referenceEnv(kind: Reference, o: { redisUrl: string; otlpEndpoint: string; concurrency: number; prefix?: string }): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    NODE_ENV: 'production',
    REDIS_URL: o.redisUrl,
    QUEUE_PREFIX: o.prefix ?? PREFIX,
    API_KEY,
    JOB_OPTIONS: JSON.stringify(REFERENCE_JOB_OPTIONS),
    CONCURRENCY: String(o.concurrency),
    ...(kind === 'typical'
      ? {
          OTEL_EXPORTER_OTLP_ENDPOINT: o.otlpEndpoint,
          OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
          OTEL_TRACES_SAMPLER_ARG: '0.1',
          // Metrics are prom-client's (scraped), logs stay local: OTLP carries the traces only.
          OTEL_METRICS_EXPORTER: 'none',
          OTEL_LOGS_EXPORTER: 'none',
          // Fastify's logger is on, per-request lines off, like the product's API (no request logging).
          LOG_LEVEL: 'warn',
        }
      : {}),
  };
}

/**
 * Starts one process of a reference on ports of its own choosing (0: a port picked at start-up could be taken by
 * another process while the typical build loads its instrumentations); ready when it prints its readiness line,
 * which names them.
 */
export async function startReferenceProcess(kind: Reference, role: 'api' | 'worker', env: Record<string, string>): Promise<{ process: ManagedProcess; port: number | undefined }> {
  let port: number | undefined;
  const proc = await startProcess({
    name: `${kind} ${role}`,
    command: process.execPath,
    args: [...(kind === 'typical' ? ['--require', './tracing.js'] : []), `${role}.js`],
    cwd: referenceDir(kind),
    env: { ...env, PORT: '0', METRICS_PORT: '0', OTEL_SERVICE_NAME: `${kind}-${role}` },
    onLine: (line) => {
      const m = /^(?:api listening on http:\/\/[^:]+:|worker started, metrics on port )(\d+)/.exec(line);
      if (m) port = Number(m[1]);
    },
    ready: { line: role === 'api' ? 'api listening' : 'worker started' },
    // Loading every auto-instrumentation takes the typical build tens of seconds on a busy 2-core box.
    readyTimeoutMs: 120_000,
  });
  return { process: proc, port };
}

/** A reference's API and worker (one each), started fresh on the bench's Redis after a FLUSHALL. */
export async function startReference(ctx: BenchContext, kind: Reference): Promise<Omit<Services, 'mode'>> {
  ensureReferenceDeps(kind, (line) => ctx.log(line));
  await ctx.redis.flushall();
  const env = referenceEnv(kind, { redisUrl: ctx.redisServer.url, otlpEndpoint: ctx.otlp.endpoint, concurrency: ctx.options.concurrency });
  const started: Service[] = [];
  const stop = () => Promise.all(started.map((s) => s.process.stop({ signal: 'SIGTERM', killAfterMs: 5_000 }))).then(() => undefined);
  const launch = async (role: 'api' | 'worker') => {
    const { process: proc, port } = await startReferenceProcess(kind, role, env);
    const s: Service = { kind: role, pid: proc.pid, port: role === 'api' ? port : undefined, metricsPort: port ?? 0, process: proc };
    started.push(s);
    return s;
  };
  try {
    const worker = await launch('worker');
    const api = await launch('api');
    return { apis: [api], workers: [worker], targets: loadTargets([api.port!], ['notifications']), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
