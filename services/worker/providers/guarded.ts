/**
 * The provider adapters behind the outbound boundary (outbound/call.ts): every charge and every notification
 * crosses the payment_provider / notification_provider quota and circuit. The adapters themselves stay unaware.
 */
import type { Context } from '@opentelemetry/api';
import type { OutboundBoundary } from '../outbound/call';
import type { ChargeRequest, ChargeResult, NotificationProvider, NotificationRequest, PaymentProvider } from './provider';

export class GuardedPaymentProvider implements PaymentProvider {
  constructor(private readonly inner: PaymentProvider, private readonly boundary: OutboundBoundary) {}

  charge(req: ChargeRequest, signal: AbortSignal, traceContext?: Context): Promise<ChargeResult> {
    return this.boundary.call('payment_provider', 'payment_provider', () => this.inner.charge(req, signal, traceContext), { signal, traceContext });
  }
}

export class GuardedNotificationProvider implements NotificationProvider {
  constructor(private readonly inner: NotificationProvider, private readonly boundary: OutboundBoundary) {}

  send(req: NotificationRequest, signal: AbortSignal, traceContext?: Context): Promise<{ messageId: string }> {
    return this.boundary.call('notification_provider', 'notification_provider', () => this.inner.send(req, signal, traceContext), { signal, traceContext });
  }
}
