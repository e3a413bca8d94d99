/**
 * Outbound-boundary metrics (services/worker/outbound/), named in docs/contracts.md. Labels are bounded: the
 * dependency (catalog list) and fixed outcome / transition sets; never a webhook host (customer-controlled).
 * - outbound_circuits_open{dependency}: circuits open or half-open, read from the shared state at scrape time (every
 *   replica reports the same value: aggregate with max, like the queue gauges).
 * - outbound_rate_limit{dependency}: calls per second now allowed — the quota, or less while AIMD adapts; for
 *   webhook_host the lowest of the hosts this replica called in the last minute.
 */
import { Counter, Gauge } from 'prom-client';
import { OUTBOUND_DEPENDENCIES, type OutboundDependency, type QuotaPolicy } from '../queue-catalog';
import type { CircuitTransition } from '../outbound-circuits';
import type { MetricsRegistry } from './registry';

export const OUTBOUND_OUTCOMES = ['success', 'failure', 'rate_limited', 'short_circuited', 'throttled'] as const;
export type OutboundOutcome = (typeof OUTBOUND_OUTCOMES)[number];
export const CIRCUIT_TRANSITIONS: readonly CircuitTransition[] = ['open', 'half_open', 'closed'];

export interface OutboundMetrics {
  request(dependency: OutboundDependency, outcome: OutboundOutcome): void;
  transition(dependency: OutboundDependency, to: CircuitTransition): void;
  rate(dependency: OutboundDependency, target: string, perSecond: number): void;
}

const RATE_FRESH_MS = 60_000;

export function createOutboundMetrics(
  registry: MetricsRegistry,
  opts: { quotas: Record<OutboundDependency, QuotaPolicy>; openCircuits: (dependency: OutboundDependency) => Promise<number> },
): OutboundMetrics {
  const requests = new Counter({
    name: 'outbound_requests_total',
    help: 'Outbound calls by dependency and outcome: success (answered; a 4xx other than 408/429 is the caller\'s fault), failure (5xx, 408, timeout, network), rate_limited (429), short_circuited (not sent: circuit open), throttled (not sent yet: own quota).',
    labelNames: ['dependency', 'outcome'] as const,
    registers: [registry],
  });
  const transitions = new Counter({
    name: 'outbound_circuit_transitions_total',
    help: 'Circuit state changes made by this replica, by dependency and new state.',
    labelNames: ['dependency', 'to'] as const,
    registers: [registry],
  });
  for (const dependency of OUTBOUND_DEPENDENCIES) {
    for (const outcome of OUTBOUND_OUTCOMES) requests.inc({ dependency, outcome }, 0);
    for (const to of CIRCUIT_TRANSITIONS) transitions.inc({ dependency, to }, 0);
  }
  new Gauge({
    name: 'outbound_circuits_open',
    help: 'Circuits open or half-open, by dependency (0/1 for a provider, the number of hosts for webhook_host), read from Redis at scrape.',
    labelNames: ['dependency'] as const,
    registers: [registry],
    async collect() {
      const counts = await Promise.all(OUTBOUND_DEPENDENCIES.map((d) => opts.openCircuits(d).catch(() => undefined)));
      OUTBOUND_DEPENDENCIES.forEach((dependency, i) => {
        const n = counts[i];
        if (n !== undefined) this.set({ dependency }, n);
      });
    },
  });
  const quotaPerSecond = (d: OutboundDependency) => (opts.quotas[d].limit * 1000) / opts.quotas[d].windowMs;
  const rates = new Map<OutboundDependency, Map<string, { perSecond: number; at: number }>>();
  new Gauge({
    name: 'outbound_rate_limit',
    help: 'Calls per second currently allowed to the dependency: its quota, or less while adapting to 429s (webhook_host: the lowest over recently called hosts).',
    labelNames: ['dependency'] as const,
    registers: [registry],
    collect() {
      const now = Date.now();
      for (const dependency of OUTBOUND_DEPENDENCIES) {
        let value = quotaPerSecond(dependency);
        for (const [target, r] of rates.get(dependency) ?? []) {
          if (now - r.at > RATE_FRESH_MS) rates.get(dependency)!.delete(target);
          else value = Math.min(value, r.perSecond);
        }
        this.set({ dependency }, value);
      }
    },
  });
  return {
    request: (dependency, outcome) => requests.inc({ dependency, outcome }),
    transition: (dependency, to) => transitions.inc({ dependency, to }),
    rate: (dependency, target, perSecond) => {
      let m = rates.get(dependency);
      if (!m) rates.set(dependency, (m = new Map<string, { perSecond: number; at: number }>()));
      // Only targets being adapted matter for the minimum; keep the map small.
      if (perSecond < quotaPerSecond(dependency)) m.set(target, { perSecond, at: Date.now() });
      else m.delete(target);
    },
  };
}

export const noopOutboundMetrics: OutboundMetrics = { request: () => undefined, transition: () => undefined, rate: () => undefined };
