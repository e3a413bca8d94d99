/**
 * Failed-authentication limit per client address: a wrong key costs the sender one attempt of
 * API_AUTH_FAILURE_LIMIT_MAX per API_AUTH_FAILURE_WINDOW_MS; past it, that address's further *wrong* keys are
 * answered 429 AUTH_RATE_LIMITED + Retry-After instead of 401. A valid key is never refused here: behind a proxy
 * or a NAT many tenants share one address, and one of them guessing must not lock the others out. What keeps a
 * guess from succeeding is the key's entropy; this limit bounds what guessing costs the API and marks the address.
 * The per-key limiter (plugins/external/rate-limit.ts) cannot do this: it is keyed by the (ever-changing) guessed
 * key. The address is request.ip, the client only through the hops TRUST_PROXY trusts (config/api.ts), so a
 * client cannot buy a fresh budget by sending another X-Forwarded-For.
 * Counts live in Redis, shared by every API replica; each replica also remembers the addresses it has seen
 * blocked, so a blocked sender's wrong keys cost no Redis command. With Redis unreachable the count falls back
 * to this process.
 */
import type { RedisClient } from '../common/redis';
import { ApiError } from './errors';

export interface FailedAuthLimit {
  /** Failed attempts allowed per window and address; 0 disables the limit. */
  max: number;
  windowMs: number;
}

/** Beyond this many tracked addresses, expired entries are dropped (and the oldest, if none has expired). */
const MAX_TRACKED = 10_000;

export class FailedAuthLimiter {
  private readonly blockedUntil = new Map<string, number>();
  private readonly localCounts = new Map<string, { count: number; resetAt: number }>();

  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly limit: FailedAuthLimit,
  ) {}

  /** Seconds this address must still wait (0: not blocked). Memory only. */
  blockedFor(ip: string): number {
    const until = this.blockedUntil.get(ip);
    if (until === undefined) return 0;
    const left = until - Date.now();
    if (left <= 0) {
      this.blockedUntil.delete(ip);
      return 0;
    }
    return Math.ceil(left / 1000);
  }

  /**
   * Counts one failed attempt: `retryAfterS` is the wait when the address is over the limit (else 0), and
   * `justBlocked` tells the attempt that crossed it (logged once per block, not once per guess). An address this
   * replica already knows to be blocked is answered from memory.
   */
  async recordFailure(ip: string): Promise<{ retryAfterS: number; justBlocked: boolean }> {
    if (this.limit.max === 0) return { retryAfterS: 0, justBlocked: false };
    const blocked = this.blockedFor(ip);
    if (blocked > 0) return { retryAfterS: blocked, justBlocked: false };
    const { count, ttlMs } = await this.increment(ip);
    if (count <= this.limit.max) return { retryAfterS: 0, justBlocked: false };
    const waitMs = ttlMs > 0 ? ttlMs : this.limit.windowMs;
    remember(this.blockedUntil, ip, Date.now() + waitMs);
    return { retryAfterS: Math.ceil(waitMs / 1000), justBlocked: true };
  }

  error(retryAfterS: number): ApiError {
    return new ApiError(
      429,
      'AUTH_RATE_LIMITED',
      `too many wrong keys from this address; retry after ${retryAfterS} s (a valid key is still served)`,
      { 'retry-after': String(retryAfterS) },
    );
  }

  private async increment(ip: string): Promise<{ count: number; ttlMs: number }> {
    const key = `${this.prefix}:api-auth-failures:${ip}`;
    try {
      const results = await this.redis.multi().set(key, 0, 'PX', this.limit.windowMs, 'NX').incr(key).pttl(key).exec();
      const count = Number(results?.[1]?.[1]);
      const ttlMs = Number(results?.[2]?.[1]);
      if (!Number.isFinite(count)) throw new Error('unexpected reply');
      return { count, ttlMs };
    } catch {
      // Redis unreachable, frozen or full: count in this process rather than let guessing go unlimited.
      const now = Date.now();
      let entry = this.localCounts.get(ip);
      if (!entry || entry.resetAt <= now) entry = { count: 0, resetAt: now + this.limit.windowMs };
      entry.count += 1;
      remember(this.localCounts, ip, entry);
      return { count: entry.count, ttlMs: entry.resetAt - now };
    }
  }
}

function remember<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size <= MAX_TRACKED) return;
  const now = Date.now();
  for (const [k, v] of map) {
    const expiry = typeof v === 'number' ? v : (v as { resetAt: number }).resetAt;
    if (expiry <= now) map.delete(k);
  }
  // Still full: forget the least recently touched (Map iteration is insertion order).
  for (const k of map.keys()) {
    if (map.size <= MAX_TRACKED) break;
    map.delete(k);
  }
}
