/**
 * Provider adapters: what the payments and notifications processors call. A real integration (a PSP, an email
 * or SMS gateway) implements these; the built-in SimulatedProvider stands in for demos, tests and alert drills.
 * Adapters report transient failures as ProviderError, 429s as RateLimitedError, requests refused for good
 * (e.g. an idempotency key reused with other parameters) as UnrecoverableError, and honour the abort signal.
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

export interface PaymentProvider {
  /** traceContext: the attempt's, for spans and events of the call. */
  charge(req: ChargeRequest, signal: AbortSignal, traceContext?: Context): Promise<ChargeResult>;
}

export type NotificationRequest = NotificationPayload;

export interface NotificationProvider {
  send(req: NotificationRequest, signal: AbortSignal, traceContext?: Context): Promise<{ messageId: string }>;
}
