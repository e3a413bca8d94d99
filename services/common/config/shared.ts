/** Environment read by every process: Redis, key prefix, logs, metrics listener, tracing, shutdown. */
import { Type, type Static } from '@sinclair/typebox';

import { RETENTION } from '../queue-catalog';
import { parseList } from './errors';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export const TRACE_MODES = ['child', 'link'] as const;
export type TraceMode = (typeof TRACE_MODES)[number];

export const SharedEnv = Type.Object({
  NODE_ENV: Type.String({ default: 'production' }),
  REDIS_URL: Type.String({ pattern: '^rediss?://', default: 'redis://127.0.0.1:6379' }),
  // BullMQ key prefix. Wrap it in braces ("{bull}") to hash-tag every key of a queue onto one Redis Cluster slot.
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
});
export type SharedEnv = Static<typeof SharedEnv>;

export function sharedConfig(env: SharedEnv) {
  return {
    redisUrl: env.REDIS_URL,
    queuePrefix: env.QUEUE_PREFIX,
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
