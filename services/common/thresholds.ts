/**
 * The one loader of observability/thresholds.yaml (generator, worker config, stack, tests), and its schema.
 * Which file is read is configuration (THRESHOLDS_FILE, services/common/config/shared.ts). Every key is checked
 * against the TypeBox schema below; a key the schema does not name is an error naming its path, so a typo never
 * silently falls back to a default.
 *
 * Adding a key: add it to its section below — a per-queue alert level to QUEUE_LEVELS, a deployment-wide level to
 * GLOBAL_LEVELS, a pending duration to For, a link to Links, anything else to ThresholdsFile — then to
 * thresholds.yaml. Types follow from the schema; levels get the warning < critical check without more code.
 */
import { readFileSync } from 'node:fs';
import { type Static, Type } from 'typebox';
import { Value } from 'typebox/value';
import YAML from 'yaml';
import { thresholdsFile } from './config/shared';
import { QUEUE_NAMES } from './queue-catalog';

/** Objects reject keys they do not declare. */
const closed = { additionalProperties: false } as const;

const Level = Type.Object(
  { warning: Type.Number(), critical: Type.Number() },
  { ...closed, description: 'must be { warning: <number>, critical: <number> }' },
);
export type Level = Static<typeof Level>;

const Ratio = Type.Number({ exclusiveMinimum: 0, exclusiveMaximum: 1, description: 'must be a ratio strictly between 0 and 1 (0.999 = 99.9 %)' });
const Seconds = Type.Number({ exclusiveMinimum: 0, description: 'must be a positive number of seconds' });
const Milliseconds = Type.Number({ exclusiveMinimum: 0, description: 'must be a positive number of milliseconds' });
const DURATION = /^([0-9]+)(s|m|h|d|w)$/;
const Duration = Type.String({ pattern: DURATION.source, description: 'must be a Prometheus duration such as 30d or 5m (one unit)' });
const Url = Type.String({ pattern: '^https?://\\S+$', description: 'must be an http(s) URL' });

/** Per-queue alert levels: `defaults` sets every one, `queues.<queue>` may override any. */
const QUEUE_LEVELS = {
  /** waiting + prioritized jobs */
  queue_depth: Level,
  /** failed / (completed + failed), 5 m */
  job_error_ratio: Level,
  /** failed by timeout / (completed + failed), 5 m */
  job_timeout_ratio: Level,
  /** end to end (bullmq_job_e2e_seconds) p95, 5 m */
  job_latency_p95_seconds: Level,
};
export type PerQueueKey = keyof typeof QUEUE_LEVELS;

const QueueThresholds = Type.Object({ ...QUEUE_LEVELS, http_p95_ms: Milliseconds }, closed);
export type QueueThresholds = Static<typeof QueueThresholds>;

/** Deployment-wide alert levels. */
const GLOBAL_LEVELS = {
  /** worker RSS: the worker's memory guard defaults too (config/worker.ts) */
  worker_memory_bytes: Level,
  /** Redis used / maxmemory */
  redis_memory_ratio: Level,
  api_5xx_ratio: Level,
};

const QueueSlo = Type.Object(
  {
    /** Share of jobs that must end completed, e.g. 0.999. */
    success: Ratio,
    /** Share of completed jobs that must end within latency_bound_seconds of becoming eligible. */
    latency: Ratio,
    /** Must be a bucket boundary of bullmq_job_e2e_seconds (the slow ratio reads that bucket). */
    latency_bound_seconds: Seconds,
  },
  closed,
);
export type QueueSlo = Static<typeof QueueSlo>;

const Slo = Type.Object(
  {
    /** The compliance period, a Prometheus duration (30d). */
    period: Duration,
    /** Objectives of every catalog queue that `queues` does not list. */
    defaults: QueueSlo,
    queues: Type.Optional(Type.Record(Type.String(), QueueSlo)),
  },
  closed,
);

const ShareUpToOne = Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'must be a ratio above 0 and at most 1 (0.9 = 90 %)' });

/** BullMQWorkersSaturated: active jobs / the queue's worker slots (sum of bullmq_worker_concurrency). */
const Saturation = Type.Object({ busy_ratio: ShareUpToOne, for: Duration }, closed);

/** The dependency alerts (circuit breakers and quotas of services/worker/outbound). */
const Outbound = Type.Object(
  {
    circuit_open_for: Duration,
    /** Dependencies whose open circuit pages (severity page); the others warn. */
    page_dependencies: Type.Array(Type.String({ pattern: '^\\w+$', description: 'must be a dependency name' })),
    throttled_backlog_for: Duration,
    /** Soft timeouts / attempts over 5 m above which BullMQJobSoftTimeoutsHigh warns. */
    soft_timeout_ratio: ShareUpToOne,
  },
  closed,
);

/** BullMQQueuePaused: how long a paused queue may hold waiting jobs. */
const Paused = Type.Object({ for: Duration }, closed);

/** How long a condition must hold before its alert fires (the `for:` of the generated rules). */
const For = Type.Object({ default: Duration, queue_stuck_window: Duration, target_down: Duration, redis_down: Duration }, closed);

/** Where alerts link to. */
const Links = Type.Object({ runbook_base_url: Url, grafana_base_url: Url, console_base_url: Url, jaeger_base_url: Url }, closed);

/** observability/thresholds.yaml as written. */
export const ThresholdsFile = Type.Object(
  {
    defaults: QueueThresholds,
    queues: Type.Optional(Type.Record(Type.String(), Type.Partial(QueueThresholds, closed))),
    ...GLOBAL_LEVELS,
    /** k6 / no-k6 load-test threshold on the share of failed requests */
    loadtest_error_ratio: Type.Number({ minimum: 0, exclusiveMaximum: 1, description: 'must be a ratio from 0 to below 1' }),
    slo: Slo,
    saturation: Saturation,
    outbound: Outbound,
    paused: Paused,
    for: For,
    links: Links,
  },
  closed,
);

export interface SloConfig extends Static<typeof Slo> {
  queues: Record<string, QueueSlo>;
}

/** Thresholds as loaded: every catalog queue has an entry in `queues` (maybe empty) and in `slo.queues`. */
export interface Thresholds extends Omit<Static<typeof ThresholdsFile>, 'queues' | 'slo'> {
  queues: Record<string, Partial<QueueThresholds>>;
  slo: SloConfig;
}

/** Seconds in a single-unit Prometheus duration ("30d", "5m"). */
export function durationSeconds(d: string): number {
  const m = DURATION.exec(d);
  if (!m) throw new Error(`not a single-unit Prometheus duration: ${d}`);
  const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
  return Number(m[1]) * unitSeconds[m[2]!]!;
}

const dotted = (pointer: string) => pointer.slice(1).split('/').join('.');
const joinPath = (base: string, key: string) => (base ? `${base}.${key}` : key);

type SchemaNode = { description?: string; properties?: Record<string, SchemaNode>; patternProperties?: Record<string, SchemaNode> };

/** The schema that governs a dotted path (properties, or a record's value schema), for its description. */
function schemaAt(path: string): SchemaNode | undefined {
  let node: SchemaNode | undefined = ThresholdsFile as SchemaNode;
  for (const key of path ? path.split('.') : []) {
    node = node?.properties?.[key] ?? Object.values(node?.patternProperties ?? {})[0];
  }
  return node;
}

function valueAt(doc: unknown, path: string): unknown {
  let v = doc;
  for (const key of path ? path.split('.') : []) v = (v as Record<string, unknown> | undefined)?.[key];
  return v;
}

/** The schema's complaints as sentences naming each path (first complaint per path, at most 10). */
function schemaProblems(doc: unknown): string[] {
  const byPath = new Map<string, string>();
  const add = (at: string, text: string) => {
    if (!byPath.has(at)) byPath.set(at, text);
  };
  for (const e of Value.Errors(ThresholdsFile, doc)) {
    const base = dotted(e.instancePath);
    // TypeBox 1 reports an undeclared key twice: as the `false` schema at the key itself, and on its parent.
    if (e.keyword === 'boolean') {
      add(base, `${base} is not a known key (the schema in services/common/thresholds.ts names every allowed key)`);
    } else if (e.keyword === 'additionalProperties') {
      for (const key of e.params.additionalProperties) {
        const at = joinPath(base, key);
        add(at, `${at} is not a known key (the schema in services/common/thresholds.ts names every allowed key)`);
      }
    } else if (e.keyword === 'required') {
      for (const key of e.params.requiredProperties) {
        const at = joinPath(base, key);
        const description = schemaAt(at)?.description;
        add(at, description ? `${at} ${description} (missing)` : `${at} is missing`);
      }
    } else {
      const at = base || '(top level)';
      add(at, `${at} ${schemaAt(base)?.description ?? e.message.toLowerCase()} (found ${JSON.stringify(valueAt(doc, base))})`);
    }
    if (byPath.size >= 10) break;
  }
  return [...byPath.values()].slice(0, 10);
}

/** Every level of the file, by path: the per-queue ones (defaults and overrides) and the global ones. */
function levels(t: Static<typeof ThresholdsFile>): [string, Level | undefined][] {
  const perQueue = (prefix: string, set: Partial<QueueThresholds>) =>
    (Object.keys(QUEUE_LEVELS) as PerQueueKey[]).map((k) => [`${prefix}.${k}`, set[k]] as [string, Level | undefined]);
  return [
    ...perQueue('defaults', t.defaults),
    ...Object.entries(t.queues ?? {}).flatMap(([q, over]) => perQueue(`queues.${q}`, over)),
    ...(Object.keys(GLOBAL_LEVELS) as (keyof typeof GLOBAL_LEVELS)[]).map((k) => [k, t[k]] as [string, Level]),
  ];
}

/**
 * Loads thresholds.yaml for the queues of the catalog: every queue gets an entry (its overrides, or none: the
 * defaults) and SLOs (its own, or slo.defaults), so rules, dashboards and load tests cover a new queue without an
 * edit here; a queue named here but not in the catalog is an error (a typo would otherwise go unnoticed).
 */
export function loadThresholds(file = thresholdsFile(), queues: readonly string[] = QUEUE_NAMES): Thresholds {
  const doc: unknown = YAML.parse(readFileSync(file, 'utf8'));
  const problems = schemaProblems(doc);
  if (problems.length) throw new Error(`thresholds.yaml (${file}): ${problems.join('; ')}`);
  const t = doc as Static<typeof ThresholdsFile>;
  for (const [at, level] of levels(t)) {
    if (level && !(level.warning < level.critical)) throw new Error(`thresholds.yaml: ${at}: warning must be below critical`);
  }
  for (const [what, listed] of [['queues', t.queues ?? {}], ['slo.queues', t.slo.queues ?? {}]] as const) {
    const unknown = Object.keys(listed).filter((q) => !queues.includes(q));
    if (unknown.length) throw new Error(`thresholds.yaml: ${what} names ${unknown.join(', ')}, not in the queue catalog (${queues.join(', ')})`);
  }
  return {
    ...t,
    queues: Object.fromEntries(queues.map((q) => [q, t.queues?.[q] ?? {}])),
    slo: { ...t.slo, queues: Object.fromEntries(queues.map((q) => [q, t.slo.queues?.[q] ?? { ...t.slo.defaults }])) },
  };
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

/** The value for one queue: its override, else the default. */
export function forQueue<K extends keyof QueueThresholds>(t: Thresholds, queue: string, key: K): QueueThresholds[K] {
  return (t.queues[queue]?.[key] ?? t.defaults[key]);
}
