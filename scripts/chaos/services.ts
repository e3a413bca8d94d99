/**
 * The campaign's API and worker processes: the compiled services (dist/), started as `npm run start:*` does, each
 * on a fixed port so a restart after a SIGKILL comes back where clients and scrapes look for it. Output goes to
 * <report>/logs/<name>.log.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { repoPath } from '../../services/common/thresholds';
import { startProcess, type ManagedProcess } from '../lib/process';
import { freePort } from '../lib/ports';
import { WORKER_NODE_FLAGS } from '../lib/node-flags';

export interface ServiceInstance {
  name: string;
  kind: 'api' | 'worker';
  /** Public port (API) — undefined for workers. */
  port?: number;
  metricsUrl: string;
  current(): ManagedProcess;
  /** Starts the process again with the same environment and ports (after a kill). */
  restart(): Promise<void>;
  /** How many times it was started. */
  starts(): number;
}

const httpOk = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;

export async function startService(kind: 'api' | 'worker', index: number, env: Record<string, string>, logDir: string, streams: WriteStream[]): Promise<ServiceInstance> {
  const name = `${kind}-${index + 1}`;
  const metricsPort = await freePort();
  const port = kind === 'api' ? await freePort() : undefined;
  const log = createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' });
  streams.push(log);
  const fullEnv = { ...env, METRICS_PORT: String(metricsPort), ...(port ? { API_PORT: String(port) } : {}) };
  const entry = kind === 'api' ? 'dist/services/api/server.js' : 'dist/services/worker/main.js';
  const ready = kind === 'api' ? httpOk(`http://127.0.0.1:${port}/readyz`) : httpOk(`http://127.0.0.1:${metricsPort}/metrics`);
  let starts = 0;
  const launch = async () => {
    starts++;
    log.write(`--- start ${starts} at ${new Date().toISOString()}\n`);
    return startProcess({
      name,
      command: process.execPath,
      args: [...(kind === 'worker' ? WORKER_NODE_FLAGS : []), '--require', `./dist/services/${kind}/tracing.js`, entry],
      cwd: repoPath(),
      env: fullEnv,
      onLine: (line) => log.write(`${line}\n`),
      ready: { probe: ready },
      readyTimeoutMs: 60_000,
    });
  };
  let proc = await launch();
  return {
    name,
    kind,
    port,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    current: () => proc,
    restart: async () => {
      proc = await launch();
    },
    starts: () => starts,
  };
}
