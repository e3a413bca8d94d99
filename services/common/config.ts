/**
 * Configuration: the only module that reads process.env. Parsed and validated once, at boot;
 * a bad value stops the process with a message naming the variable (see exitOnConfigError).
 */
import envSchema from 'env-schema';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { QUEUE_CATALOG, QUEUE_NAMES, QueueName, RETENTION, isQueueName } from './queue-catalog';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/**
 * Worker memory limits default to the warning/critical levels of the one threshold source
 * (observability/thresholds.yaml), so the worker drains at the same line the alert pages on.
 */
function thresholdMemoryDefaults(): { soft: number; hard: number } {
  let dir = __dirname;
  for (;;) {
    const file = path.join(dir, 'observability', 'thresholds.yaml');
    if (existsSync(file)) {
      const t = YAML.parse(readFileSync(file, 'utf8')) as { worker_memory_bytes?: { warning?: number; critical?: number } };
      const m = t.worker_memory_bytes;
      if (typeof m?.warning !== 'number' || typeof m?.critical !== 'number') {
        throw new ConfigError(`${file}: worker_memory_bytes needs numeric warning and critical`);
      }
      return { soft: m.warning, hard: m.critical };
    }
    const up = path.dirname(dir);
    if (up === dir) throw new ConfigError('observability/thresholds.yaml not found (it sets the worker memory limits)');
    dir = up;
  }
}

function concurrencyVar(queue: string): string {
  return `WORKER_CONCURRENCY_${queue.toUpperCase()}`;
}

function timeoutVar(queue: string): string {
  return `WORKER_TIMEOUT_MS_${queue.toUpperCase()}`;
}

const schema = {
  type: 'object',
  required: [],
  properties: {
    NODE_ENV: { type: 'string', default: 'production' },
    REDIS_URL: { type: 'string', pattern: '^rediss?://', default: 'redis://127.0.0.1:6379' },
    // BullMQ key prefix. Wrap it in braces ("{bull}") to hash-tag every key of a queue onto one Redis Cluster slot.
    QUEUE_PREFIX: { type: 'string', pattern: '^[^\\s:]+$', default: 'bull' },
    API_HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    API_PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 3000 },
    API_KEYS: { type: 'string', default: '' },
    // Operators' keys: only these reach /v1/admin/* and the console; never accepted as client keys.
    ADMIN_API_KEYS: { type: 'string', default: '' },
    // Fault injection into the simulated providers: off in production; the native stack, demo and tests turn it on.
    FAULTS_ENABLED: { type: 'boolean', default: false },
    // How long an Idempotency-Key is remembered, independent of completed-job retention.
    IDEMPOTENCY_TTL_S: { type: 'integer', minimum: 60, maximum: 30 * 24 * 3600, default: 86_400 },
    // How long a job that failed for good stays inspectable and replayable (console, failures API), and how many
    // such jobs each queue keeps at most. Memory cost per 100k failed jobs: docs/console.md. The payment ledger
    // remembers a charge for 7 days, so a replay within the window never charges twice: the age cannot exceed it.
    FAILED_RETENTION_S: { type: 'integer', minimum: 60, maximum: 7 * 24 * 3600, default: RETENTION.failed.age },
    FAILED_RETENTION_COUNT: { type: 'integer', minimum: 1, maximum: 10_000_000, default: RETENTION.failed.count },
    API_BODY_LIMIT_BYTES: { type: 'integer', minimum: 1024, default: 65536 },
    API_REQUEST_TIMEOUT_MS: { type: 'integer', minimum: 100, default: 10_000 },
    API_CONNECTION_TIMEOUT_MS: { type: 'integer', minimum: 100, default: 5_000 },
    // Per bearer key, shared by every API replica through Redis. 0 disables the limit.
    API_RATE_LIMIT_MAX: { type: 'integer', minimum: 0, default: 1000 },
    API_RATE_LIMIT_WINDOW_MS: { type: 'integer', minimum: 100, default: 1000 },
    // Wrong keys per client address and window before that address gets 429 on every keyed route. 0 disables.
    API_AUTH_FAILURE_LIMIT_MAX: { type: 'integer', minimum: 0, default: 10 },
    API_AUTH_FAILURE_WINDOW_MS: { type: 'integer', minimum: 1000, default: 60_000 },
    // Load shedding: above these the API answers 503 + Retry-After instead of queueing more work. 0 disables.
    API_MAX_EVENT_LOOP_DELAY_MS: { type: 'integer', minimum: 0, default: 1000 },
    API_MAX_RSS_BYTES: { type: 'integer', minimum: 0, default: 0 },
    METRICS_ENABLED: { type: 'boolean', default: true },
    METRICS_HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    METRICS_PORT: { type: 'integer', minimum: 0, maximum: 65535 },
    WORKER_QUEUES: { type: 'string', default: '' },
    WORKER_LOCK_DURATION_MS: { type: 'integer', minimum: 100 },
    WORKER_STALLED_INTERVAL_MS: { type: 'integer', minimum: 100 },
    WORKER_MAX_STALLED_COUNT: { type: 'integer', minimum: 0 },
    WORKER_MEMORY_SOFT_LIMIT_BYTES: { type: 'integer', minimum: 0 },
    WORKER_MEMORY_HARD_LIMIT_BYTES: { type: 'integer', minimum: 0 },
    WEBHOOK_SIGNING_SECRET: { type: 'string', default: '' },
    WEBHOOK_ALLOW_PRIVATE: { type: 'boolean', default: false },
    WEBHOOK_MAX_RETRY_AFTER_MS: { type: 'integer', minimum: 1000, default: 60_000 },
    // Deliveries to one target host running at once per worker, so slow targets cannot take every slot.
    WEBHOOK_MAX_PER_HOST: { type: 'integer', minimum: 1, maximum: 1000, default: 2 },
    SHUTDOWN_GRACE_MS: { type: 'integer', minimum: 0, default: 30_000 },
    LOG_LEVEL: { type: 'string', enum: LOG_LEVELS, default: 'info' },
    OTEL_SDK_DISABLED: { type: 'boolean', default: false },
    OTEL_TRACES_SAMPLER: { type: 'string' },
    OTEL_TRACES_SAMPLER_ARG: { type: 'string' },
    ...Object.fromEntries(
      QUEUE_NAMES.map((q) => [concurrencyVar(q), { type: 'integer', minimum: 1, maximum: 1000 }]),
    ),
    ...Object.fromEntries(QUEUE_NAMES.map((q) => [timeoutVar(q), { type: 'integer', minimum: 10, maximum: 3_600_000 }])),
  },
} as const;

type RawEnv = Record<string, string | number | boolean | undefined>;

export interface Config {
  redisUrl: string;
  queuePrefix: string;
  api: {
    host: string;
    port: number;
    keys: string[];
    adminKeys: string[];
    idempotencyTtlS: number;
    bodyLimitBytes: number;
    requestTimeoutMs: number;
    connectionTimeoutMs: number;
    rateLimit: { max: number; windowMs: number };
    /** Failed authentications allowed per client address and window (services/api/failed-auth.ts). */
    authFailureLimit: { max: number; windowMs: number };
    loadShedding: { maxEventLoopDelayMs: number; maxRssBytes: number };
  };
  /** removeOnFail of every job: dead letters kept this long (s) and at most this many per queue. */
  failedRetention: { age: number; count: number };
  metrics: { enabled: boolean; host: string; port: number | undefined };
  worker: {
    queues: QueueName[];
    concurrency: Record<QueueName, number>;
    /** Per-attempt timeout; catalog default, overridable by WORKER_TIMEOUT_MS_<QUEUE>. */
    timeoutMs: Record<QueueName, number>;
    lockDurationMs: number | undefined;
    stalledIntervalMs: number | undefined;
    maxStalledCount: number | undefined;
    memorySoftLimitBytes: number;
    memoryHardLimitBytes: number;
  };
  webhooks: { signingSecret: string; allowPrivate: boolean; maxRetryAfterMs: number; maxPerHost: number };
  /** Fault injection into the simulated providers (admin API and workers); off unless FAULTS_ENABLED=true. */
  faultsEnabled: boolean;
  shutdownGraceMs: number;
  logLevel: string;
  tracing: { disabled: boolean; samplerFromEnv: boolean };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function parseList(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}

/** Parse and validate an environment. Pure: pass any object (tests do). */
export function parseConfig(env: NodeJS.ProcessEnv = process.env): Config {
  let raw: RawEnv;
  try {
    raw = envSchema({ schema, data: env, dotenv: false }) as RawEnv;
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
  }
  const str = (k: string) => String(raw[k] ?? '');
  const num = (k: string) => (raw[k] === undefined ? undefined : Number(raw[k]));

  const requested = parseList(str('WORKER_QUEUES'));
  const unknown = requested.filter((q) => !isQueueName(q));
  if (unknown.length > 0) {
    throw new ConfigError(
      `invalid configuration: WORKER_QUEUES names unknown queue(s) ${unknown.join(', ')}; known: ${QUEUE_NAMES.join(', ')}`,
    );
  }
  const queues = (requested.length > 0 ? requested : QUEUE_NAMES) as QueueName[];

  const concurrency = Object.fromEntries(
    QUEUE_NAMES.map((q) => [q, num(concurrencyVar(q)) ?? QUEUE_CATALOG[q].policy.concurrency]),
  ) as Record<QueueName, number>;

  const timeoutMs = Object.fromEntries(
    QUEUE_NAMES.map((q) => [q, num(timeoutVar(q)) ?? QUEUE_CATALOG[q].policy.timeoutMs]),
  ) as Record<QueueName, number>;

  const memoryDefaults = thresholdMemoryDefaults();
  const soft = num('WORKER_MEMORY_SOFT_LIMIT_BYTES') ?? memoryDefaults.soft;
  const hard = num('WORKER_MEMORY_HARD_LIMIT_BYTES') ?? memoryDefaults.hard;
  if (hard > 0 && soft > hard) {
    throw new ConfigError('invalid configuration: WORKER_MEMORY_SOFT_LIMIT_BYTES must not exceed WORKER_MEMORY_HARD_LIMIT_BYTES');
  }

  const clientKeys = parseList(str('API_KEYS'));
  const adminKeys = parseList(str('ADMIN_API_KEYS'));
  if (adminKeys.some((k) => clientKeys.includes(k))) {
    // One key in both lists would make every client of it an operator: refuse rather than guess which was meant.
    throw new ConfigError('invalid configuration: a key appears in both API_KEYS and ADMIN_API_KEYS; admin keys must be separate');
  }

  const secret = str('WEBHOOK_SIGNING_SECRET');
  if (secret !== '' && secret.length < 16) {
    throw new ConfigError('invalid configuration: WEBHOOK_SIGNING_SECRET must be at least 16 characters');
  }

  return {
    redisUrl: str('REDIS_URL'),
    queuePrefix: str('QUEUE_PREFIX'),
    api: {
      host: str('API_HOST'),
      port: num('API_PORT')!,
      keys: clientKeys,
      adminKeys,
      idempotencyTtlS: num('IDEMPOTENCY_TTL_S')!,
      bodyLimitBytes: num('API_BODY_LIMIT_BYTES')!,
      requestTimeoutMs: num('API_REQUEST_TIMEOUT_MS')!,
      connectionTimeoutMs: num('API_CONNECTION_TIMEOUT_MS')!,
      rateLimit: { max: num('API_RATE_LIMIT_MAX')!, windowMs: num('API_RATE_LIMIT_WINDOW_MS')! },
      authFailureLimit: { max: num('API_AUTH_FAILURE_LIMIT_MAX')!, windowMs: num('API_AUTH_FAILURE_WINDOW_MS')! },
      loadShedding: {
        maxEventLoopDelayMs: num('API_MAX_EVENT_LOOP_DELAY_MS')!,
        maxRssBytes: num('API_MAX_RSS_BYTES')!,
      },
    },
    failedRetention: { age: num('FAILED_RETENTION_S')!, count: num('FAILED_RETENTION_COUNT')! },
    metrics: { enabled: raw.METRICS_ENABLED === true, host: str('METRICS_HOST'), port: num('METRICS_PORT') },
    worker: {
      queues,
      concurrency,
      timeoutMs,
      lockDurationMs: num('WORKER_LOCK_DURATION_MS'),
      stalledIntervalMs: num('WORKER_STALLED_INTERVAL_MS'),
      maxStalledCount: num('WORKER_MAX_STALLED_COUNT'),
      memorySoftLimitBytes: soft,
      memoryHardLimitBytes: hard,
    },
    webhooks: {
      signingSecret: secret,
      allowPrivate: raw.WEBHOOK_ALLOW_PRIVATE === true,
      maxRetryAfterMs: num('WEBHOOK_MAX_RETRY_AFTER_MS')!,
      maxPerHost: num('WEBHOOK_MAX_PER_HOST')!,
    },
    faultsEnabled: raw.FAULTS_ENABLED === true,
    shutdownGraceMs: num('SHUTDOWN_GRACE_MS')!,
    logLevel: str('LOG_LEVEL'),
    tracing: { disabled: raw.OTEL_SDK_DISABLED === true, samplerFromEnv: raw.OTEL_TRACES_SAMPLER !== undefined },
  };
}

let cached: Config | undefined;

/** The process's configuration, parsed on first use. Exits with code 1 and a clear message when invalid. */
export function loadConfig(): Config {
  if (cached) return cached;
  try {
    cached = parseConfig(process.env);
    return cached;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
