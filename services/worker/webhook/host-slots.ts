/**
 * Per-host concurrency limit for webhook deliveries, in process (one worker): at most `maxPerHost` deliveries to
 * one target host (hostname and port) at once, so slow or hanging targets cannot take every delivery slot of the
 * worker. A delivery that finds its host full waits for a slot as long as the host keeps finishing deliveries
 * (one at least every `waitMs`): a burst to a fast target queues here for milliseconds. A host that finishes none
 * for `waitMs` is slow or hanging: the waiter gives up, so the caller can put the job back to delayed instead of
 * holding a worker slot while the host hangs. Waiters are served first come, first served.
 */
export type ReleaseSlot = () => void;

interface HostState {
  active: number;
  waiters: Array<(release: ReleaseSlot) => void>;
  /** When a delivery to this host last finished (ms since epoch; 0: none yet). */
  lastReleaseAt: number;
}

export class HostSlots {
  private readonly hosts = new Map<string, HostState>();

  constructor(readonly maxPerHost: number, private readonly now: () => number = Date.now) {
    if (!Number.isInteger(maxPerHost) || maxPerHost < 1) throw new Error(`HostSlots: maxPerHost must be a positive integer, got ${maxPerHost}`);
  }

  /** Deliveries in flight to `host` now. */
  inUse(host: string): number {
    return this.hosts.get(host)?.active ?? 0;
  }

  /**
   * A slot for `host` (call the returned function exactly once when done), or undefined if the host finished no
   * delivery for `waitMs` while this one waited, or the attempt was aborted (its timeout) meanwhile.
   */
  acquire(host: string, waitMs: number, signal?: AbortSignal): Promise<ReleaseSlot | undefined> {
    let state = this.hosts.get(host);
    if (!state) {
      state = { active: 0, waiters: [], lastReleaseAt: 0 };
      this.hosts.set(host, state);
    }
    if (state.active < this.maxPerHost) {
      state.active++;
      return Promise.resolve(this.releaser(host, state));
    }
    if (waitMs <= 0 || signal?.aborted) return Promise.resolve(undefined);
    const hostState = state;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout;
      const giveUp = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', giveUp);
        const i = hostState.waiters.indexOf(waiter);
        if (i >= 0) hostState.waiters.splice(i, 1);
        resolve(undefined);
      };
      const waiter = (release: ReleaseSlot) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', giveUp);
        resolve(release);
      };
      const check = () => {
        const sinceRelease = this.now() - hostState.lastReleaseAt;
        if (sinceRelease < waitMs) {
          timer = setTimeout(check, waitMs - sinceRelease); // the host is making progress: keep waiting
          return;
        }
        giveUp();
      };
      timer = setTimeout(check, waitMs);
      signal?.addEventListener('abort', giveUp, { once: true });
      hostState.waiters.push(waiter);
    });
  }

  private releaser(host: string, state: HostState): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      state.lastReleaseAt = this.now();
      const next = state.waiters.shift();
      // Hand the slot straight to the next waiter (active stays the same), or free it.
      if (next) return next(this.releaser(host, state));
      state.active--;
      if (state.active === 0) this.hosts.delete(host);
    };
  }
}
