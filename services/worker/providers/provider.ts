/**
 * Provider adapters: what the payments and notifications processors call. A real integration (a PSP, an email
 * or SMS gateway) implements these; the built-in SimulatedProvider stands in for demos, tests and alert drills.
 * Adapters report transient failures as ProviderError, 429s as RateLimitedError, requests refused for good
 * (e.g. an idempotency key reused with other parameters) as UnrecoverableError, and honour the abort signal:
 * it is the attempt's (services/worker/run-attempt.ts), aborted at the queue's timeout or when BullMQ cancels the
 * job, and an adapter passes it on to its HTTP client so the outbound call really stops.
 */
import type { Context } from '@opentelemetry/api';
import type { NotificationPayload, PaymentPayload } from '../../common/queue-catalog';

/** What a charge carries: the payment's own fields (from the catalog schema) plus the provider idempotency key. */
export interface ChargeRequest extends Pick<PaymentPayload, 'amount' | 'currency' | 'account'> {
  /**
   * Same key ⇒ same charge: the provider applies it at most once (as real PSPs do with Idempotency-Key), and
   * refuses the key for a request with other parameters.
   */
  idempotencyKey: string;
}

export interface ChargeResult {
  chargeId: string;
  /** True when the provider had already applied this key and returned the original charge. */
  replayed: boolean;
}

/** Per-call options of every outbound call (providers here, the webhook client): what wrappers pass through. */
export interface OutboundCallOptions {
  signal?: AbortSignal;
  /** The attempt's context, for the spans and span events of the call (outbound/call.ts). */
  traceContext?: Context;
}

export interface PaymentProvider {
  charge(req: ChargeRequest, opts?: OutboundCallOptions): Promise<ChargeResult>;
}

export type NotificationRequest = NotificationPayload;

export interface NotificationProvider {
  send(req: NotificationRequest, opts?: OutboundCallOptions): Promise<{ messageId: string }>;
}
