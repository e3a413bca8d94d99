/**
 * The worker's circuit breakers: the shared state of services/common/outbound-circuits.ts behind a local cache, so
 * the closed path costs no Redis round trip per call. Per circuit (dependency, target) this process keeps the
 * last state it read and the outcomes not yet sent; it syncs with Redis (send the batch, read the state back):
 * - at once after a failure (an outage opens the circuit within a few calls),
 * - when BATCH_SIZE successes are pending and the last sync is SUCCESS_SYNC_MS old (a busy healthy dependency
 *   costs this process ≤ 1 / SUCCESS_SYNC_MS syncs per circuit, whatever its call rate: the bench's outbound stage),
 *   and before using a state older than REFRESH_MS (so a circuit another replica opened, or an operator reset, is
 *   seen within half a second).
 * An open circuit short-circuits locally until its next probe time; then exactly one call across all replicas
 * gets the probe lease (SET NX PX in the script) and its outcome closes or re-opens the circuit.
 * Redis unreachable: the breaker lets calls through (it protects the dependency, it must not add an outage).
 */
import { randomUUID } from 'node:crypto';
import type { CircuitReply, CircuitState, CircuitStore, CircuitTransition } from '../../common/outbound-circuits';
import type { BreakerPolicy, OutboundDependency } from '../../common/queue-catalog';

export const REFRESH_MS = 500;
export const BATCH_SIZE = 20;
/** Pending successes wait at most this long for company: a tenth of a second of a 10 s breaker window. */
export const SUCCESS_SYNC_MS = 100;
/** Local entries unused this long are dropped (webhook hosts are unbounded). */
const IDLE_MS = 60_000;

export type Admission =
  | { kind: 'pass' }
  | { kind: 'probe'; token: string }
  /** Not sent: the circuit is open; come back at retryAt (ms since epoch, this process's clock). */
  | { kind: 'open'; retryAt: number; state: CircuitState };

interface LocalCircuit {
  state: CircuitState;
  /** nextProbeAt on this process's clock (the script's answer shifted by the Redis clock offset). */
  nextProbeAt: number;
  syncedAt: number;
  usedAt: number;
  ok: number;
  fail: number;
  /** When this process last saw the dependency fail: within a breaker window of it, admissions read Redis. */
  failedAt: number;
  syncing?: Promise<void>;
}

export interface CircuitEvents {
  transition(dependency: OutboundDependency, to: CircuitTransition): void;
}

/** The closed path's admission: one shared object, nothing allocated per call. */
export const PASS: Admission = Object.freeze({ kind: 'pass' });

export class CircuitBreakers {
  private readonly circuits = new Map<string, LocalCircuit>();
  private lastSweep = Date.now();

  constructor(
    private readonly store: CircuitStore,
    private readonly policy: BreakerPolicy,
    private readonly events: CircuitEvents,
    private readonly onError: (err: unknown) => void = () => undefined,
    /** false (OUTBOUND_CIRCUIT_BREAKERS=false): every call passes and nothing is recorded. */
    private readonly enabled = true,
  ) {}

  private local(dependency: OutboundDependency, target: string, now: number): LocalCircuit {
    const key = `${dependency}\u0000${target}`;
    let c = this.circuits.get(key);
    if (!c) {
      c = { state: 'closed', nextProbeAt: 0, syncedAt: 0, usedAt: now, ok: 0, fail: 0, failedAt: 0 };
      this.circuits.set(key, c);
      if (now - this.lastSweep > IDLE_MS) this.sweep(now);
    }
    c.usedAt = now;
    return c;
  }

  private sweep(now: number): void {
    this.lastSweep = now;
    for (const [key, c] of this.circuits) if (now - c.usedAt > IDLE_MS && c.ok + c.fail === 0 && !c.syncing) this.circuits.delete(key);
  }

  private apply(dependency: OutboundDependency, c: LocalCircuit, reply: CircuitReply): void {
    const offset = Date.now() - reply.now;
    c.state = reply.state;
    c.nextProbeAt = reply.nextProbeAt + offset;
    c.syncedAt = Date.now();
    if (reply.transition) this.events.transition(dependency, reply.transition);
  }

  /** Sends the pending outcomes and reads the state back; one sync in flight per circuit. */
  private sync(dependency: OutboundDependency, target: string, c: LocalCircuit): Promise<void> {
    if (c.syncing) return c.syncing;
    const ok = c.ok;
    const fail = c.fail;
    c.ok = 0;
    c.fail = 0;
    c.syncing = this.store
      .record(dependency, target, ok, fail)
      .then((reply) => this.apply(dependency, c, reply))
      .catch((err: unknown) => {
        c.syncedAt = Date.now(); // do not retry on every call while Redis is away
        this.onError(err);
      })
      .finally(() => {
        c.syncing = undefined;
      });
    return c.syncing;
  }

  /**
   * The closed path without a promise: PASS when the cached state is closed and fresh and the dependency has not
   * failed lately; undefined when admit() must decide (it may read Redis).
   */
  admitCached(dependency: OutboundDependency, target: string): Admission | undefined {
    if (!this.enabled) return PASS;
    const c = this.circuits.get(`${dependency}\u0000${target}`);
    if (!c || c.state !== 'closed') return undefined;
    const now = Date.now();
    if (now - c.syncedAt > REFRESH_MS || now - c.failedAt < this.policy.windowMs) return undefined;
    c.usedAt = now;
    return PASS;
  }

  /** May this call go out? Closed: yes, from memory. Open: no, until its probe time; then one probe across replicas. */
  async admit(dependency: OutboundDependency, target: string): Promise<Admission> {
    if (!this.enabled) return PASS;
    const now = Date.now();
    const c = this.local(dependency, target, now);
    // Healthy: the cached state (≤ REFRESH_MS old) decides, no round trip. Failing lately: the circuit may have
    // opened on another replica a moment ago, so the shared state decides every admission until the window passes.
    if (now - c.syncedAt > REFRESH_MS || now - c.failedAt < this.policy.windowMs) await this.sync(dependency, target, c);
    if (c.state === 'closed') return PASS;
    if (c.state === 'open' && Date.now() < c.nextProbeAt) return { kind: 'open', retryAt: c.nextProbeAt, state: 'open' };
    const token = randomUUID();
    try {
      const reply = await this.store.probe(dependency, target, token);
      this.apply(dependency, c, reply);
      if (reply.granted) return { kind: 'probe', token };
      if (reply.state === 'closed') return PASS;
      // Half-open with another replica's probe in flight: its answer comes within a call's time.
      const retryAt = reply.state === 'open' ? c.nextProbeAt : Date.now() + this.policy.openMs;
      return { kind: 'open', retryAt, state: reply.state };
    } catch (err) {
      this.onError(err);
      return PASS;
    }
  }

  /**
   * The call's outcome for the breaker: `true` the dependency answered, `false` it failed (5xx, 408, timeout,
   * network). Returns a promise only when it syncs with Redis (a failure, a full batch, a probe's result), so the
   * closed path's success costs no promise.
   */
  record(dependency: OutboundDependency, target: string, admission: Admission, ok: boolean): Promise<void> | undefined {
    if (!this.enabled) return undefined;
    const c = this.local(dependency, target, Date.now());
    if (admission.kind === 'probe') return this.recordProbe(dependency, target, c, admission.token, ok);
    if (admission.kind !== 'pass') return undefined;
    if (ok) c.ok++;
    else {
      c.fail++;
      c.failedAt = Date.now();
    }
    if (!ok || (c.ok >= BATCH_SIZE && Date.now() - c.syncedAt >= SUCCESS_SYNC_MS)) return this.sync(dependency, target, c);
    return undefined;
  }

  private async recordProbe(dependency: OutboundDependency, target: string, c: LocalCircuit, token: string, ok: boolean): Promise<void> {
    try {
      this.apply(dependency, c, await this.store.probeResult(dependency, target, token, ok));
    } catch (err) {
      this.onError(err);
    }
  }

  /** When an open circuit (as last read) lets its next probe through; undefined unless open. */
  nextProbeAt(dependency: OutboundDependency, target: string): number | undefined {
    const c = this.circuits.get(`${dependency}\u0000${target}`);
    return c?.state === 'open' ? c.nextProbeAt : undefined;
  }

  /** The admitted call was not sent after all (nothing to learn from it); a probe lease is handed back. */
  async cancel(dependency: OutboundDependency, target: string, admission: Admission): Promise<void> {
    if (admission.kind !== 'probe') return;
    try {
      await this.store.release(dependency, target, admission.token);
    } catch (err) {
      this.onError(err);
    }
  }
}
