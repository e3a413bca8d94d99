/** What `npm run bench` measures and against which targets: every figure of the report is defined here. */
import type { LoadTarget } from '../scripts/lib/load-generator';

export interface Plan {
  /** Jobs per plain-BullMQ reference run. */
  baselineJobs: number;
  warmS: number;
  /** Length of one capacity step. */
  probeS: number;
  maxProbes: number;
  fixedS: number;
  /** Closed-loop saturation window of one overhead run. */
  abS: number;
  /** Fixed-rate (CPU per job) window of one overhead run. */
  abFixedS: number;
  abPairs: number;
  idleScrapes: number;
  /** [APIs, workers] per capacity search. */
  topologies: [number, number][];
  /** The fixed-rate stage also runs with 1 API + 2 workers. */
  fixedAlt: boolean;
  /** Interleaved rounds (plain BullMQ / default telemetry / disabled) of the cost stage. */
  costRounds: number;
  /** Jobs per plain-BullMQ cost run; the product runs for costS seconds (about as many jobs). */
  costJobs: number;
  costS: number;
  /** One profiled run of each kind after the measured rounds splits the CPU by component (bench/profile.ts). */
  costProfile: boolean;
  /** Interleaved rounds (direct / through the boundary) of the outbound stage, and provider calls (no work, 15 ms each) per run. */
  outboundRounds: number;
  outboundCalls: number;
  /** Closed-loop window of one single-node / cluster run, and interleaved rounds. */
  clusterS: number;
  clusterRounds: number;
  /** Repeats of contaminated windows and waits for a quiet machine stop once the run has used this long. */
  budgetMs: number;
}

export function planFor(quick: boolean): Plan {
  return quick
    ? { baselineJobs: 15_000, warmS: 2, probeS: 6, maxProbes: 4, fixedS: 10, abS: 6, abFixedS: 5, abPairs: 2, idleScrapes: 60, topologies: [[1, 1]], fixedAlt: false, costRounds: 3, costJobs: 10_000, costS: 4, costProfile: false, outboundRounds: 3, outboundCalls: 15_000, clusterS: 6, clusterRounds: 1, budgetMs: 0 }
    : { baselineJobs: 30_000, warmS: 3, probeS: 10, maxProbes: 4, fixedS: 30, abS: 15, abFixedS: 10, abPairs: 3, idleScrapes: 200, topologies: [[1, 1], [1, 2], [2, 2]], fixedAlt: true, costRounds: 3, costJobs: 40_000, costS: 12, costProfile: true, outboundRounds: 5, outboundCalls: 40_000, clusterS: 12, clusterRounds: 2, budgetMs: 600_000 };
}

export const FIXED_RATE = 2000;
export const AB_RATE = 2000;
/** The first capacity step (later topologies start just below the previous one's maximum). */
export const CAPACITY_START = 2000;

export const TARGETS = {
  e2eP99Ms: 250,
  apiP99Ms: 50,
  jobsPerS: 4000,
  ratio: 0.9,
  rssMB: 150,
  scrapeMs: 10,
  /** CPU per job of (API + worker + Redis) ÷ plain BullMQ's (producer + worker + Redis). */
  costRatio: 1.6,
  /** CPU per job of the stack ÷ the bare Fastify + BullMQ reference (bench/reference/bare). */
  costRatioBare: 1.25,
  /** CPU per job of the stack ÷ the typical instrumented reference (bench/reference/typical). */
  costRatioTypical: 0.8,
  /** Telemetry's share of the CPU per job (all on vs all off). */
  telemetryShare: 0.1,
  /** CPU the outbound boundary's closed path (circuits closed, quota not binding) adds per job, ÷ the stack's CPU per job. */
  outboundShare: 0.03,
};

/** Requests (or plain Queue.add calls) in flight in the cost stage's closed loop. */
export const COST_IN_FLIGHT = 32;

/** Other processes above this share of one core during a measured window make it contaminated: it is run again. */
export const MAX_OTHER_CPU = 15;
export const RETRY_LIMIT = 2;
/** Below this share of one core (whole machine) before a window, the machine counts as quiet. */
export const QUIET_CPU = 25;

export const API_KEY = 'bench-key-0123456789';
export const PREFIX = 'bench';
export const QUEUES = ['payments', 'notifications'] as const;
export type BenchQueue = (typeof QUEUES)[number];

const BODIES: Record<BenchQueue, string> = {
  payments: JSON.stringify({ data: { amount: 1250, currency: 'EUR', account: 'acct_bench_0001' } }),
  notifications: JSON.stringify({ data: { channel: 'email', to: 'bench@example.com', template: 'welcome' } }),
};

/**
 * Request i goes to targets[i % n]: alternating payments / notifications, spread over the API processes.
 * Every payment carries its own Idempotency-Key (clients must send one for payments): the load generator makes
 * it unique per request (scripts/lib/load-generator.ts), the port keeps the APIs' key spaces apart.
 */
export function loadTargets(apiPorts: number[], queues: readonly BenchQueue[] = QUEUES): LoadTarget[] {
  return apiPorts.flatMap((port) =>
    queues.map((q) => ({
      origin: `http://127.0.0.1:${port}`,
      path: `/v1/queues/${q}/jobs`,
      body: BODIES[q],
      ...(q === 'payments' ? { idempotencyKeyPrefix: `bench-${port}-` } : {}),
    })),
  );
}
