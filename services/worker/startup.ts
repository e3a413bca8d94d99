/**
 * The worker's start-up against a Redis (or Redis Cluster) that may not be usable yet — down, frozen, or a cluster
 * answering CLUSTERDOWN while a slot has no master (docs/reliability.md, finding 5).
 *
 * Before this, a worker started into such an outage either exited 1 at its first Redis error ("Connection is
 * closed." from the eviction check's INFO on a master that had just died) — and a supervisor that stopped
 * restarting it after a while (scripts/chaos/services.ts did after 60 s) left the queue with one worker fewer for
 * good — or waited without a word, with no /livez or /readyz to look at, until the cluster was whole again.
 *
 * Now, like the API's Queue set-up (services/api/plugins/app/queues.ts), each step that needs Redis is retried in
 * the process, backing off 250 ms → 5 s, with a warning naming why; /readyz answers 503 with that reason until the
 * worker has started. A step whose BullMQ object failed its one-time set-up (BullMQ 6's RedisConnection runs
 * init() — wait for ready, then INFO — once, and keeps a rejection for the life of the object: every later command
 * of that Worker would reject with it, silently, since BullMQ does not emit connection errors) gets a new object.
 * An evicting Redis stays fatal (exit 1): waiting does not fix a configuration.
 */
import type { Logger } from 'pino';

export const STARTUP_RETRY_MIN_MS = 250;
export const STARTUP_RETRY_MAX_MS = 5_000;
/** One attempt of a step that may hang (an INFO to a frozen master has no timeout on the worker's connection). */
export const STARTUP_ATTEMPT_TIMEOUT_MS = 10_000;
/** While a BullMQ object waits for Redis (not failed, just waiting), how often that is logged. */
export const STARTUP_WAIT_LOG_MS = 10_000;

/** What /readyz says until the worker has started. */
export class StartupState {
  started = false;
  reason = 'starting: not connected to Redis yet';
}

export class StartupAborted extends Error {
  override name = 'StartupAborted';
}

export interface StartupDeps {
  log: Logger;
  state: StartupState;
  /** True once the process is shutting down: retries stop (StartupAborted). */
  stopping: () => boolean;
}

const backoff = (failures: number) => Math.min(STARTUP_RETRY_MIN_MS * 2 ** (failures - 1), STARTUP_RETRY_MAX_MS);

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

async function withTimeout<T>(ms: number, what: string, run: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      run(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs `step` until it succeeds; a failure is logged and retried after a backoff, and `isFatal` failures are
 * rethrown. Each attempt is bounded by STARTUP_ATTEMPT_TIMEOUT_MS.
 */
export async function retryStep<T>(what: string, step: () => Promise<T>, deps: StartupDeps, isFatal: (err: unknown) => boolean = () => false): Promise<T> {
  for (let failures = 0; ; ) {
    if (deps.stopping()) throw new StartupAborted(`shutting down before ${what}`);
    try {
      const result = await withTimeout(STARTUP_ATTEMPT_TIMEOUT_MS, what, step);
      if (failures > 0) deps.log.info({ step: what, failures }, 'start-up: Redis usable again, going on');
      return result;
    } catch (err) {
      if (isFatal(err)) throw err;
      failures++;
      const retryInMs = backoff(failures);
      deps.state.reason = `starting: ${what} failed ${failures} time(s) in a row (last: ${(err as Error).message}); trying again`;
      deps.log.warn({ step: what, err: (err as Error).message, failures, retryInMs }, 'start-up: Redis not usable yet; trying again');
      await sleep(retryInMs);
    }
  }
}

/** A BullMQ object with the one-time set-up described above (Worker, Queue). */
export interface SetUpObject {
  waitUntilReady(): Promise<unknown>;
  close(): Promise<void>;
}

/**
 * Builds a BullMQ object and waits for its set-up; a set-up that rejected is closed and built again after a
 * backoff. Waiting is not failing: an object whose set-up is still waiting for the connection (a cluster not ready)
 * is kept, and the wait is logged every STARTUP_WAIT_LOG_MS.
 */
export async function setUp<T extends SetUpObject>(what: string, build: () => T, deps: StartupDeps): Promise<T> {
  for (let failures = 0; ; ) {
    if (deps.stopping()) throw new StartupAborted(`shutting down before ${what} was set up`);
    const obj = build();
    const ready = obj.waitUntilReady();
    const waitingSince = Date.now();
    const ticker = setInterval(() => {
      deps.state.reason = `starting: ${what} waiting for Redis for ${Math.round((Date.now() - waitingSince) / 1000)} s`;
      deps.log.warn({ step: what, waitedMs: Date.now() - waitingSince }, 'start-up: still waiting for Redis');
    }, STARTUP_WAIT_LOG_MS);
    ticker.unref();
    try {
      await ready;
      if (failures > 0) deps.log.info({ step: what, failures }, 'start-up: set up again after failures');
      return obj;
    } catch (err) {
      failures++;
      const retryInMs = backoff(failures);
      deps.state.reason = `starting: ${what} failed its set-up ${failures} time(s) in a row (last: ${(err as Error).message}); building it again`;
      deps.log.warn({ step: what, err: (err as Error).message, failures, retryInMs }, 'start-up: BullMQ set-up failed; building it again');
      // Its set-up already failed, so closing it sends nothing; bounded in case a close waits on a dead socket.
      await withTimeout(5_000, `closing ${what}`, () => obj.close()).catch(() => undefined);
      await sleep(retryInMs);
    } finally {
      clearInterval(ticker);
    }
  }
}
