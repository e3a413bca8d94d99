/**
 * Webhook delivery metrics beyond the per-queue job contract (job-metrics.ts). No host label: target hosts are
 * customer-controlled and unbounded; the logs and the job's failure reason name the host.
 */
import { Counter } from 'prom-client';
import type { MetricsRegistry } from './registry';

export interface WebhookMetrics {
  /** A delivery found its target host at WEBHOOK_MAX_PER_HOST and its job was put back to delayed. */
  hostBusyDeferral(): void;
}

export function createWebhookMetrics(registry: MetricsRegistry): WebhookMetrics {
  const hostBusy = new Counter({
    name: 'webhook_host_busy_deferrals_total',
    help: 'Webhook jobs put back to delayed (no attempt used) because their target host already had WEBHOOK_MAX_PER_HOST deliveries in flight in this worker.',
    registers: [registry],
  });
  hostBusy.inc(0);
  return { hostBusyDeferral: () => hostBusy.inc() };
}

export const noopWebhookMetrics: WebhookMetrics = { hostBusyDeferral: () => undefined };
