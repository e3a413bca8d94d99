/**
 * OUTBOUND_RATE_LIMITS: `name=N/unit[,…]`, unit s | m | h, name one of the catalog's outbound dependencies
 * (services/common/queue-catalog.ts). Each entry replaces that dependency's default quota; `webhook_host` applies
 * per target host. Anything else is a ConfigError naming the variable (the process exits 1 at boot).
 */
import { OUTBOUND_DEPENDENCIES, OUTBOUND_POLICY, type OutboundDependency, type QuotaPolicy } from '../queue-catalog';
import { ConfigError, parseList } from './errors';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000 } as const;
const ENTRY = /^([a-z_]+)=(\d+)\/([smh])$/;

export function parseOutboundRateLimits(raw: string): Record<OutboundDependency, QuotaPolicy> {
  const quotas: Record<OutboundDependency, QuotaPolicy> = { ...OUTBOUND_POLICY.quotas };
  const seen = new Set<string>();
  for (const entry of parseList(raw)) {
    const match = ENTRY.exec(entry.replace(/\s+/g, ''));
    const bad = (why: string) =>
      new ConfigError(`invalid configuration: OUTBOUND_RATE_LIMITS entry "${entry}" ${why}; expected name=N/unit[,…] with unit s, m or h and name one of ${OUTBOUND_DEPENDENCIES.join(', ')} (e.g. webhook_host=20/s)`);
    if (!match) throw bad('is malformed');
    const [, name, count, unit] = match as unknown as [string, string, string, keyof typeof UNIT_MS];
    if (!(OUTBOUND_DEPENDENCIES as readonly string[]).includes(name)) throw bad(`names unknown dependency "${name}"`);
    if (seen.has(name)) throw bad(`repeats "${name}"`);
    seen.add(name);
    const limit = Number(count);
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1_000_000) throw bad('needs N between 1 and 1000000');
    quotas[name as OutboundDependency] = { limit, windowMs: UNIT_MS[unit] };
  }
  return quotas;
}
