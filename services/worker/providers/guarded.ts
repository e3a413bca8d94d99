/**
 * The provider adapters behind the outbound boundary (outbound/call.ts): every charge and every notification
 * crosses the payment_provider / notification_provider quota and circuit. The adapters themselves stay unaware.
 */
import type { OutboundBoundary } from '../outbound/call';
import type { ChargeRequest, ChargeResult, NotificationProvider, NotificationRequest, OutboundCallOptions, PaymentProvider } from './provider';

export class GuardedPaymentProvider implements PaymentProvider {
  constructor(private readonly inner: PaymentProvider, private readonly boundary: OutboundBoundary) {}

  charge(req: ChargeRequest, opts: OutboundCallOptions = {}): Promise<ChargeResult> {
    return this.boundary.call('payment_provider', 'payment_provider', () => this.inner.charge(req, opts), opts);
  }
}

export class GuardedNotificationProvider implements NotificationProvider {
  constructor(private readonly inner: NotificationProvider, private readonly boundary: OutboundBoundary) {}

  send(req: NotificationRequest, opts: OutboundCallOptions = {}): Promise<{ messageId: string }> {
    return this.boundary.call('notification_provider', 'notification_provider', () => this.inner.send(req, opts), opts);
  }
}
