/**
 * The API's one error shape: { statusCode, code, error, message }. Route code throws ApiError; Fastify's own
 * errors (validation, body too large, bad JSON, rate limit, load shedding) are mapped to the same shape.
 */
import { STATUS_CODES } from 'node:http';

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

/** JSON Schema of the error shape, used in route response schemas (and so in fast serialization). */
export const errorSchema = {
  type: 'object',
  required: ['statusCode', 'code', 'error', 'message'],
  properties: {
    statusCode: { type: 'integer' },
    code: { type: 'string' },
    error: { type: 'string' },
    message: { type: 'string' },
  },
} as const;

export const redisUnavailable = (cause: Error) =>
  new ApiError(
    503,
    'REDIS_UNAVAILABLE',
    `the job store is unavailable (${cause.message}); retry after Retry-After with the same Idempotency-Key — ` +
      'a timed-out enqueue may still have been stored',
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

/** Errors that mean "Redis is unreachable, frozen or closing" (ioredis / BullMQ messages), as opposed to bugs. */
export function isRedisError(err: unknown): err is Error {
  const msg = (err as Error)?.message ?? '';
  return /Connection is closed|CLUSTERDOWN|TRYAGAIN|Cluster redirections|slots cache|startup nodes|Cluster isn't ready|Stream isn't writeable|enableOfflineQueue|ECONNREFUSED|Command timed out|ETIMEDOUT|max retries|ECONNRESET|connection is (?!ready)/i.test(
    msg,
  );
}
