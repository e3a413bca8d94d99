/**
 * Admin-plane metrics: api_admin_actions_total{action}, one increment per change an admin key made (who made it
 * is in the audit log line, never in a label). The action list is closed so the label stays bounded: a new admin
 * route adds its action here.
 */
import { boundedCounter, type MetricsRegistry } from './registry';

// failures_retry: POST /v1/admin/queues/:queue/failures/retry; console_change: any change made in the console
// (bull-board's PUT/POST/PATCH routes: retry, clean, pause, remove, …).
// circuit_reset: POST /v1/admin/circuits/:dependency/reset.
export const ADMIN_ACTIONS = ['faults_update', 'failures_retry', 'console_change', 'circuit_reset'] as const;
export type AdminAction = (typeof ADMIN_ACTIONS)[number];

export interface AdminMetrics {
  action(action: AdminAction): void;
}

export function createAdminMetrics(registry: MetricsRegistry): AdminMetrics {
  const actions = boundedCounter(registry, 'api_admin_actions_total', 'Changes made through the admin plane (/v1/admin/*, console), by action.', { action: ADMIN_ACTIONS });
  return { action: (action) => actions.inc({ action }) };
}

export const noopAdminMetrics: AdminMetrics = { action: () => undefined };
