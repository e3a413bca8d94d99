/** Loads and validates observability/thresholds.yaml: the one threshold source. */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

export interface Level {
  warning: number;
  critical: number;
}

export interface QueueThresholds {
  queue_depth: Level;
  active_jobs: Level;
  job_error_ratio: Level;
  job_timeout_ratio: Level;
  job_latency_p95_seconds: Level;
  http_p95_ms: number;
}

export type PerQueueKey = Exclude<keyof QueueThresholds, 'http_p95_ms'>;

export interface Thresholds {
  defaults: QueueThresholds;
  queues: Record<string, Partial<QueueThresholds>>;
  worker_memory_bytes: Level;
  redis_memory_ratio: Level;
  api_5xx_ratio: Level;
  loadtest_error_ratio: number;
  for: { default: string; queue_stuck_window: string; target_down: string; redis_down: string };
  links: { runbook_base_url: string; grafana_base_url: string };
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

export function loadThresholds(file = repoPath('observability', 'thresholds.yaml')): Thresholds {
  const t = YAML.parse(readFileSync(file, 'utf8')) as Thresholds;
  for (const key of ['queue_depth', 'active_jobs', 'job_error_ratio', 'job_timeout_ratio', 'job_latency_p95_seconds'] as const) {
    assertLevel(`defaults.${key}`, t.defaults?.[key]);
    for (const [q, over] of Object.entries(t.queues ?? {})) if (over[key]) assertLevel(`queues.${q}.${key}`, over[key]);
  }
  for (const key of ['worker_memory_bytes', 'redis_memory_ratio', 'api_5xx_ratio'] as const) assertLevel(key, t[key]);
  return t;
}

/** The value for one queue: its override, else the default. */
export function forQueue<K extends keyof QueueThresholds>(t: Thresholds, queue: string, key: K): QueueThresholds[K] {
  return (t.queues[queue]?.[key] ?? t.defaults[key]) as QueueThresholds[K];
}
