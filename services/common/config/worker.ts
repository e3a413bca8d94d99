/** Environment of the worker process: which queues, per-queue concurrency and timeouts, stall and memory limits, webhooks. */
import { Type, type Static } from 'typebox';
import { QUEUE_NAMES, type QueueName, isQueueName } from '../queue-catalog';
import { parseOutboundRateLimits } from './outbound';
import { loadThresholds } from '../thresholds';
import { ConfigError, parseList } from './errors';
import { type EffectiveQueuePolicy, effectiveQueuePolicy } from './queue-policy';

export const WorkerEnv = Type.Object({
  WORKER_QUEUES: Type.String({ default: '' }),
  WORKER_LOCK_DURATION_MS: Type.Optional(Type.Integer({ minimum: 100 })),
  WORKER_STALLED_INTERVAL_MS: Type.Optional(Type.Integer({ minimum: 100 })),
  WORKER_MAX_STALLED_COUNT: Type.Optional(Type.Integer({ minimum: 0 })),
  WORKER_MEMORY_SOFT_LIMIT_BYTES: Type.Optional(Type.Integer({ minimum: 0 })),
  WORKER_MEMORY_HARD_LIMIT_BYTES: Type.Optional(Type.Integer({ minimum: 0 })),
  WEBHOOK_SIGNING_SECRET: Type.String({ default: '' }),
  WEBHOOK_ALLOW_PRIVATE: Type.Boolean({ default: false }),
  WEBHOOK_MAX_RETRY_AFTER_MS: Type.Integer({ minimum: 1000, default: 60_000 }),
  // Deliveries to one target host running at once per worker, so slow targets cannot take every slot.
  WEBHOOK_MAX_PER_HOST: Type.Integer({ minimum: 1, maximum: 1000, default: 2 }),
  // name=N/unit[,…] over the catalog's outbound quotas (config/outbound.ts).
  OUTBOUND_RATE_LIMITS: Type.String({ default: '' }),
  // false: no circuit breaker at the outbound boundary (quotas and AIMD stay) — for a dependency that has its own
  // protection in front of it, or a drill or test that needs an outage to fail jobs through their attempts.
  OUTBOUND_CIRCUIT_BREAKERS: Type.Boolean({ default: true }),
});
export type WorkerEnv = Static<typeof WorkerEnv>;

const concurrencyVar = (queue: string) => `WORKER_CONCURRENCY_${queue.toUpperCase()}`;
const timeoutVar = (queue: string) => `WORKER_TIMEOUT_MS_${queue.toUpperCase()}`;

/** WORKER_CONCURRENCY_<QUEUE> and WORKER_TIMEOUT_MS_<QUEUE> for every catalog queue: named by the catalog, so apart. */
export const PerQueueEnv = Type.Object(
  Object.fromEntries(
    QUEUE_NAMES.flatMap((q) => [
      [concurrencyVar(q), Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 }))],
      [timeoutVar(q), Type.Optional(Type.Integer({ minimum: 10, maximum: 3_600_000 }))],
    ]),
  ),
);
export type PerQueueEnv = Partial<Record<string, number>>;

/**
 * Worker memory limits default to the warning/critical levels of the one threshold source
 * (observability/thresholds.yaml), so the worker drains at the same line the alert pages on.
 */
function thresholdMemoryDefaults(file: string): { soft: number; hard: number } {
  try {
    const { warning, critical } = loadThresholds(file).worker_memory_bytes;
    return { soft: warning, hard: critical };
  } catch (err) {
    throw new ConfigError(`invalid configuration: THRESHOLDS_FILE ${file} (it sets the worker memory limits): ${(err as Error).message}`);
  }
}

const perQueue = <T>(fn: (q: QueueName) => T) => Object.fromEntries(QUEUE_NAMES.map((q) => [q, fn(q)])) as Record<QueueName, T>;

export function workerConfig(env: WorkerEnv, queueEnv: PerQueueEnv, thresholdsFile: string) {
  const requested = parseList(env.WORKER_QUEUES);
  const unknown = requested.filter((q) => !isQueueName(q));
  if (unknown.length > 0) {
    throw new ConfigError(
      `invalid configuration: WORKER_QUEUES names unknown queue(s) ${unknown.join(', ')}; known: ${QUEUE_NAMES.join(', ')}`,
    );
  }
  const queues = requested.length > 0 ? requested.filter(isQueueName) : QUEUE_NAMES;

  const memoryDefaults = thresholdMemoryDefaults(thresholdsFile);
  const soft = env.WORKER_MEMORY_SOFT_LIMIT_BYTES ?? memoryDefaults.soft;
  const hard = env.WORKER_MEMORY_HARD_LIMIT_BYTES ?? memoryDefaults.hard;
  if (hard > 0 && soft > hard) {
    throw new ConfigError('invalid configuration: WORKER_MEMORY_SOFT_LIMIT_BYTES must not exceed WORKER_MEMORY_HARD_LIMIT_BYTES');
  }
  const secret = env.WEBHOOK_SIGNING_SECRET;
  if (secret !== '' && secret.length < 16) {
    throw new ConfigError('invalid configuration: WEBHOOK_SIGNING_SECRET must be at least 16 characters');
  }

  return {
    worker: {
      queues,
      /** Each queue's effective policy (config/queue-policy.ts): the catalog's, with the overrides above applied. */
      policies: perQueue<EffectiveQueuePolicy>((q) =>
        effectiveQueuePolicy(q, {
          concurrency: queueEnv[concurrencyVar(q)],
          timeoutMs: queueEnv[timeoutVar(q)],
          lockDurationMs: env.WORKER_LOCK_DURATION_MS,
          stalledIntervalMs: env.WORKER_STALLED_INTERVAL_MS,
          maxStalledCount: env.WORKER_MAX_STALLED_COUNT,
        }),
      ),
      memorySoftLimitBytes: soft,
      memoryHardLimitBytes: hard,
    },
    /** Outbound quotas per dependency: the catalog's, overridden by OUTBOUND_RATE_LIMITS. */
    outboundQuotas: parseOutboundRateLimits(env.OUTBOUND_RATE_LIMITS),
    /** OUTBOUND_CIRCUIT_BREAKERS: false lets every call through whatever its dependency did. */
    circuitBreakers: env.OUTBOUND_CIRCUIT_BREAKERS,
    webhooks: {
      signingSecret: secret,
      allowPrivate: env.WEBHOOK_ALLOW_PRIVATE,
      maxRetryAfterMs: env.WEBHOOK_MAX_RETRY_AFTER_MS,
      maxPerHost: env.WEBHOOK_MAX_PER_HOST,
    },
  };
}
