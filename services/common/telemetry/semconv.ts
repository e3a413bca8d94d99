/**
 * Semantic-convention names this project emits. Stable ones are imported from @opentelemetry/semantic-conventions;
 * the messaging conventions are still "development" there, only exported from its `incubating` entry point, which
 * may break in a minor release — so, as that package's README asks, those few are copied here.
 */
export {
  ATTR_ERROR_TYPE,
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_SCHEME,
  ERROR_TYPE_VALUE_OTHER,
} from '@opentelemetry/semantic-conventions';

/**
 * `messaging.system` is what tools and the issue contract query; semantic-conventions 1.45 renames it
 * `messaging.system.name` (same value for us), so spans carry both until the rename is stable.
 */
export const ATTR_MESSAGING_SYSTEM = 'messaging.system' as const;
export const ATTR_MESSAGING_SYSTEM_NAME = 'messaging.system.name' as const;
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name' as const;
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name' as const;
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type' as const;
export const ATTR_MESSAGING_MESSAGE_ID = 'messaging.message.id' as const;
export const MESSAGING_OPERATION_TYPE_VALUE_SEND = 'send' as const;
export const MESSAGING_OPERATION_TYPE_VALUE_PROCESS = 'process' as const;

/** Project attributes of the `process` span (outside the conventions, under our own namespaces). */
export const BULLMQ_ATTRIBUTES = {
  attempt: 'messaging.bullmq.attempt',
  failureReason: 'bullmq.failure_reason',
  willRetry: 'bullmq.will_retry',
  rateLimited: 'bullmq.rate_limited',
  /** Why only this job was put back to delayed: `rate_limited` (its target's 429) or `host_busy`. */
  deferred: 'bullmq.deferred',
  /** On the `soft_timeout` span event: the queue's hard timeout and the soft one that was crossed. */
  timeoutMs: 'bullmq.timeout_ms',
  softTimeoutMs: 'bullmq.soft_timeout_ms',
} as const;
