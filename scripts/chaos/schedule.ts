/**
 * The fault schedule of a campaign: a pure function of (seed, duration, topology), so a failing seed replays the
 * same faults at the same offsets (the report prints the schedule). Faults run in four lanes — processes, Redis,
 * providers, webhook target — each lane one fault at a time, the lanes independent: faults of different lanes
 * overlap (a worker killed while Redis is frozen), which is what single-fault tests never exercise.
 */

export const FAULT_KINDS = [
  'worker_kill',
  'api_kill',
  'redis_freeze',
  'redis_failover',
  'partition',
  'provider_outage',
  'provider_429',
  'webhook_hang',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export const TOPOLOGIES = ['single', 'replicated', 'cluster'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

export interface ScheduledFault {
  kind: FaultKind;
  /** Seconds after the load starts. */
  atS: number;
  /** How long the fault lasts before it is healed (a kill: until the restart), seconds. */
  durationS: number;
  /** Which instance (worker/API index) or which queue (provider faults). */
  target: string;
}

/** mulberry32: a tiny, well-known 32-bit PRNG; the same seed gives the same sequence on every Node version. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Which kinds a topology can inject: failover needs a replica; the partition needs Redis in its own netns. */
export function kindsFor(topology: Topology): FaultKind[] {
  return FAULT_KINDS.filter((k) => (k === 'redis_failover' ? topology !== 'single' : k === 'partition' ? topology === 'single' : true));
}

const LANES: Record<string, FaultKind[]> = {
  process: ['worker_kill', 'api_kill'],
  redis: ['redis_freeze', 'redis_failover', 'partition'],
  provider: ['provider_outage', 'provider_429'],
  webhook: ['webhook_hang'],
};

export interface ScheduleOptions {
  seed: number;
  durationS: number;
  topology: Topology;
  workers: number;
  apis: number;
}

/** Faults stop this long before the load ends, so the last one is healed while requests still flow. */
export const QUIET_TAIL_S = 10;

const round1 = (x: number) => Math.round(x * 10) / 10;

export function buildSchedule(o: ScheduleOptions): ScheduledFault[] {
  const random = prng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const between = (lo: number, hi: number) => lo + random() * (hi - lo);
  const allowed = new Set(kindsFor(o.topology));
  const lastStart = o.durationS - QUIET_TAIL_S;
  const out: ScheduledFault[] = [];
  for (const lane of Object.keys(LANES)) {
    const kinds = LANES[lane]!.filter((k) => allowed.has(k));
    // Each lane draws from the one sequence in a fixed order: the schedule depends on nothing but the inputs.
    let t = between(3, 10);
    while (t < lastStart) {
      const kind = pick(kinds);
      const durationS = round1(durationOf(kind, between));
      const target =
        kind === 'worker_kill' ? String(Math.floor(random() * o.workers))
        : kind === 'api_kill' ? String(Math.floor(random() * o.apis))
        : kind === 'provider_outage' || kind === 'provider_429' ? pick(['payments', 'notifications'] as const)
        : kind === 'webhook_hang' ? 'receiver'
        : 'redis';
      out.push({ kind, atS: round1(t), durationS, target });
      t += durationS + between(4, 14);
    }
  }
  return out.sort((a, b) => a.atS - b.atS || a.kind.localeCompare(b.kind));
}

function durationOf(kind: FaultKind, between: (lo: number, hi: number) => number): number {
  switch (kind) {
    case 'worker_kill':
    case 'api_kill':
      return between(0.5, 3); // down time before the restart
    case 'redis_freeze':
      return between(1, 8); // SIGSTOP … SIGCONT
    case 'redis_failover':
      return between(3, 6); // the old master stays down this long, then rejoins as a replica
    case 'partition':
      return between(1, 6);
    case 'provider_outage':
      return between(1, 5);
    case 'provider_429':
      return between(1, 5);
    case 'webhook_hang':
      return between(2, 8);
  }
}

/** One line per fault, as the report prints it. */
export function describeSchedule(s: readonly ScheduledFault[]): string[] {
  return s.map((f) => `${f.atS.toFixed(1).padStart(6)} s  ${f.kind.padEnd(15)} ${f.durationS.toFixed(1)} s  ${f.target}`);
}
