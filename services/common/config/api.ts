/** Environment of the API process: listener, keys, limits, load shedding, idempotency. */
import { isIP } from 'node:net';
import { Type, type Static } from 'typebox';
import { ConfigError, parseList } from './errors';

export const ApiEnv = Type.Object({
  API_HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  API_PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  API_KEYS: Type.String({ default: '' }),
  // Operators' keys: only these reach /v1/admin/* and the console; never accepted as client keys.
  ADMIN_API_KEYS: Type.String({ default: '' }),
  // How long an Idempotency-Key is remembered, independent of completed-job retention.
  IDEMPOTENCY_TTL_S: Type.Integer({ minimum: 60, maximum: 30 * 24 * 3600, default: 86_400 }),
  API_BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, default: 65536 }),
  API_REQUEST_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 10_000 }),
  API_CONNECTION_TIMEOUT_MS: Type.Integer({ minimum: 100, default: 5_000 }),
  // Per bearer key, shared by every API replica through Redis. 0 disables the limit.
  API_RATE_LIMIT_MAX: Type.Integer({ minimum: 0, default: 1000 }),
  API_RATE_LIMIT_WINDOW_MS: Type.Integer({ minimum: 100, default: 1000 }),
  // Wrong keys per client address and window before that address's further wrong keys get 429. 0 disables.
  API_AUTH_FAILURE_LIMIT_MAX: Type.Integer({ minimum: 0, default: 10 }),
  API_AUTH_FAILURE_WINDOW_MS: Type.Integer({ minimum: 1000, default: 60_000 }),
  // Which hops may name the client in X-Forwarded-For: unset/"false" (the socket address, the header ignored), a
  // hop count, or the trusted proxies' addresses/CIDRs — Fastify's trustProxy (parseTrustProxy below).
  TRUST_PROXY: Type.String({ default: 'false' }),
  // Load shedding: above these the API answers 503 + Retry-After instead of queueing more work. 0 disables.
  API_MAX_EVENT_LOOP_DELAY_MS: Type.Integer({ minimum: 0, default: 1000 }),
  API_MAX_RSS_BYTES: Type.Integer({ minimum: 0, default: 0 }),
});
export type ApiEnv = Static<typeof ApiEnv>;

/** Named ranges proxy-addr (Fastify's trustProxy) understands besides addresses and CIDRs. */
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isAddressOrCidr(entry: string): boolean {
  const slash = entry.indexOf('/');
  if (slash < 0) return isIP(entry) !== 0;
  const family = isIP(entry.slice(0, slash));
  const bits = entry.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * TRUST_PROXY → Fastify's `trustProxy`: false, a hop count, or the list of trusted proxy addresses. "true"
 * (trust every hop) is refused: any client could then pick the address its failed keys are counted against.
 */
export function parseTrustProxy(raw: string): false | number | string[] {
  const value = raw.trim();
  if (value === '' || value.toLowerCase() === 'false' || value === '0') return false;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > 32) throw new ConfigError(`invalid configuration: TRUST_PROXY hop count ${hops} is beyond any real proxy chain (at most 32)`);
    return hops;
  }
  if (value.toLowerCase() === 'true') {
    throw new ConfigError('invalid configuration: TRUST_PROXY=true would trust every X-Forwarded-For hop, letting any client choose its address; give a hop count or the proxies\' addresses/CIDRs');
  }
  const entries = parseList(value);
  const bad = entries.filter((e) => !NAMED_RANGES.has(e) && !isAddressOrCidr(e));
  if (bad.length > 0 || entries.length === 0) {
    throw new ConfigError(`invalid configuration: TRUST_PROXY must be false, a hop count, or comma-separated proxy addresses/CIDRs; not an address or CIDR: ${bad.map((e) => `"${e}"`).join(', ')}`);
  }
  return entries;
}

export function apiConfig(env: ApiEnv) {
  const keys = parseList(env.API_KEYS);
  const adminKeys = parseList(env.ADMIN_API_KEYS);
  if (adminKeys.some((k) => keys.includes(k))) {
    // One key in both lists would make every client of it an operator: refuse rather than guess which was meant.
    throw new ConfigError('invalid configuration: a key appears in both API_KEYS and ADMIN_API_KEYS; admin keys must be separate');
  }
  return {
    host: env.API_HOST,
    port: env.API_PORT,
    keys,
    adminKeys,
    idempotencyTtlS: env.IDEMPOTENCY_TTL_S,
    bodyLimitBytes: env.API_BODY_LIMIT_BYTES,
    requestTimeoutMs: env.API_REQUEST_TIMEOUT_MS,
    connectionTimeoutMs: env.API_CONNECTION_TIMEOUT_MS,
    rateLimit: { max: env.API_RATE_LIMIT_MAX, windowMs: env.API_RATE_LIMIT_WINDOW_MS },
    /** Failed authentications allowed per client address and window (services/api/failed-auth.ts). */
    authFailureLimit: { max: env.API_AUTH_FAILURE_LIMIT_MAX, windowMs: env.API_AUTH_FAILURE_WINDOW_MS },
    /** Fastify's trustProxy: which hops of X-Forwarded-For make request.ip (TRUST_PROXY). */
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    loadShedding: { maxEventLoopDelayMs: env.API_MAX_EVENT_LOOP_DELAY_MS, maxRssBytes: env.API_MAX_RSS_BYTES },
  };
}
export type ApiConfig = ReturnType<typeof apiConfig>;
