/**
 * The campaign's API and worker processes: the compiled services (dist/), started as `npm run start:*` does, each
 * on a fixed port so a restart after a SIGKILL comes back where clients and scrapes look for it. Output goes to
 * <report>/logs/<name>.log.
 *
 * Supervised like an orchestrator would: a process that exits while starting (the API refuses to boot while Redis
 * is unreachable) is started again after 1 s, for up to a minute; a process that exits without being killed by
 * a fault is recorded as a crash (an invariant of the checker) and started again.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import path from 'node:path';
import { repoPath } from '../lib/repo-root';
import { ProcessExitedError, describeExit, startProcess, type ManagedProcess } from '../lib/process';
import { freePort } from '../lib/ports';
import { WORKER_NODE_FLAGS } from '../lib/node-flags';
import { delay } from '../lib/wait';

export interface Crash {
  name: string;
  /** epoch ms */
  atMs: number;
  exit: string;
  lastOutput: string;
}

export interface ServiceInstance {
  name: string;
  kind: 'api' | 'worker';
  /** Public port (API) — undefined for workers. */
  port?: number;
  metricsUrl: string;
  current(): ManagedProcess;
  /** SIGKILLs the process as a fault (not a crash) and resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts the process again with the same environment and ports (after a kill). */
  restart(): Promise<void>;
  /** How many times it was started. */
  starts(): number;
  /** Stops it for good (campaign end): no restart follows. */
  shutdown(): Promise<void>;
}

const httpOk = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;
const RESTART_FOR_MS = 60_000;

export async function startService(
  kind: 'api' | 'worker', index: number, env: Record<string, string>, logDir: string, streams: WriteStream[], crashes: Crash[],
): Promise<ServiceInstance> {
  const name = `${kind}-${index + 1}`;
  const metricsPort = await freePort();
  const port = kind === 'api' ? await freePort() : undefined;
  const log = createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' });
  streams.push(log);
  const fullEnv = { ...env, METRICS_PORT: String(metricsPort), ...(port ? { API_PORT: String(port) } : {}) };
  const entry = kind === 'api' ? 'dist/services/api/server.js' : 'dist/services/worker/main.js';
  const ready = kind === 'api' ? httpOk(`http://127.0.0.1:${port}/readyz`) : httpOk(`http://127.0.0.1:${metricsPort}/metrics`);
  let starts = 0;
  let expectedExit = false;
  let stopped = false;
  let proc: ManagedProcess;

  const launchOnce = () => {
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
      readyTimeoutMs: 45_000,
    });
  };
  const launch = async (): Promise<void> => {
    const until = Date.now() + RESTART_FOR_MS;
    for (;;) {
      try {
        proc = await launchOnce();
        break;
      } catch (err) {
        if (!(err instanceof ProcessExitedError) || Date.now() > until || stopped) throw err;
        log.write(`--- exited while starting (${describeExit(err.status)}); starting again in 1 s\n`);
        await delay(1_000);
      }
    }
    expectedExit = false;
    const mine = proc;
    void mine.exited.then((status) => {
      if (expectedExit || stopped || mine !== proc) return;
      crashes.push({ name, atMs: Date.now(), exit: describeExit(status), lastOutput: mine.tail().split('\n').slice(-5).join('\n') });
      log.write(`--- crashed (${describeExit(status)}); starting again\n`);
      void launch().catch((err: Error) => log.write(`--- could not start again: ${err.message}\n`));
    });
  };
  await launch();
  return {
    name,
    kind,
    port,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    current: () => proc,
    kill: async () => {
      expectedExit = true;
      proc.signal('SIGKILL');
      await proc.exited;
    },
    restart: launch,
    starts: () => starts,
    shutdown: async () => {
      stopped = true;
      await proc.stop({ signal: 'SIGKILL' });
    },
  };
}
