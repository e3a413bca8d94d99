/** What a bench run produced: the stages' results (saved with --json, rendered by report.ts). */
import type { Stage } from './cli';
import type { LoadResult } from '../scripts/lib/load-generator';
import type { CpuShare, E2e } from './measure';
import type { Plan } from './plan';
import type { Mode } from './stack';
import type { Summary } from './stats';
import type { ComponentShares, ProfileSummary } from './profile';

export interface BaselineRun {
  variant: 'plain' | 'product';
  addPerS: number;
  endToEndPerS: number;
  /** CPU ms per job: producer, worker, redis. */
  cpuMsPerJob: { producer: number; worker: number; redis: number };
}

export interface Baseline {
  bulkAddPerS: number;
  drainPerS: number;
  runs: BaselineRun[];
}

export interface Fixed {
  topology: string;
  load: LoadResult;
  e2e: E2e;
  /** p99Latency of the API's own GET /queue/payments/metrics (last 500 jobs), for comparison. */
  compatP99: number;
  scrapeLoad: { api: Summary; worker: Summary };
  scrapeIdle: { api: Summary; worker: Summary };
  /** Bytes: peak (VmHWM) of worker and API, the worker's own gauge, and the worker's RSS before any load. */
  rss: { worker: number; api: number; workerMetric: number; workerIdle: number };
  cross: { enqueuedMetric: number; completedMetric: number; addedRedis: number; doneRedis: number };
  cpu: CpuShare;
  backlogEnd: number;
  spans: { requests: number; bytes: number };
  redis: { usedMB: number; ledger: number; charges: number };
}

export interface Probe {
  rate: number;
  load: LoadResult;
  completedPerS: number;
  backlogEnd: number;
  ok: boolean;
  why: string;
  cpu: CpuShare;
}

export interface Capacity {
  apis: number;
  workers: number;
  probes: Probe[];
  best: Probe | undefined;
}

export interface AbRun {
  mode: Mode;
  acceptedPerS: number;
  completedPerS: number;
  sustainedPerS: number;
  p99: number;
  cpu: CpuShare;
  workerPeakMB: number;
  /** api + worker + redis CPU ms per job at AB_RATE. */
  cpuMsPerJob: number;
  /** api + worker only (telemetry lives there; Redis does the same work in both modes). */
  appMsPerJob: number;
  redisMsPerJob: number;
  fixedP99: number;
}

export interface Overhead {
  runs: AbRun[];
  ratio: number;
  ratioAccepted: number;
  ratioCompleted: number;
  cpuRatio: number;
  appCpuRatio: number;
  /** CPU-cost ratio disabled ÷ auto-instrumentation (whole system); absent in results from before that mode. */
  autoCpuRatio?: number;
  /** API + worker CPU per job, auto-instrumentation ÷ default. */
  autoVsDefaultAppCpu?: number;
}

/** CPU ms per job of one cost run, by process role; `front` = the plain producer or the API. */
export interface CostRun {
  /** plain BullMQ, the bare and typical reference builds (bench/reference/), the product with telemetry on / off. */
  kind: 'plain' | 'bare' | 'typical' | 'default' | 'disabled';
  jobs: number;
  jobsPerS: number;
  cpuMsPerJob: { front: number; worker: number; redis: number; total: number };
  /** Other processes' CPU during the run, % of one core (contamination). */
  otherPct: number;
  /** Redis commands per job by command (INFO commandstats over the measured window); absent in older results. */
  redisCommandsPerJob?: Record<string, number>;
}

export interface CostMedian {
  front: number;
  worker: number;
  redis: number;
  total: number;
}

export interface Cost {
  runs: CostRun[];
  /** Medians of each kind's total CPU ms per job. */
  /** bare and typical are absent in results from before the reference builds. */
  median: Record<'plain' | 'default' | 'disabled', CostMedian> & Partial<Record<'bare' | 'typical', CostMedian>>;
  /** median(default) ÷ median(plain): the product's cost per job against plain BullMQ (goal ≤ 1). */
  ratio: number;
  /** median(default) ÷ median(bare) and ÷ median(typical); absent in results from before the reference builds. */
  ratioBare?: number;
  ratioTypical?: number;
  /** default ÷ plain, bare, typical within each round: the spread of the ratios. */
  ratioByRound?: { plain: number[]; bare: number[]; typical: number[] };
  /** median(default) ÷ median(disabled) − 1: telemetry's share (goal ≤ 0.10); per round alongside. */
  telemetryShare: number;
  telemetryShareByRound: number[];
  /** Profiled runs (not measured for CPU): share of each process's CPU per component. */
  components?: { plainProducer?: ComponentShares; plainWorker?: ComponentShares; api?: ComponentShares; worker?: ComponentShares; apiDisabled?: ComponentShares; workerDisabled?: ComponentShares };
}

/** CPU per call of one outbound run: provider calls (no work, 15 ms each) made directly or through the outbound boundary. */
export interface OutboundRun {
  mode: 'direct' | 'guarded';
  calls: number;
  callsPerS: number;
  /** This process (the caller) and Redis (circuit and quota scripts). */
  cpuMsPerCall: { process: number; redis: number; total: number };
}

export interface OutboundCost {
  runs: OutboundRun[];
  /** median(guarded − direct) per round: what the boundary's closed path adds to each outbound call. */
  cpuMsPerCall: { process: number; redis: number; total: number };
  /** cpuMsPerCall.total ÷ the stack's CPU per job (cost stage, default telemetry; one outbound call per job). */
  shareOfJob: number;
  stackCpuMsPerJob: number;
}

export interface ClusterRun {
  topology: 'single' | 'cluster';
  acceptedPerS: number;
  completedPerS: number;
  sustainedPerS: number;
  p99: number;
  /** CPU % of one core per Redis process (one, or one per master), and API / worker / load generator. */
  redisPct: number[];
  cpu: CpuShare;
}

export interface ClusterCompare {
  runs: ClusterRun[];
  single: number;
  cluster: number;
  /** Which master holds which queue (CLUSTER KEYSLOT of each queue's hash tag). */
  placement: string[];
}

export interface Machine {
  vcpus: number;
  cpuModel: string;
  memGiB: number;
  kernel: string;
  node: string;
}

export interface BenchResults {
  /** ISO time the run started. */
  startedAt: string;
  durationS: number;
  quick: boolean;
  stages: Stage[];
  concurrency: number;
  /** Payments carried a unique Idempotency-Key each (absent in results of runs from before the bench sent one). */
  idempotencyKeys?: boolean;
  plan: Plan;
  machine: Machine;
  baseline?: Baseline;
  fixed?: Fixed;
  fixedAlt?: Fixed;
  capacity: Capacity[];
  overhead?: Overhead;
  cost?: Cost;
  outbound?: OutboundCost;
  cluster?: ClusterCompare;
  profiles?: ProfileSummary[];
  /** Windows measured on a busy machine. */
  contention: string[];
}
