/**
 * The queue catalog: the one place that defines each queue — its name, payload schema and policy.
 * API (validation, job options) and worker (concurrency, timeouts, stall settings) both read it.
 * Adding a queue = one entry here + one file in services/worker/processors/<name>.ts.
 */

import { Type, type Static, type TSchema } from 'typebox';
import currencyCodes from 'currency-codes';

/**
 * ISO 4217 alphabetic codes from the maintained list shipped by `currency-codes` (updated with each ISO
 * amendment), less XTS (reserved for testing) and XXX ("no currency"): neither can be charged.
 */
export const CURRENCY_CODES: readonly string[] = currencyCodes.codes().filter((c) => c !== 'XTS' && c !== 'XXX').sort();

/** Largest payment amount, in minor units: far below 2^53, so every accepted amount is exact. */
export const MAX_PAYMENT_AMOUNT = 1_000_000_000_000;

/** RFC 9110 token (tchar): what a webhook event may be, since it is sent as the Webhook-Event header. */
export const HTTP_TOKEN_PATTERN = "^[!#$%&'*+.^_`|~0-9A-Za-z-]+$";

/** BullMQ priorities: lower number runs first. */
export const PRIORITIES = {
  critical: 1,
  high: 3,
  normal: 5,
  low: 7,
  background: 10,
} as const;
export type PriorityName = keyof typeof PRIORITIES;
export const DEFAULT_PRIORITY: PriorityName = 'normal';

export interface QueuePolicy {
  /** Jobs processed in parallel by one worker process. Overridable by WORKER_CONCURRENCY_<QUEUE>. */
  concurrency: number;
  /** Total attempts, first one included. */
  attempts: number;
  /** One attempt is aborted and counted as a timeout failure after this long. */
  timeoutMs: number;
  /** Exponential backoff base delay; BullMQ doubles it each retry and applies jitter. */
  backoffDelayMs: number;
  /** 0..1, share of the backoff that is randomised so retries from a burst do not align. */
  backoffJitter: number;
  /**
   * A retry after a timeout waits this many times the error backoff (services/worker/retry-backoff.ts): a
   * dependency that let an attempt hang is overloaded, and hitting it again as soon as after an error adds load.
   */
  timeoutBackoffFactor: number;
  /**
   * 0..1 of timeoutMs: an attempt still running then is counted as a soft timeout (bullmq_job_soft_timeouts_total,
   * job log line, span event) and goes on running to the hard timeout.
   */
  softTimeoutRatio: number;
  /**
   * Stalled-job detection. A job whose lock is not renewed within lockDurationMs (its worker died or its
   * event loop was blocked) is moved back to wait at the next check; after maxStalledCount such moves it fails.
   * The lock must outlive the job timeout's event-loop hiccups, so it is longer than a renewal period.
   */
  lockDurationMs: number;
  stalledIntervalMs: number;
  maxStalledCount: number;
}

/**
 * Outbound dependencies: what the worker calls beyond Redis. Each has a circuit breaker and a quota shared by every
 * replica through Redis (services/worker/outbound/); `webhook_host` has one circuit and one quota per target host.
 */
export const OUTBOUND_DEPENDENCIES = ['payment_provider', 'notification_provider', 'webhook_host'] as const;
export type OutboundDependency = (typeof OUTBOUND_DEPENDENCIES)[number];

export interface BreakerPolicy {
  /** Rolling window over which calls and failures are counted. */
  windowMs: number;
  /** Below this many calls in the window the circuit never opens (a single failure is no outage). */
  minCalls: number;
  /** Open when failures / calls in the window reach this share. */
  failureRatio: number;
  /** First open period; each failed probe doubles it, up to maxOpenMs. */
  openMs: number;
  maxOpenMs: number;
  /** How long the one half-open probe holds its lease (SET NX PX): longer than any call's timeout. */
  probeLeaseMs: number;
}

export interface QuotaPolicy {
  /** At most `limit` calls start in any window of `windowMs`, whatever the number of replicas. */
  limit: number;
  windowMs: number;
}

/**
 * Additive increase / multiplicative decrease of a dependency's shared rate on 429s. A *burst* — at least
 * burstMin 429s and burstRatio of the window's calls — halves the rate (from what was really used); each window
 * without a burst (after the Retry-After) adds increaseShare of the quota back. Scattered 429s below the burst only
 * defer the jobs that met them; a dependency answering 429 to pauseRatio of its calls (at least pauseMinCalls: a
 * quiet provider refusing its one call is refusing everything) pauses the queue (Worker#rateLimit).
 */
export interface AimdPolicy {
  burstMin: number;
  burstRatio: number;
  decreaseFactor: number;
  increaseShare: number;
  pauseRatio: number;
  pauseMinCalls: number;
}

export const OUTBOUND_POLICY = {
  // resilience4j's count-in-window breaker with opossum's half-open single probe and cockatiel's exponential open time.
  breaker: { windowMs: 10_000, minCalls: 5, failureRatio: 0.5, openMs: 5_000, maxOpenMs: 60_000, probeLeaseMs: 35_000 },
  // A safety ceiling, not a provider's contract: set OUTBOUND_RATE_LIMITS to what each provider allows (e.g.
  // payment_provider=100/s). bench/stack.ts lifts them: the bench measures the pipeline, not a quota.
  quotas: {
    payment_provider: { limit: 1_000, windowMs: 1_000 },
    notification_provider: { limit: 1_000, windowMs: 1_000 },
    webhook_host: { limit: 1_000, windowMs: 1_000 },
  },
  aimd: { burstMin: 3, burstRatio: 0.2, decreaseFactor: 0.5, increaseShare: 0.1, pauseRatio: 0.9, pauseMinCalls: 1 },
  /** A job over its quota waits in the worker up to this long for a token; past it the job is put back to delayed. */
  quotaWaitInWorkerMs: 1_000,
} as const satisfies {
  breaker: BreakerPolicy;
  quotas: Record<OutboundDependency, QuotaPolicy>;
  aimd: AimdPolicy;
  quotaWaitInWorkerMs: number;
};

/** A queue's outbound dependency, and how long its jobs may wait for it (open circuit, quota) before failing. */
export interface QueueOutbound {
  dependency: OutboundDependency;
  /** Past this since the first wait, a job whose circuit is still open fails as `circuit_open`. */
  maxWaitMs: number;
}

export interface QueueDefinition<S extends TSchema = TSchema> {
  name: string;
  description: string;
  /** Payload schema (`data` in the API body), written once with TypeBox: JSON Schema for Fastify, types by Static<>. */
  payloadSchema: S;
  /** 'required': POST without an Idempotency-Key is refused (400 IDEMPOTENCY_KEY_REQUIRED). */
  idempotencyKey: 'required' | 'optional';
  /**
   * Replicas that must hold an enqueue before its 202 when the queue's Redis node has replicas (Redis WAIT,
   * services/api/replication-gate.ts): then a failover right after the 202 cannot lose the job. 0: the master's
   * acknowledgement is enough. REDIS_WAIT_REPLICAS overrides it for every queue.
   */
  durability: { replicaAcks: number };
  policy: QueuePolicy;
  outbound: QueueOutbound;
}

// Payload schemas. Unknown fields are rejected; processors and providers take their types from these.
export const PaymentPayload = Type.Object(
  {
    amount: Type.Integer({ minimum: 1, maximum: MAX_PAYMENT_AMOUNT, description: 'minor units (cents)' }),
    // An enum keyword (not a union of literals) so a wrong code gets one clear error naming the allowed values.
    currency: Type.Unsafe<string>({ type: 'string', enum: [...CURRENCY_CODES], description: 'ISO 4217 alphabetic code' }),
    account: Type.String({ minLength: 1, maxLength: 128 }),
    reference: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
  },
  { additionalProperties: false },
);
export type PaymentPayload = Static<typeof PaymentPayload>;

export const NotificationPayload = Type.Object(
  {
    channel: Type.Union([Type.Literal('email'), Type.Literal('sms'), Type.Literal('push')]),
    to: Type.String({ minLength: 1, maxLength: 320 }),
    template: Type.String({ minLength: 1, maxLength: 128 }),
    variables: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);
export type NotificationPayload = Static<typeof NotificationPayload>;

export const WebhookPayload = Type.Object(
  {
    // Parsed and address-checked by the API with the worker's own rules (common/webhook-target.ts).
    url: Type.String({ pattern: '^[hH][tT][tT][pP][sS]?://', maxLength: 2048 }),
    event: Type.String({ minLength: 1, maxLength: 100, pattern: HTTP_TOKEN_PATTERN }),
    payload: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: false },
);
export type WebhookPayload = Static<typeof WebhookPayload>;

/**
 * Retention shared by all queues, in seconds and jobs per queue: completed jobs 1 h; failed jobs (the dead letters
 * the console and the failures API show and replay) 7 days. Both are bounded by count too, so a burst of failures
 * cannot fill Redis (noeviction): docs/console.md has the measured memory per 100k failed jobs. The failed bounds
 * are the defaults of FAILED_RETENTION_S / FAILED_RETENTION_COUNT (services/common/config/api.ts).
 */
export const RETENTION = {
  completed: { age: 3600, count: 10_000 },
  failed: { age: 7 * 24 * 3600, count: 20_000 },
} as const;

const stallDefaults = { lockDurationMs: 30_000, stalledIntervalMs: 30_000, maxStalledCount: 1 };
/** Timeouts back off ×4 (the background-jobs guide's timeout-aware retries); soft timeout at 80 % of the timeout. */
const timeoutDefaults = { timeoutBackoffFactor: 4, softTimeoutRatio: 0.8 };

export const QUEUE_CATALOG = {
  payments: {
    name: 'payments',
    description: 'Charges through the payment provider; applied at most once per idempotency key.',
    // Money: a retry without a key would be a second charge.
    idempotencyKey: 'required',
    // Money: an accepted payment lost in a failover is a charge the client believes was made.
    durability: { replicaAcks: 1 },
    payloadSchema: PaymentPayload,
    outbound: { dependency: 'payment_provider', maxWaitMs: 15 * 60_000 },
    policy: { concurrency: 5, attempts: 3, timeoutMs: 10_000, backoffDelayMs: 1_000, backoffJitter: 0.5, ...timeoutDefaults, ...stallDefaults },
  },
  notifications: {
    name: 'notifications',
    description: 'Email, SMS and push messages through the notification provider.',
    idempotencyKey: 'optional',
    durability: { replicaAcks: 0 },
    payloadSchema: NotificationPayload,
    outbound: { dependency: 'notification_provider', maxWaitMs: 15 * 60_000 },
    policy: { concurrency: 10, attempts: 2, timeoutMs: 5_000, backoffDelayMs: 1_000, backoffJitter: 0.5, ...timeoutDefaults, ...stallDefaults },
  },
  webhooks: {
    name: 'webhooks',
    description: 'Signed HTTP POST deliveries to customer endpoints.',
    idempotencyKey: 'optional',
    durability: { replicaAcks: 0 },
    payloadSchema: WebhookPayload,
    // Lock longer than the 30 s timeout so a slow but live delivery is never taken for stalled.
    // Concurrency 64: deliveries are I/O-bound (a socket and a few KB each), and with WEBHOOK_MAX_PER_HOST = 2
    // it takes 32 hanging target hosts — each held at most 10 s by the client's headers timeout — to fill one
    // worker, so a healthy target still finds a free slot at once (services/worker/webhook/host-slots.ts).
    outbound: { dependency: 'webhook_host', maxWaitMs: 24 * 3_600_000 },
    policy: {
      concurrency: 64, attempts: 5, timeoutMs: 30_000, backoffDelayMs: 2_000, backoffJitter: 0.5, ...timeoutDefaults,
      ...stallDefaults, lockDurationMs: 45_000,
    },
  },
} satisfies Record<string, QueueDefinition>;

export type QueueName = keyof typeof QUEUE_CATALOG;
export const QUEUE_NAMES = Object.keys(QUEUE_CATALOG) as QueueName[];

export function isQueueName(name: string): name is QueueName {
  return Object.prototype.hasOwnProperty.call(QUEUE_CATALOG, name);
}

/** The payload type of a queue, derived from its catalog schema. */
export type PayloadOf<Q extends QueueName> = Static<(typeof QUEUE_CATALOG)[Q]['payloadSchema']>;
