/** Loads and validates observability/thresholds.yaml: the one threshold source, and its one loader (generator, worker config, stack, tests). */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { QUEUE_NAMES } from './queue-catalog';

export interface Level {
  warning: number;
  critical: number;
}

export interface QueueThresholds {
  queue_depth: Level;
  job_error_ratio: Level;
  job_timeout_ratio: Level;
  job_latency_p95_seconds: Level;
  http_p95_ms: number;
}

export type PerQueueKey = Exclude<keyof QueueThresholds, 'http_p95_ms'>;

/** One queue's service-level objectives (thresholds.yaml `slo.queues`). */
export interface QueueSlo {
  /** Share of jobs that must end completed, e.g. 0.999. */
  success: number;
  /** Share of completed jobs that must end within latency_bound_seconds of becoming eligible. */
  latency: number;
  /** Must be a bucket boundary of bullmq_job_e2e_seconds (the slow ratio reads that bucket). */
  latency_bound_seconds: number;
}

export interface SloConfig {
  /** The compliance period, a Prometheus duration (30d). */
  period: string;
  /** Objectives of every catalog queue that `queues` does not list. */
  defaults: QueueSlo;
  queues: Record<string, QueueSlo>;
}

/** thresholds.yaml `saturation`: BullMQWorkersSaturated. */
export interface SaturationConfig {
  /** Share of a queue's worker slots busy (0 < r ≤ 1). */
  busy_ratio: number;
  for: string;
}

/** thresholds.yaml `outbound`: the dependency alerts. */
export interface OutboundConfig {
  circuit_open_for: string;
  /** Dependencies whose open circuit pages (severity page); the others warn. */
  page_dependencies: string[];
  throttled_backlog_for: string;
  /** Soft timeouts / attempts over 5 m above which BullMQJobSoftTimeoutsHigh warns. */
  soft_timeout_ratio: number;
}

export interface Thresholds {
  defaults: QueueThresholds;
  queues: Record<string, Partial<QueueThresholds>>;
  worker_memory_bytes: Level;
  redis_memory_ratio: Level;
  api_5xx_ratio: Level;
  loadtest_error_ratio: number;
  slo: SloConfig;
  saturation: SaturationConfig;
  outbound: OutboundConfig;
  paused: { for: string };
  for: { default: string; queue_stuck_window: string; target_down: string; redis_down: string };
  links: { runbook_base_url: string; grafana_base_url: string; console_base_url: string; jaeger_base_url: string };
}

/** The repository root: the nearest folder above this file holding observability/thresholds.yaml (src or dist). */
export const REPO_ROOT = (() => {
  let dir = __dirname;
  while (!existsSync(path.join(dir, 'observability', 'thresholds.yaml'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new Error('observability/thresholds.yaml not found above ' + __dirname);
    dir = up;
  }
  return dir;
})();

export function repoPath(...parts: string[]): string {
  return path.join(REPO_ROOT, ...parts);
}

function assertLevel(name: string, v: unknown): asserts v is Level {
  const l = v as Level;
  if (typeof l?.warning !== 'number' || typeof l?.critical !== 'number') {
    throw new Error(`thresholds.yaml: ${name} needs numeric warning and critical`);
  }
  if (!(l.warning < l.critical)) throw new Error(`thresholds.yaml: ${name}: warning must be below critical`);
}

const DURATION = /^([0-9]+)(s|m|h|d|w)$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds in a single-unit Prometheus duration ("30d", "5m"). */
export function durationSeconds(d: string): number {
  const m = DURATION.exec(d);
  if (!m) throw new Error(`not a single-unit Prometheus duration: ${d}`);
  return Number(m[1]) * UNIT_SECONDS[m[2]!]!;
}

function assertSlo(slo: SloConfig | undefined): asserts slo is SloConfig {
  if (!slo || typeof slo.period !== 'string' || !DURATION.test(slo.period)) {
    throw new Error('thresholds.yaml: slo.period must be a Prometheus duration such as 30d');
  }
  for (const [q, s] of [['defaults', slo.defaults] as const, ...Object.entries(slo.queues ?? {}).map(([k, v]) => [`queues.${k}`, v] as const)]) {
    for (const key of ['success', 'latency'] as const) {
      if (typeof s?.[key] !== 'number' || !(s[key] > 0 && s[key] < 1)) {
        throw new Error(`thresholds.yaml: slo.${q}.${key} must be a ratio strictly between 0 and 1 (0.999 = 99.9 %)`);
      }
    }
    if (typeof s.latency_bound_seconds !== 'number' || !(s.latency_bound_seconds > 0)) {
      throw new Error(`thresholds.yaml: slo.${q}.latency_bound_seconds must be a positive number of seconds`);
    }
  }
}

const ratio = (v: unknown, max: number) => typeof v === 'number' && v > 0 && v <= max;

function assertAlertSections(t: Thresholds): void {
  const duration = (name: string, v: unknown) => {
    if (typeof v !== 'string' || !DURATION.test(v)) throw new Error(`thresholds.yaml: ${name} must be a Prometheus duration such as 10m`);
  };
  if (!ratio(t.saturation?.busy_ratio, 1)) throw new Error('thresholds.yaml: saturation.busy_ratio must be a ratio above 0 and at most 1 (0.9 = 90 % of the slots busy)');
  duration('saturation.for', t.saturation.for);
  duration('outbound.circuit_open_for', t.outbound?.circuit_open_for);
  duration('outbound.throttled_backlog_for', t.outbound.throttled_backlog_for);
  if (!Array.isArray(t.outbound.page_dependencies) || !t.outbound.page_dependencies.every((d) => typeof d === 'string' && /^\w+$/.test(d))) {
    throw new Error('thresholds.yaml: outbound.page_dependencies must be a list of dependency names');
  }
  if (!ratio(t.outbound.soft_timeout_ratio, 1)) throw new Error('thresholds.yaml: outbound.soft_timeout_ratio must be a ratio above 0 and at most 1');
  duration('paused.for', t.paused?.for);
}

/**
 * The slow ratio reads the `le` bucket equal to the latency bound: a bound between two buckets would silently
 * be measured at another latency, so it is an error.
 */
export function assertSloBoundsAreBuckets(slo: SloConfig, e2eBuckets: readonly number[]): void {
  for (const [q, s] of Object.entries(slo.queues)) {
    if (!e2eBuckets.includes(s.latency_bound_seconds)) {
      throw new Error(
        `thresholds.yaml: slo.queues.${q}.latency_bound_seconds ${s.latency_bound_seconds} is not a bucket boundary of bullmq_job_e2e_seconds (${e2eBuckets.join(', ')})`,
      );
    }
  }
}

/**
 * Loads thresholds.yaml for the queues of the catalog: every queue gets an entry (its overrides, or none: the
 * defaults) and SLOs (its own, or slo.defaults), so rules, dashboards and load tests cover a new queue without an
 * edit here; a queue named here but not in the catalog is an error (a typo would otherwise go unnoticed).
 */
export function loadThresholds(file = repoPath('observability', 'thresholds.yaml'), queues: readonly string[] = QUEUE_NAMES): Thresholds {
  const t = YAML.parse(readFileSync(file, 'utf8')) as Thresholds;
  assertSlo(t.slo);
  for (const [what, listed] of [['queues', t.queues ?? {}], ['slo.queues', t.slo.queues ?? {}]] as const) {
    const unknown = Object.keys(listed).filter((q) => !queues.includes(q));
    if (unknown.length) throw new Error(`thresholds.yaml: ${what} names ${unknown.join(', ')}, not in the queue catalog (${queues.join(', ')})`);
  }
  t.queues = Object.fromEntries(queues.map((q) => [q, t.queues?.[q] ?? {}]));
  t.slo.queues = Object.fromEntries(queues.map((q) => [q, t.slo.queues?.[q] ?? { ...t.slo.defaults }]));
  assertAlertSections(t);
  for (const key of ['queue_depth', 'job_error_ratio', 'job_timeout_ratio', 'job_latency_p95_seconds'] as const) {
    assertLevel(`defaults.${key}`, t.defaults?.[key]);
    for (const [q, over] of Object.entries(t.queues ?? {})) if (over[key]) assertLevel(`queues.${q}.${key}`, over[key]);
  }
  for (const key of ['worker_memory_bytes', 'redis_memory_ratio', 'api_5xx_ratio'] as const) assertLevel(key, t[key]);
  return t;
}

/** The value for one queue: its override, else the default. */
export function forQueue<K extends keyof QueueThresholds>(t: Thresholds, queue: string, key: K): QueueThresholds[K] {
  return (t.queues[queue]?.[key] ?? t.defaults[key]);
}
