/**
 * Per-host concurrency limit for webhook deliveries, in process (one worker): at most `maxPerHost` deliveries to
 * one target host (hostname and port) at once, so slow or hanging targets cannot take every delivery slot of the
 * worker. A delivery that finds its host full waits at most `waitMs` for a slot — a fast target frees one within
 * milliseconds — and otherwise gives up, so the caller can put the job back to delayed instead of holding a
 * worker slot while the host hangs. Waiters are served first come, first served.
 */
export type ReleaseSlot = () => void;

interface HostState {
  active: number;
  waiters: Array<(release: ReleaseSlot) => void>;
}

export class HostSlots {
  private readonly hosts = new Map<string, HostState>();

  constructor(readonly maxPerHost: number) {
    if (!Number.isInteger(maxPerHost) || maxPerHost < 1) throw new Error(`HostSlots: maxPerHost must be a positive integer, got ${maxPerHost}`);
  }

  /** Deliveries in flight to `host` now. */
  inUse(host: string): number {
    return this.hosts.get(host)?.active ?? 0;
  }

  /** A slot for `host` (call the returned function exactly once when done), or undefined if none freed in time. */
  acquire(host: string, waitMs: number): Promise<ReleaseSlot | undefined> {
    let state = this.hosts.get(host);
    if (!state) {
      state = { active: 0, waiters: [] };
      this.hosts.set(host, state);
    }
    if (state.active < this.maxPerHost) {
      state.active++;
      return Promise.resolve(this.releaser(host, state));
    }
    if (waitMs <= 0) return Promise.resolve(undefined);
    const hostState = state;
    return new Promise((resolve) => {
      const waiter = (release: ReleaseSlot) => {
        clearTimeout(timer);
        resolve(release);
      };
      const timer = setTimeout(() => {
        const i = hostState.waiters.indexOf(waiter);
        if (i >= 0) hostState.waiters.splice(i, 1);
        resolve(undefined);
      }, waitMs);
      hostState.waiters.push(waiter);
    });
  }

  private releaser(host: string, state: HostState): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = state.waiters.shift();
      // Hand the slot straight to the next waiter (active stays the same), or free it.
      if (next) return next(this.releaser(host, state));
      state.active--;
      if (state.active === 0) this.hosts.delete(host);
    };
  }
}
