/**
 * What a BullMQ job carries: the validated payload plus metadata the pipeline needs across processes.
 * Keeping metadata beside (not inside) the payload means processors and the API's GET see the payload
 * exactly as the client sent it.
 */
export interface JobMeta {
  /** W3C trace context (traceparent/tracestate) of the producer span, so the consumer continues the trace. */
  trace?: Record<string, string>;
  /** Client's Idempotency-Key, kept so side effects (the payment ledger) can be deduplicated too. */
  idempotencyKey?: string;
  /**
   * Key id (a digest prefix, never the key) of the client key that enqueued the job. Idempotency keys are scoped
   * per client, so side effects are deduplicated by (clientId, idempotencyKey).
   */
  clientId?: string;
  /**
   * Set by the worker when the job's own target answered 429 (services/worker/deferral.ts): how many times the job
   * was deferred and when the first deferral happened, so the bound survives worker restarts.
   */
  rateLimitDeferrals?: { count: number; firstAt: number };
  /**
   * Set by the worker when the job first waits for its dependency — circuit open, or its own quota used up
   * (services/worker/deferral.ts) — so the queue's wait bound (catalog `outbound.maxWaitMs`) survives restarts.
   */
  outboundWaitSince?: number;
  /** Unique per API request that added the job: tells a re-add under an existing job id from the one that created it. */
  enqueueId?: string;
}

export interface JobEnvelope<P = Record<string, unknown>> {
  payload: P;
  meta: JobMeta;
}

/** What the client sent: the envelope's payload, or the data itself for a job added around the API. */
export function payloadOf(data: unknown): Record<string, unknown> {
  if (isEnvelope(data)) return data.payload;
  return typeof data === 'object' && data !== null ? { ...data } : {};
}

export function isEnvelope(data: unknown): data is JobEnvelope {
  return typeof data === 'object' && data !== null && 'payload' in data && 'meta' in data;
}
