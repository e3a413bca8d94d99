/**
 * Starts the real API and worker processes (compiled, from dist/, exactly as `npm run start:*` does) with a
 * test's environment, waits until they report ready on their JSON log, and stops them with a chosen signal.
 * Started through scripts/lib/process.ts: a service that dies while starting fails the test at once, with its output.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { type ManagedProcess, startProcess } from '../../scripts/lib/process';
import { freePort } from './ports';
import { redisEnv } from './redis';

export const ROOT = path.resolve(__dirname, '..', '..');
export const API_KEY = 'test-key-0123456789';
/** Operator key: the only one accepted on /v1/admin/* and the console. */
export const ADMIN_KEY = 'test-admin-key-0123456789';
export const SIGNING_SECRET = 'test-signing-secret-0123456789';

export interface ServiceProcess {
  process: ChildProcess;
  /** The same process through the shared helper (waitUntil fails at once if the service dies). */
  managed: ManagedProcess;
  logs: Record<string, unknown>[];
  stderr: string[];
  port?: number;
  metricsPort: number;
  url?: string;
  metricsUrl: string;
  /** Resolves with the exit code (or signal name) once the process ends. */
  exited: Promise<number | string>;
  stop(signal?: NodeJS.Signals): Promise<number | string>;
}

export function baseEnv(redisUrl: string, prefix: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    ...redisEnv(redisUrl),
    QUEUE_PREFIX: prefix,
    API_KEYS: API_KEY,
    ADMIN_API_KEYS: ADMIN_KEY,
    FAULTS_ENABLED: 'true',
    WEBHOOK_SIGNING_SECRET: SIGNING_SECRET,
    WEBHOOK_ALLOW_PRIVATE: 'true',
    OTEL_SDK_DISABLED: 'true',
    LOG_LEVEL: 'info',
    ...extra,
  };
}

async function start(kind: 'api' | 'worker', env: Record<string, string>): Promise<ServiceProcess> {
  const metricsPort = env.METRICS_PORT ? Number(env.METRICS_PORT) : await freePort();
  const port = kind === 'api' ? (env.API_PORT ? Number(env.API_PORT) : await freePort()) : undefined;
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  const proc = await startProcess({
    name: kind,
    command: process.execPath,
    args: ['--require', `./dist/services/${kind}/tracing.js`, `dist/services/${kind === 'api' ? 'api/server' : 'worker/main'}.js`],
    cwd: ROOT,
    env: { ...env, METRICS_PORT: String(metricsPort), ...(port ? { API_PORT: String(port) } : {}) },
    // Every JSON log line is kept for assertions; anything else (Node warnings, inspector banner) goes to stderr.
    onLine: (line, stream) => {
      if (stream === 'stdout') {
        try {
          logs.push(JSON.parse(line) as Record<string, unknown>);
          return;
        } catch {
          /* not a log line */
        }
      }
      stderr.push(`${line}\n`);
    },
    ready: { line: kind === 'api' ? '"msg":"api listening"' : '"msg":"worker started"' },
  });
  return {
    process: proc.child,
    managed: proc,
    logs,
    stderr,
    port,
    metricsPort,
    url: port ? `http://127.0.0.1:${port}` : undefined,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    exited: proc.exited.then((s) => s.code ?? s.signal ?? 'unknown'),
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      const s = await proc.stop({ signal });
      return s.code ?? s.signal ?? 'unknown';
    },
  };
}

export const startApi = (env: Record<string, string>) => start('api', env);
export const startWorker = (env: Record<string, string>) => start('worker', env);
