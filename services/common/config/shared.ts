/** Environment read by every process: Redis, key prefix, logs, metrics listener, tracing, shutdown. */
import path from 'node:path';
import { Type, type Static } from 'typebox';

import { QUEUE_CATALOG, QUEUE_NAMES, type QueueName, RETENTION } from '../queue-catalog';
import { ConfigError, parseList } from './errors';
import { validateEnv } from './validate';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const TRACE_MODES = ['child', 'link'] as const;
export type TraceMode = (typeof TRACE_MODES)[number];

export const SharedEnv = Type.Object({
  NODE_ENV: Type.String({ default: 'production' }),
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379' }),
  // Redis Cluster seed nodes ("host:port,host:port"): when set, every connection is a cluster client and REDIS_URL
  // is not used. The client discovers the other nodes and follows failovers (services/common/redis.ts).
  REDIS_CLUSTER_NODES: Type.String({ pattern: '^\\s*([^\\s,:]+:\\d{1,5}\\s*(,\\s*|$))*$', default: '' }),
  // AUTH password for every cluster node (REDIS_URL carries its own for a single node).
  REDIS_CLUSTER_PASSWORD: Type.String({ default: '' }),
  // Replicas that must acknowledge an enqueue (Redis WAIT on the queue's node) before the API answers 202. Unset:
  // each queue's catalog durability (payments 1, others 0), applied when the queue's node has replicas. Set: this
  // many for every queue, replicas or not (0 = never wait). See docs/reliability.md: Redis replicates
  // asynchronously, so without WAIT a 202 can be lost in a failover.
  REDIS_WAIT_REPLICAS: Type.Optional(Type.Integer({ minimum: 0, maximum: 16 })),
  // At most 300 ms: the enqueue (add + WAIT) must answer within the API's 1 s (services/api/plugins/app/queues.ts).
  REDIS_WAIT_TIMEOUT_MS: Type.Integer({ minimum: 1, maximum: 300, default: 200 }),
  // BullMQ key prefix. Single node: keys are "<prefix>:<queue>:…" (unchanged). Cluster: each queue gets its own hash
  // tag "{<prefix>:<queue>}" (services/common/queue-keys.ts), so a queue's keys share a slot and queues spread.
  QUEUE_PREFIX: Type.String({ pattern: '^[^\\s:]+$', default: 'bull' }),
  METRICS_ENABLED: Type.Boolean({ default: true }),
  METRICS_HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  // Fault injection into the simulated providers: off in production; the native stack, demo and tests turn it on.
  FAULTS_ENABLED: Type.Boolean({ default: false }),
  SHUTDOWN_GRACE_MS: Type.Integer({ minimum: 0, default: 30_000 }),
  // How long a job that failed for good stays inspectable and replayable (console, failures API), and how many
  // such jobs each queue keeps at most. Memory cost per 100k failed jobs: docs/console.md. The payment ledger
  // remembers a charge longer than the longest allowed age (payment-ledger.ts), so a replay never charges twice.
  FAILED_RETENTION_S: Type.Integer({ minimum: 60, maximum: 7 * 24 * 3600, default: RETENTION.failed.age }),
  FAILED_RETENTION_COUNT: Type.Integer({ minimum: 1, maximum: 10_000_000, default: RETENTION.failed.count }),
  // An enum (not a union of literals) so a bad value's error lists the allowed ones.
  LOG_LEVEL: Type.Unsafe<(typeof LOG_LEVELS)[number]>({ type: 'string', enum: [...LOG_LEVELS], default: 'info' }),
  OTEL_SDK_DISABLED: Type.Boolean({ default: false }),
  OTEL_TRACES_SAMPLER: Type.Optional(Type.String()),
  OTEL_TRACES_SAMPLER_ARG: Type.Optional(Type.String()),
  // child: each attempt's span is a child of the producer span (one trace per job in Jaeger) and links to it;
  // link: each attempt starts its own trace and only links to the producer (long-lived or fan-in jobs).
  OTEL_BULLMQ_TRACE_MODE: Type.Unsafe<TraceMode>({ type: 'string', enum: [...TRACE_MODES], default: 'child' }),
  // The standard variable of @opentelemetry/auto-instrumentations-node (e.g. "http,ioredis,undici"). Unset: no
  // auto-instrumentation and no ambient context (the lean default, see telemetry/tracing.ts).
  OTEL_NODE_ENABLED_INSTRUMENTATIONS: Type.String({ pattern: '^[\\w.\\-\\s,]*$', default: '' }),
  // The threshold source (alerts, SLOs, load-test limits, the worker's memory limits): relative paths are taken from
  // the working directory — the repository root for npm scripts and tests, /app in the image (Dockerfile).
  THRESHOLDS_FILE: Type.String({ minLength: 1, default: 'observability/thresholds.yaml' }),
});
export type SharedEnv = Static<typeof SharedEnv>;

const ThresholdsFileEnv = Type.Pick(SharedEnv, ['THRESHOLDS_FILE']);

/**
 * THRESHOLDS_FILE alone, for the tools that need no other setting (observability generator, stack, tests; the
 * default of loadThresholds). Services read it from their Config (config.thresholdsFile).
 */
export function thresholdsFile(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(validateEnv<Static<typeof ThresholdsFileEnv>>(ThresholdsFileEnv, env).THRESHOLDS_FILE);
}

export interface ClusterNode {
  host: string;
  port: number;
}

/** "h1:p1, h2:p2" → nodes; empty → [] (single node through REDIS_URL). The schema pattern has vetted the form. */
function parseClusterNodes(raw: string): ClusterNode[] {
  return parseList(raw).map((entry) => {
    const at = entry.lastIndexOf(':');
    const port = Number(entry.slice(at + 1));
    if (!(port > 0 && port < 65536)) throw new ConfigError(`invalid configuration: REDIS_CLUSTER_NODES has a bad port in "${entry}"`);
    return { host: entry.slice(0, at), port };
  });
}

/** What an enqueue on one queue waits for before its 202 (services/api/replication-gate.ts). */
export interface ReplicaAcks {
  /** Replicas that must acknowledge the write; 0: none. */
  replicas: number;
  /**
   * true (the catalog's durability): wait only when the queue's node has replicas, for at most as many as it has.
   * false (REDIS_WAIT_REPLICAS set): always wait for `replicas`; fewer acknowledgements → 503.
   */
  onlyWithReplicas: boolean;
}

function replicaAcksByQueue(override: number | undefined): Record<QueueName, ReplicaAcks> {
  return Object.fromEntries(
    QUEUE_NAMES.map((q) => [
      q,
      override === undefined
        ? { replicas: QUEUE_CATALOG[q].durability.replicaAcks, onlyWithReplicas: true }
        : { replicas: override, onlyWithReplicas: false },
    ]),
  ) as Record<QueueName, ReplicaAcks>;
}

export function sharedConfig(env: SharedEnv) {
  return {
    redis: {
      url: env.REDIS_URL,
      clusterNodes: parseClusterNodes(env.REDIS_CLUSTER_NODES),
      clusterPassword: env.REDIS_CLUSTER_PASSWORD || undefined,
      /** Per queue: replica acknowledgements an enqueue waits for (catalog durability, or REDIS_WAIT_REPLICAS). */
      replicaAcks: replicaAcksByQueue(env.REDIS_WAIT_REPLICAS),
      waitTimeoutMs: env.REDIS_WAIT_TIMEOUT_MS,
    },
    queuePrefix: env.QUEUE_PREFIX,
    /** Absolute path of the threshold source (THRESHOLDS_FILE), read by services/common/thresholds.ts. */
    thresholdsFile: path.resolve(env.THRESHOLDS_FILE),
    metrics: { enabled: env.METRICS_ENABLED, host: env.METRICS_HOST, port: env.METRICS_PORT },
    /** Fault injection into the simulated providers (admin API and workers); off unless FAULTS_ENABLED=true. */
    faultsEnabled: env.FAULTS_ENABLED,
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS,
    /** removeOnFail of every job: dead letters kept this long (s) and at most this many per queue. */
    failedRetention: { age: env.FAILED_RETENTION_S, count: env.FAILED_RETENTION_COUNT },
    logLevel: env.LOG_LEVEL,
    tracing: {
      disabled: env.OTEL_SDK_DISABLED,
      samplerFromEnv: env.OTEL_TRACES_SAMPLER !== undefined,
      /** How an attempt's span relates to the producer span (OTEL_BULLMQ_TRACE_MODE). */
      mode: env.OTEL_BULLMQ_TRACE_MODE,
      /** Auto-instrumentations to load (OTEL_NODE_ENABLED_INSTRUMENTATIONS); empty = lean explicit mode. */
      instrumentations: parseList(env.OTEL_NODE_ENABLED_INSTRUMENTATIONS),
    },
  };
}
