/**
 * Outbound quotas shared by every replica: at most N calls START in any window of the quota's length, per
 * dependency (per target host for webhook_host), whatever the number of replicas.
 *
 * A sliding log in Redis (sorted set of start tokens, one Lua script): a replica leases a small batch of tokens
 * (as many as callers wait, ≤ 1/20 of the quota) valid for LEASE_VALIDITY_MS, each scored at the END of its validity. Scoring at the latest
 * moment a token can be used is what makes the bound hold with leases: every start inside any window is still
 * counted when a later token is granted, so no window can hold more than N starts (docs/reliability.md).
 * Unused tokens expire with their validity, so batches stay small to keep the quota used, not starved.
 *
 * AIMD on 429s (catalog: OUTBOUND_POLICY.aimd), kept in the same slot as the log: a burst of 429s within a window
 * cuts the shared rate to decreaseFactor × what was really started; each clean window after the Retry-After adds
 * increaseShare of the quota back, up to the quota. A dependency answering 429 to nearly everything asks the
 * caller to pause the queue (Worker#rateLimit); otherwise only the job that met the 429 is deferred.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AimdPolicy, OutboundDependency, QuotaPolicy } from '../../common/queue-catalog';
import type { RedisClient } from '../../common/redis';

export const LEASE_VALIDITY_MS = 50;
/**
 * Tokens are scored this much past their validity: the host counts arrivals, not starts, and a request leaves the
 * process a few ms after its token (event-loop lag, a busy box); 50 ms of a 1 s window is 5 % of the quota's pace.
 */
export const ARRIVAL_GUARD_MS = 50;

// KEYS: log (zset), rate (hash). ARGV: mode, limit, windowMs, then
//   lease: want, validityMs, memberPrefix, increaseShare
//   limited: retryAfterMs, burstMin, burstRatio, decreaseFactor, pauseRatio, pauseMinCalls
const SCRIPT = `
local log, ratekey = KEYS[1], KEYS[2]
local mode, limit, windowMs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', log, '-inf', now - windowMs)
local h = {}
local raw = redis.call('HGETALL', ratekey)
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
local rate = tonumber(h.rate) or limit
if rate > limit then rate = limit end
if mode == 'lease' then
  local want, validity, member, share = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
  if h.rate and now >= tonumber(h.raiseAt) then
    rate = math.min(limit, rate + math.max(1, math.floor(limit * share)))
    if rate >= limit then redis.call('DEL', ratekey) else redis.call('HSET', ratekey, 'rate', rate, 'raiseAt', now + windowMs) end
  end
  local used = redis.call('ZCARD', log)
  local grant = math.min(want, rate - used)
  if grant > 0 then
    for i = 1, grant do redis.call('ZADD', log, now + validity, member .. ':' .. i) end
    redis.call('PEXPIRE', log, windowMs + validity + 1000)
    return { grant, 0, rate }
  end
  local first = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  local wait = 1
  if first[2] then wait = math.max(1, tonumber(first[2]) + windowMs - now + 1) end
  return { 0, wait, rate }
end
-- limited: the dependency answered 429
local retryAfter, burstMin, burstRatio = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local decrease, pauseRatio, pauseMin = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local w, n = tonumber(h.w), tonumber(h.n) or 0
if not w or now - w >= windowMs then w = now; n = 0 end
n = n + 1
local used = redis.call('ZCOUNT', log, now - windowMs, '+inf')
local cut = 0
local cutAt = tonumber(h.cutAt) or 0
if n >= burstMin and n >= burstRatio * used and now - cutAt >= windowMs then
  rate = math.max(1, math.floor(math.min(rate, math.max(used, 1)) * decrease))
  cutAt = now
  cut = 1
  redis.call('HSET', ratekey, 'rate', rate, 'raiseAt', now + math.max(windowMs, retryAfter), 'cutAt', cutAt)
elseif h.rate then
  -- a 429 in a window postpones the next raise: only clean windows raise the rate
  redis.call('HSET', ratekey, 'raiseAt', math.max(tonumber(h.raiseAt) or 0, now + math.max(windowMs, retryAfter)))
end
redis.call('HSET', ratekey, 'w', w, 'n', n)
redis.call('PEXPIRE', ratekey, math.max(windowMs * 20, 600000))
local pause = 0
if used >= pauseMin and n >= pauseRatio * used then pause = 1 end
return { cut, pause, rate }
`;

type Scripted = RedisClient & { outboundQuota(log: string, rate: string, ...args: (string | number)[]): Promise<number[]> };

export type QuotaDecision = { ok: true } | { ok: false; retryAfterMs: number };

export interface QuotaEvents {
  /** The rate now allowed for one target of a dependency, in calls per second. */
  rate(dependency: OutboundDependency, target: string, perSecond: number): void;
}

interface Bucket {
  tokens: number;
  validUntil: number;
  leasing?: Promise<number>;
  /** Callers of take() waiting on this bucket now: a lease asks for as many tokens (up to the batch), not more. */
  waiting: number;
  /** When the last refusal said the next token frees up (this process's clock). */
  nextFreeAt: number;
}

export class OutboundQuotas {
  private readonly redis: Scripted;
  private readonly buckets = new Map<string, Bucket>();
  private readonly member = randomUUID();
  private seq = 0;

  constructor(
    redis: RedisClient,
    private readonly prefix: string,
    private readonly quotas: Record<OutboundDependency, QuotaPolicy>,
    private readonly aimd: AimdPolicy,
    private readonly events: QuotaEvents,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {
    this.redis = redis as Scripted;
    if (typeof this.redis.outboundQuota !== 'function') redis.defineCommand('outboundQuota', { numberOfKeys: 2, lua: SCRIPT });
  }

  quota(dependency: OutboundDependency): QuotaPolicy {
    return this.quotas[dependency];
  }

  private keys(dependency: OutboundDependency, target: string): [string, string] {
    // Same hash tag as the dependency's circuits (common/outbound-circuits.ts): one slot per dependency.
    const tag = `{${this.prefix.replace(/[{}]/g, '')}:outbound:${dependency}}`;
    return [`${tag}:quota:${target}`, `${tag}:rate:${target}`];
  }

  private batch(q: QuotaPolicy): number {
    return Math.max(1, Math.floor(q.limit / 20));
  }

  /** Leases a batch into the bucket; resolves with 0 (tokens added) or the ms until a token frees up. */
  private lease(dependency: OutboundDependency, target: string, b: Bucket): Promise<number> {
    if (b.leasing) return b.leasing;
    const q = this.quotas[dependency];
    const [log, rate] = this.keys(dependency, target);
    // Validity counts from the request, not the reply: Redis scores the tokens at (its time on arrival + validity),
    // so a token used after requestedAt + validity could start outside what the log counted (a slow reply).
    const requestedAt = Date.now();
    b.leasing = this.redis
      .outboundQuota(log, rate, 'lease', q.limit, q.windowMs, Math.min(this.batch(q), Math.max(1, b.waiting)), LEASE_VALIDITY_MS + ARRIVAL_GUARD_MS, `${this.member}:${++this.seq}`, this.aimd.increaseShare)
      .then(([granted, waitMs, allowed]) => {
        this.events.rate(dependency, target, (Number(allowed) * 1000) / q.windowMs);
        if (Number(granted) > 0) {
          b.tokens = Number(granted);
          b.validUntil = requestedAt + LEASE_VALIDITY_MS;
          // A reply slower than the validity brings tokens already expired: wait that long before asking again,
          // or a slow Redis (a loaded box) would turn the loop in take() into a stream of wasted leases.
          return Date.now() < b.validUntil ? 0 : LEASE_VALIDITY_MS;
        }
        b.nextFreeAt = Date.now() + Number(waitMs);
        return Number(waitMs);
      })
      .catch((err: unknown) => {
        // Redis unreachable: let the call through rather than stop all outbound work.
        this.onError(err);
        b.tokens = 1;
        b.validUntil = Date.now() + LEASE_VALIDITY_MS;
        return 0;
      })
      .finally(() => {
        b.leasing = undefined;
      });
    return b.leasing;
  }

  /** Takes one start token, waiting for one up to `maxWaitMs`; past that, says how long until the next frees up. */
  async take(dependency: OutboundDependency, target: string, maxWaitMs: number, signal?: AbortSignal): Promise<QuotaDecision> {
    const key = `${dependency}\u0000${target}`;
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: 0, validUntil: 0, nextFreeAt: 0, waiting: 0 };
      this.buckets.set(key, b);
      if (this.buckets.size > 10_000) this.buckets.clear(); // webhook hosts are unbounded: keep memory bounded
    }
    const deadline = Date.now() + maxWaitMs;
    b.waiting++;
    try {
      return await this.takeFrom(dependency, target, b, deadline, signal);
    } finally {
      b.waiting--;
    }
  }

  private async takeFrom(dependency: OutboundDependency, target: string, b: Bucket, deadline: number, signal?: AbortSignal): Promise<QuotaDecision> {
    for (;;) {
      signal?.throwIfAborted();
      const now = Date.now();
      if (b.tokens > 0 && now < b.validUntil) {
        b.tokens--;
        return { ok: true };
      }
      b.tokens = 0;
      // Others of this process already learnt the log is full: do not ask Redis again before a token frees up.
      const waitMs = now < b.nextFreeAt ? b.nextFreeAt - now : await this.lease(dependency, target, b);
      if (waitMs === 0) continue;
      if (Date.now() + waitMs > deadline) return { ok: false, retryAfterMs: waitMs };
      await sleep(waitMs, undefined, signal ? { signal } : undefined);
    }
  }

  /** The dependency answered 429: adapts the shared rate; `pause` when it refuses nearly everything. */
  async rateLimited(dependency: OutboundDependency, target: string, retryAfterMs: number): Promise<{ pause: boolean; cut: boolean }> {
    const q = this.quotas[dependency];
    const a = this.aimd;
    const [log, rate] = this.keys(dependency, target);
    try {
      const [cut, pause, allowed] = await this.redis.outboundQuota(
        log, rate, 'limited', q.limit, q.windowMs, retryAfterMs, a.burstMin, a.burstRatio, a.decreaseFactor, a.pauseRatio, a.pauseMinCalls,
      );
      this.events.rate(dependency, target, (Number(allowed) * 1000) / q.windowMs);
      return { pause: Number(pause) === 1, cut: Number(cut) === 1 };
    } catch (err) {
      this.onError(err);
      return { pause: false, cut: false };
    }
  }
}
