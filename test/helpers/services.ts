/**
 * Starts the real API and worker processes (compiled, from dist/, exactly as `npm run start:*` does) with a
 * test's environment, waits until they report ready on their JSON log, and stops them with a chosen signal.
 */
import { spawn, ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from './ports';
import { redisEnv } from './redis';
import { waitFor } from './wait';

export const ROOT = path.resolve(__dirname, '..', '..');
export const API_KEY = 'test-key-0123456789';
/** Operator key: the only one accepted on /v1/admin/* and the console. */
export const ADMIN_KEY = 'test-admin-key-0123456789';
export const SIGNING_SECRET = 'test-signing-secret-0123456789';

export interface ServiceProcess {
  process: ChildProcess;
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
  const fullEnv = { ...env, METRICS_PORT: String(metricsPort), ...(port ? { API_PORT: String(port) } : {}) };
  const entry = kind === 'api' ? 'dist/services/api/server.js' : 'dist/services/worker/main.js';
  const child = spawn(process.execPath, ['--require', `./dist/services/${kind}/tracing.js`, entry], {
    cwd: ROOT,
    env: fullEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        stderr.push(line);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => stderr.push(chunk.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const ready = kind === 'api' ? 'api listening' : 'worker started';
  let exitCode: number | string | undefined;
  void exited.then((code) => (exitCode = code));
  await waitFor(() => exitCode !== undefined || logs.some((l) => l.msg === ready), {
    timeoutMs: 30_000,
    what: `${kind} ready`,
    intervalMs: 25,
  });
  if (exitCode !== undefined) {
    throw new Error(`${kind} exited (${exitCode}): ${stderr.join('')} ${JSON.stringify(logs.slice(-3))}`);
  }
  return {
    process: child,
    logs,
    stderr,
    port,
    metricsPort,
    url: port ? `http://127.0.0.1:${port}` : undefined,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    exited,
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export const startApi = (env: Record<string, string>) => start('api', env);
export const startWorker = (env: Record<string, string>) => start('worker', env);
