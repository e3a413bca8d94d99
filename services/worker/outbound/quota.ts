/**
 * Outbound quotas shared by every replica: at most N calls START in any window of the quota's length, per
 * dependency (per target host for webhook_host), whatever the number of replicas.
 *
 * A sliding log in Redis (one Lua script): a replica leases a small batch of tokens valid for LEASE_VALIDITY_MS,
 * logged as ONE sorted-set member `<lease id>:<count>` scored at the END of its validity, with the log's total
 * kept beside it (`…:used`) so a lease costs O(1) however many tokens it holds. Scoring at the latest moment a
 * token can be used is what makes the bound hold with leases: every start inside any window is still counted when
 * a later token is granted, so no window can hold more than N starts (docs/reliability.md). Unused tokens expire
 * with their validity, so a batch is what this process would start within one validity (its recent pace, at least
 * the callers waiting now), capped at 1/20 of the quota: the quota is used, not starved, and a fast caller asks
 * Redis a few times per validity, not once per call (the bench's outbound stage measures the cost).
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

// KEYS: log (zset of leases), rate (hash), used (the log's token total). ARGV: mode, limit, windowMs,
//   lastLease (this caller's latest log member, or ''), notStarted (its tokens this caller did not start), then
//   lease: want, validityMs, memberPrefix, increaseShare
//   limited: retryAfterMs, burstMin, burstRatio, decreaseFactor, pauseRatio, pauseMinCalls
const SCRIPT = `
local log, ratekey, usedkey = KEYS[1], KEYS[2], KEYS[3]
local mode, limit, windowMs = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function tokens(member) return tonumber(string.match(member, ':(%d+)$')) or 1 end
local used = tonumber(redis.call('GET', usedkey))
local expired = redis.call('ZRANGEBYSCORE', log, '-inf', now - windowMs)
if #expired > 0 then
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - windowMs)
  if used then
    for _, m in ipairs(expired) do used = used - tokens(m) end
  end
end
if not used or used < 0 then
  -- the total was lost (its key expired first, or an older worker's log): count the log once
  used = 0
  for _, m in ipairs(redis.call('ZRANGE', log, 0, -1)) do used = used + tokens(m) end
end
local dirty = #expired > 0
local last, notStarted = ARGV[4], tonumber(ARGV[5])
local lastInLog = notStarted > 0 and last ~= '' and redis.call('ZSCORE', log, last)
if mode == 'lease' and lastInLog then
  -- A lease is asked for once the last one's validity is over: its tokens not started never will be, so the log
  -- keeps only the starts (the bound is about starts; other replicas get the rest).
  redis.call('ZREM', log, last)
  local kept = tokens(last) - notStarted
  if kept > 0 then redis.call('ZADD', log, lastInLog, string.match(last, '^(.*):%d+$') .. ':' .. kept) end
  used = math.max(0, used - notStarted)
  dirty = true
end
if dirty then
  if used > 0 then redis.call('SET', usedkey, used, 'KEEPTTL') else redis.call('DEL', usedkey) end
end
local h = {}
local raw = redis.call('HGETALL', ratekey)
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
local rate = tonumber(h.rate) or limit
if rate > limit then rate = limit end
if mode == 'lease' then
  local want, validity, member, share = tonumber(ARGV[6]), tonumber(ARGV[7]), ARGV[8], tonumber(ARGV[9])
  if h.rate and now >= tonumber(h.raiseAt) then
    rate = math.min(limit, rate + math.max(1, math.floor(limit * share)))
    if rate >= limit then redis.call('DEL', ratekey) else redis.call('HSET', ratekey, 'rate', rate, 'raiseAt', now + windowMs) end
  end
  local grant = math.min(want, rate - used)
  if grant > 0 then
    local ttl = windowMs + validity + 1000
    redis.call('ZADD', log, now + validity, member .. ':' .. grant)
    redis.call('PEXPIRE', log, ttl)
    redis.call('SET', usedkey, used + grant, 'PX', ttl)
    return { grant, 0, rate }
  end
  local first = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
  local wait = 1
  if first[2] then wait = math.max(1, tonumber(first[2]) + windowMs - now + 1) end
  return { 0, wait, rate }
end
-- limited: the dependency answered 429
local retryAfter, burstMin, burstRatio = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local decrease, pauseRatio, pauseMin = tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
-- what was really started: the caller's own leased tokens still unused are not (others' are a batch at most)
if lastInLog then used = math.max(0, used - notStarted) end
local w, n = tonumber(h.w), tonumber(h.n) or 0
if not w or now - w >= windowMs then w = now; n = 0 end
n = n + 1
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

type Scripted = RedisClient & { outboundQuota(log: string, rate: string, used: string, ...args: (string | number)[]): Promise<number[]> };

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
  /** The log member of the latest lease (`<id>:<count>`): its unused tokens are handed back with the next call. */
  member: string;
  /** Tokens used since paceSince (the last lease): this process's recent pace, which sizes the next lease. */
  used: number;
  paceSince: number;
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
    if (typeof this.redis.outboundQuota !== 'function') redis.defineCommand('outboundQuota', { numberOfKeys: 3, lua: SCRIPT });
  }

  quota(dependency: OutboundDependency): QuotaPolicy {
    return this.quotas[dependency];
  }

  private keys(dependency: OutboundDependency, target: string): [string, string, string] {
    // Same hash tag as the dependency's circuits (common/outbound-circuits.ts): one slot per dependency.
    const tag = `{${this.prefix.replace(/[{}]/g, '')}:outbound:${dependency}}`;
    return [`${tag}:quota:${target}`, `${tag}:rate:${target}`, `${tag}:quota-used:${target}`];
  }

  private batch(q: QuotaPolicy): number {
    return Math.max(1, Math.floor(q.limit / 20));
  }

  /** Tokens to ask for: what this process started per validity lately, at least the callers waiting now, at most a batch. */
  private want(q: QuotaPolicy, b: Bucket, now: number): number {
    const elapsed = Math.max(1, now - b.paceSince);
    const pace = Math.ceil((b.used * LEASE_VALIDITY_MS) / elapsed);
    b.used = 0;
    b.paceSince = now;
    return Math.min(this.batch(q), Math.max(1, b.waiting, pace));
  }

  /** Leases a batch into the bucket; resolves with 0 (tokens added) or the ms until a token frees up. */
  private lease(dependency: OutboundDependency, target: string, b: Bucket): Promise<number> {
    if (b.leasing) return b.leasing;
    const q = this.quotas[dependency];
    const [log, rate, used] = this.keys(dependency, target);
    // Validity counts from the request, not the reply: Redis scores the tokens at (its time on arrival + validity),
    // so a token used after requestedAt + validity could start outside what the log counted (a slow reply).
    const requestedAt = Date.now();
    // This lease's validity is over (or its tokens are all used): hand back what was not started.
    const last = b.member;
    const notStarted = b.tokens;
    b.tokens = 0;
    b.member = '';
    const member = `${this.member}:${++this.seq}`;
    b.leasing = this.redis
      .outboundQuota(log, rate, used, 'lease', q.limit, q.windowMs, last, notStarted, this.want(q, b, requestedAt), LEASE_VALIDITY_MS + ARRIVAL_GUARD_MS, member, this.aimd.increaseShare)
      .then(([granted, waitMs, allowed]) => {
        this.events.rate(dependency, target, (Number(allowed) * 1000) / q.windowMs);
        if (Number(granted) > 0) {
          b.tokens = Number(granted);
          b.member = `${member}:${b.tokens}`;
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

  /** Takes a token already leased to this process, without a promise; false when take() must lease (or wait). */
  takeLeased(dependency: OutboundDependency, target: string): boolean {
    const b = this.buckets.get(`${dependency}\u0000${target}`);
    if (!b || b.tokens <= 0 || Date.now() >= b.validUntil) return false;
    b.tokens--;
    b.used++;
    return true;
  }

  /** Takes one start token, waiting for one up to `maxWaitMs`; past that, says how long until the next frees up. */
  async take(dependency: OutboundDependency, target: string, maxWaitMs: number, signal?: AbortSignal): Promise<QuotaDecision> {
    const key = `${dependency}\u0000${target}`;
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: 0, validUntil: 0, nextFreeAt: 0, waiting: 0, member: '', used: 0, paceSince: Date.now() };
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
        b.used++;
        return { ok: true };
      }
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
    const [log, rate, used] = this.keys(dependency, target);
    const b = this.buckets.get(`${dependency}\u0000${target}`);
    try {
      const [cut, pause, allowed] = await this.redis.outboundQuota(
        log, rate, used, 'limited', q.limit, q.windowMs, b?.member ?? '', b?.tokens ?? 0, retryAfterMs, a.burstMin, a.burstRatio, a.decreaseFactor, a.pauseRatio, a.pauseMinCalls,
      );
      this.events.rate(dependency, target, (Number(allowed) * 1000) / q.windowMs);
      return { pause: Number(pause) === 1, cut: Number(cut) === 1 };
    } catch (err) {
      this.onError(err);
      return { pause: false, cut: false };
    }
  }
}
