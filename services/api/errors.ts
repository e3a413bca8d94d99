/**
 * The API's one error shape: { statusCode, code, error, message }. Route code throws ApiError; Fastify's own
 * errors (validation, body too large, bad JSON, rate limit, load shedding) are mapped to the same shape.
 */
import { STATUS_CODES } from 'node:http';
import { Type } from 'typebox';
import { QUEUE_NAMES, type QueueName, isQueueName } from '../common/queue-catalog';

export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export interface ErrorBody {
  statusCode: number;
  code: string;
  error: string;
  message: string;
}

export function errorBody(statusCode: number, code: string, message: string): ErrorBody {
  return { statusCode, code, error: STATUS_CODES[statusCode] ?? 'Error', message };
}

/** The error shape as a schema, used in route response schemas (and so in fast serialization). */
export const errorSchema = Type.Object({
  statusCode: Type.Integer(),
  code: Type.String(),
  error: Type.String(),
  message: Type.String(),
});

/** 404 for a queue the catalog does not have, naming the ones it has (every route taking a queue name). */
export const queueNotFound = (queue: string) =>
  new ApiError(404, 'QUEUE_NOT_FOUND', `unknown queue "${queue}"; known queues: ${QUEUE_NAMES.join(', ')}`);

/** The catalog queue a route parameter names, or 404 QUEUE_NOT_FOUND. */
export function catalogQueue(name: string): QueueName {
  if (!isQueueName(name)) throw queueNotFound(name);
  return name;
}

/** A command that timed out may still have run: its outcome is unknown, and the 503 says so. */
const isTimeout = (err: Error) => /Command timed out|ETIMEDOUT/i.test(err.message);

export const redisUnavailable = (cause: Error) =>
  new ApiError(
    503,
    'REDIS_UNAVAILABLE',
    isTimeout(cause)
      ? `the job store did not answer in time (${cause.message}): the outcome is unknown and the job may have been ` +
          'stored; retry after Retry-After with the same Idempotency-Key — it never creates a second job'
      : `the job store is unavailable (${cause.message}); nothing was stored; retry after Retry-After with the same Idempotency-Key`,
    { 'retry-after': '1' },
  );

/**
 * A queue whose BullMQ Queue failed to set itself up (plugins/app/queues.ts builds it again): the operation sent
 * nothing to Redis, it failed on the Queue's stored set-up error.
 */
export const queueNotSetUp = (queue: string, cause: Error) =>
  new ApiError(
    503,
    'REDIS_UNAVAILABLE',
    `the "${queue}" queue cannot reach the job store yet: its set-up failed (${cause.message}) and is being done again; ` +
      'nothing was stored; retry after Retry-After with the same Idempotency-Key',
    { 'retry-after': '1' },
  );

export const notReplicated = (cause: Error) =>
  new ApiError(
    503,
    'REDIS_NOT_REPLICATED',
    `the job was stored but not confirmed on a replica (${cause.message}); retry after Retry-After with the same ` +
      'Idempotency-Key — the retry returns the same job',
    { 'retry-after': '1' },
  );

/** Redis refusing writes because it reached maxmemory (noeviction): nothing was written. */
export const redisFull = () =>
  new ApiError(
    503,
    'REDIS_FULL',
    'the job store is full (Redis maxmemory reached, writes refused); nothing was stored; retry after Retry-After with the same Idempotency-Key',
    { 'retry-after': '5' },
  );

/** ioredis reply error of a write refused for memory: "OOM command not allowed when used memory > 'maxmemory'". */
export function isRedisOom(err: unknown): boolean {
  return /^OOM command not allowed/.test((err as Error)?.message ?? '');
}

/**
 * Errors that mean "Redis is unreachable, frozen, closing or not (yet) the master" (ioredis / BullMQ messages), as
 * opposed to bugs. READONLY / LOADING / MASTERDOWN are what a node answers during a failover or a restart, UNBLOCKED what a
 * blocked command (the enqueue's WAIT) gets when its node turns replica under it: the
 * client must retry, so they are 503s, never 500s (found by the fault campaign, scripts/chaos/).
 */
export function isRedisError(err: unknown): err is Error {
  const msg = (err as Error)?.message ?? '';
  return /^(READONLY|LOADING|MASTERDOWN|UNBLOCKED)\b|Connection is closed|CLUSTERDOWN|TRYAGAIN|Cluster redirections|slots cache|startup nodes|Cluster isn't ready|Stream isn't writeable|enableOfflineQueue|ECONNREFUSED|Command timed out|ETIMEDOUT|max retries|ECONNRESET|connection is (?!ready)/i.test(
    msg,
  );
}
