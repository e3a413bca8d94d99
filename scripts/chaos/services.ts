/**
 * The campaign's API and worker processes: the compiled services (dist/), started as `npm run start:*` does, each
 * on a fixed port so a restart after a SIGKILL comes back where clients and scrapes look for it. Output goes to
 * <report>/logs/<name>.log.
 *
 * Supervised like an orchestrator would, and never given up on while the campaign runs: a process that exits while
 * starting (the API refuses to boot while Redis is unreachable), or is not ready (/readyz 200) within 45 s — then
 * SIGKILLed, like a failed startup probe — is started again after a backoff (1 s doubling to 10 s, as a
 * crash-loop backoff does), each time recorded as a restart (`restarts`, in the report); a process that exits after
 * it was ready, without being killed by a fault, is recorded as a crash (an invariant of the checker) and started
 * again the same way. Before, a start-up that kept failing was abandoned after a minute and a readiness timeout at
 * once, so a worker restarted into a long CLUSTERDOWN never ran again (docs/reliability.md, finding 5).
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

/** A start the supervisor had to repeat: the process exited while starting, or was not ready in time. */
export interface Restart {
  name: string;
  /** epoch ms */
  atMs: number;
  why: string;
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
  /**
   * Starts the process again with the same environment and ports (after a kill); resolves once it is ready. A
   * no-op while it runs, and joins a start already under way (after a crash).
   */
  restart(): Promise<void>;
  /** How many times it was started. */
  starts(): number;
  /** Stops it for good (campaign end): no restart follows. */
  shutdown(): Promise<void>;
}

const httpOk = (url: string) => async () => (await fetch(url, { signal: AbortSignal.timeout(2_000) })).ok;
const READY_TIMEOUT_MS = 45_000;
const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 10_000;

export async function startService(
  kind: 'api' | 'worker', index: number, env: Record<string, string>, logDir: string, streams: WriteStream[], crashes: Crash[], restarts: Restart[] = [],
): Promise<ServiceInstance> {
  const name = `${kind}-${index + 1}`;
  const metricsPort = await freePort();
  const port = kind === 'api' ? await freePort() : undefined;
  const log = createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' });
  streams.push(log);
  const fullEnv = { ...env, METRICS_PORT: String(metricsPort), ...(port ? { API_PORT: String(port) } : {}) };
  const entry = kind === 'api' ? 'dist/services/api/server.js' : 'dist/services/worker/main.js';
  // Both answer /readyz 200 only once they can serve: the API on its port, the worker on its metrics port (the
  // worker serves /metrics while it is still waiting for Redis, so /metrics would say nothing).
  const ready = kind === 'api' ? httpOk(`http://127.0.0.1:${port}/readyz`) : httpOk(`http://127.0.0.1:${metricsPort}/readyz`);
  let starts = 0;
  let expectedExit = false;
  let stopped = false;
  let proc: ManagedProcess | undefined;
  let launching: Promise<void> | undefined;

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
      readyTimeoutMs: READY_TIMEOUT_MS,
    });
  };
  // Until a start is ready, or the campaign stops it. startProcess has already SIGKILLed a process not ready in time.
  const launchUntilReady = async (): Promise<void> => {
    for (let failures = 0; ; failures++) {
      if (stopped) throw new Error(`${name} stopped before it was ready`);
      try {
        const started = await launchOnce();
        if (stopped) {
          await started.stop({ signal: 'SIGKILL' });
          throw new Error(`${name} stopped before it was ready`);
        }
        proc = started;
        break;
      } catch (err) {
        if (stopped) throw err;
        const why = err instanceof ProcessExitedError ? `exited while starting (${describeExit(err.status)})` : `not ready within ${READY_TIMEOUT_MS / 1000} s (killed)`;
        const output = err instanceof ProcessExitedError ? err.output : (err as Error).message;
        restarts.push({ name, atMs: Date.now(), why, lastOutput: output.split('\n').slice(-5).join('\n') });
        const waitMs = Math.min(BACKOFF_MIN_MS * 2 ** failures, BACKOFF_MAX_MS);
        log.write(`--- ${why}; starting again in ${waitMs / 1000} s\n`);
        await delay(waitMs);
      }
    }
    expectedExit = false;
    const mine = proc;
    void mine.exited.then((status) => {
      if (expectedExit || stopped || mine !== proc) return;
      crashes.push({ name, atMs: Date.now(), exit: describeExit(status), lastOutput: mine.tail().split('\n').slice(-5).join('\n') });
      log.write(`--- crashed (${describeExit(status)}); starting again\n`);
      void launch().catch((err: Error) => log.write(`--- not started again: ${err.message}\n`));
    });
  };
  // One start at a time: a fault's restart joins the restart after a crash rather than racing it for the port.
  const launch = (): Promise<void> => {
    launching ??= launchUntilReady().finally(() => (launching = undefined));
    return launching;
  };
  await launch();
  return {
    name,
    kind,
    port,
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    current: () => proc!,
    kill: async () => {
      // A start under way (after a crash) is let finish first, so the kill hits the process that will serve.
      if (launching) await launching;
      expectedExit = true;
      proc!.signal('SIGKILL');
      await proc!.exited;
    },
    restart: async () => {
      if (launching) return launching;
      if (proc?.running()) return;
      return launch();
    },
    starts: () => starts,
    shutdown: async () => {
      stopped = true;
      await proc?.stop({ signal: 'SIGKILL' });
    },
  };
}
