/**
 * The one poll-until helper of the repository (tests, bench, native stack): poll a condition instead of sleeping.
 * test/helpers/wait.ts re-exports it; scripts/lib/process.ts builds readiness waits on it.
 */

export interface WaitOptions {
  /** Give up after this long (default 15 s). */
  timeoutMs?: number;
  /** Pause between polls (default 50 ms). */
  intervalMs?: number;
  /** What is awaited, for the timeout message ("api ready", "redis-server on 6400"). */
  what?: string;
  /** Stops polling at once: the wait rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Resolves after `ms`, or rejects with the signal's reason as soon as it aborts. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const reason = () => (signal?.reason instanceof Error ? signal.reason : new Error('aborted', { cause: signal?.reason }));
    if (signal?.aborted) return reject(reason());
    const onAbort = () => {
      clearTimeout(timer);
      reject(reason());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * Polls `fn` until it returns a truthy value and resolves with that value. A throw counts as "not yet" (its
 * message is quoted if the wait times out). Rejects with `timed out after … waiting for <what>` on timeout.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const { timeoutMs = 15_000, intervalMs = 50, what = 'condition', signal } = opts;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    if (signal?.aborted) throw signal.reason;
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    }
    await delay(intervalMs, signal);
  }
}

/**
 * Runs `fn` every `intervalMs` in the background until `stop()` is called; `stop()` awaits the run in progress
 * and one final run, so nothing observed up to the stop is missed. Errors of a run are ignored (the next run
 * tries again): for samplers, never for conditions — those use `waitFor`.
 */
export function every(intervalMs: number, fn: () => Promise<void>): { stop(): Promise<void> } {
  const stopping = new AbortController();
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      await fn().catch(() => undefined);
      await delay(intervalMs, stopping.signal).catch(() => undefined);
    }
    await fn().catch(() => undefined);
  })();
  return {
    stop: async () => {
      stopping.abort();
      await loop;
    },
  };
}
