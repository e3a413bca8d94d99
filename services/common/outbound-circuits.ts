/**
 * Circuit-breaker state shared by every worker replica, in Redis: one Lua script records outcomes and decides
 * (closed → open → half-open → closed) atomically, so replicas never disagree on a circuit. The worker's breaker
 * (services/worker/outbound/circuit.ts) caches it; the admin API (routes/admin/circuits.ts) and /queue/status read
 * and reset it here.
 *
 * Keys: every key of a dependency's circuits carries the hash tag `{<QUEUE_PREFIX>:outbound:<dependency>}`, so one
 * script call touches one slot on a Redis Cluster: `…:circuit:<target>` (hash: state, openedAt, openMs,
 * nextProbeAt, failures, and the rolling window's per-second buckets c<n>/f<n>), `…:probe:<target>` (the one
 * half-open probe's lease, SET NX PX) and `…:open` (sorted set of the targets not closed, by openedAt).
 * Time is Redis's (TIME), so replicas with skewed clocks still agree on windows and probe times.
 */
import type { BreakerPolicy, OutboundDependency } from './queue-catalog';
import type { RedisClient } from './redis';

export type CircuitState = 'closed' | 'open' | 'half_open';
export type CircuitTransition = 'open' | 'half_open' | 'closed';

/** What the script answers: the circuit's state after the call, and the transition it made (if any). */
export interface CircuitReply {
  state: CircuitState;
  openedAt: number;
  nextProbeAt: number;
  openMs: number;
  /** Redis's clock when the script ran (ms). */
  now: number;
  transition?: CircuitTransition;
  /** mode probe: this caller holds the probe lease. */
  granted: boolean;
}

export interface CircuitInfo {
  dependency: OutboundDependency;
  target: string;
  state: CircuitState;
  openedAt: string;
  nextProbeAt: string;
  recentFailures: number;
}

const BUCKET_MS = 1_000;
/** A circuit left open (no job touches it) is forgotten after a day: the longest a job waits for one (webhooks). */
const OPEN_TTL_MS = 24 * 3_600_000;

// KEYS: hash, probe, index. ARGV: mode, windowMs, bucketMs, minCalls, failureRatio, openMs, maxOpenMs, leaseMs,
// target, openTtlMs, then per mode: record ok fail | probe token | probe_result token ok(1/0) | release token | reset | read.
const SCRIPT = `
local hash, probe, index = KEYS[1], KEYS[2], KEYS[3]
local mode = ARGV[1]
local windowMs, bucketMs, minCalls, ratio = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local openMs0, maxOpenMs, leaseMs, target, openTtl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9], tonumber(ARGV[10])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = {}
local raw = redis.call('HGETALL', hash)
for i = 1, #raw, 2 do h[raw[i]] = raw[i + 1] end
local state = h.state or 'closed'
local transition = ''
local granted = 0

local function window()
  local first = math.floor(now / bucketMs) - math.floor(windowMs / bucketMs) + 1
  local calls, fails, stale = 0, 0, {}
  for k, v in pairs(h) do
    local kind, idx = string.match(k, '^([cf])(%d+)$')
    if kind then
      if tonumber(idx) < first then table.insert(stale, k)
      elseif kind == 'c' then calls = calls + tonumber(v)
      else fails = fails + tonumber(v) end
    end
  end
  if #stale > 0 then redis.call('HDEL', hash, unpack(stale)) end
  return calls, fails
end

local function open(ms, failures)
  local openedAt = h.openedAt or tostring(now)
  if state == 'closed' then openedAt = tostring(now) end
  redis.call('HSET', hash, 'state', 'open', 'openedAt', openedAt, 'openMs', ms, 'nextProbeAt', now + ms, 'failures', failures)
  redis.call('PEXPIRE', hash, openTtl)
  redis.call('ZADD', index, tonumber(openedAt), target)
  h.state, h.openedAt, h.openMs, h.nextProbeAt = 'open', openedAt, tostring(ms), tostring(now + ms)
  state = 'open'
  transition = 'open'
end

local function close()
  redis.call('DEL', hash, probe)
  redis.call('ZREM', index, target)
  h = {}
  if state ~= 'closed' then transition = 'closed' end
  state = 'closed'
end

if mode == 'record' then
  local ok, fail = tonumber(ARGV[11]), tonumber(ARGV[12])
  -- Outcomes reaching an open or half-open circuit were started before it opened: they decide nothing.
  if state == 'closed' and ok + fail > 0 then
    local cur = math.floor(now / bucketMs)
    h['c' .. cur] = tostring(redis.call('HINCRBY', hash, 'c' .. cur, ok + fail))
    if fail > 0 then h['f' .. cur] = tostring(redis.call('HINCRBY', hash, 'f' .. cur, fail)) end
    local calls, fails = window()
    if calls >= minCalls and fails >= ratio * calls then
      open(openMs0, fails)
    else
      redis.call('PEXPIRE', hash, windowMs * 2)
    end
  end
elseif mode == 'probe' then
  if (state == 'open' and now >= tonumber(h.nextProbeAt)) or state == 'half_open' then
    if redis.call('SET', probe, ARGV[11], 'NX', 'PX', leaseMs) then
      granted = 1
      if state == 'open' then
        redis.call('HSET', hash, 'state', 'half_open')
        state = 'half_open'
        transition = 'half_open'
      end
    end
  end
elseif mode == 'probe_result' then
  if redis.call('GET', probe) == ARGV[11] then
    if ARGV[12] == '1' then
      close()
    else
      redis.call('DEL', probe)
      open(math.min((tonumber(h.openMs) or openMs0) * 2, maxOpenMs), (tonumber(h.failures) or 0) + 1)
    end
  end
elseif mode == 'release' then
  if redis.call('GET', probe) == ARGV[11] then redis.call('DEL', probe) end
elseif mode == 'reset' then
  close()
end
return { state, h.openedAt or '0', h.nextProbeAt or '0', h.openMs or '0', tostring(now), transition, granted }
`;

// KEYS: index. ARGV: prefix of the circuit hashes. Lists the circuits not closed, dropping index entries whose
// circuit expired (the same slot: the keys share the dependency's hash tag).
const LIST_SCRIPT = `
local out = {}
for _, target in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local v = redis.call('HMGET', ARGV[1] .. target, 'state', 'openedAt', 'nextProbeAt', 'failures')
  if v[1] then
    table.insert(out, { target, v[1], v[2] or '0', v[3] or '0', v[4] or '0' })
  else
    redis.call('ZREM', KEYS[1], target)
  end
end
return out
`;

type Scripted = RedisClient & {
  outboundCircuit(hash: string, probe: string, index: string, ...args: (string | number)[]): Promise<string[]>;
  outboundCircuitList(index: string, hashPrefix: string): Promise<string[][]>;
};

function scripted(redis: RedisClient): Scripted {
  const r = redis as Scripted;
  if (typeof r.outboundCircuit !== 'function') {
    redis.defineCommand('outboundCircuit', { numberOfKeys: 3, lua: SCRIPT });
    redis.defineCommand('outboundCircuitList', { numberOfKeys: 1, lua: LIST_SCRIPT });
  }
  return r;
}

export class CircuitStore {
  private readonly redis: Scripted;

  constructor(redis: RedisClient, private readonly prefix: string, private readonly policy: BreakerPolicy) {
    this.redis = scripted(redis);
  }

  /** The hash tag shared by every key of one dependency's circuits. */
  tag(dependency: OutboundDependency): string {
    return `{${this.prefix.replace(/[{}]/g, '')}:outbound:${dependency}}`;
  }

  private async run(dependency: OutboundDependency, target: string, mode: string, ...extra: (string | number)[]): Promise<CircuitReply> {
    const tag = this.tag(dependency);
    const p = this.policy;
    const r = await this.redis.outboundCircuit(
      `${tag}:circuit:${target}`, `${tag}:probe:${target}`, `${tag}:open`,
      mode, p.windowMs, BUCKET_MS, p.minCalls, p.failureRatio, p.openMs, p.maxOpenMs, p.probeLeaseMs, target, OPEN_TTL_MS, ...extra,
    );
    return {
      state: r[0] as CircuitState,
      openedAt: Number(r[1]),
      nextProbeAt: Number(r[2]),
      openMs: Number(r[3]),
      now: Number(r[4]),
      transition: r[5] ? (r[5] as CircuitTransition) : undefined,
      granted: Number(r[6]) === 1,
    };
  }

  /** Adds a batch of outcomes to the rolling window (closed circuits only) and answers the current state. */
  record(dependency: OutboundDependency, target: string, successes: number, failures: number): Promise<CircuitReply> {
    return this.run(dependency, target, 'record', successes, failures);
  }

  /** Asks for the one half-open probe (granted once the open time is over and no probe is in flight). */
  probe(dependency: OutboundDependency, target: string, token: string): Promise<CircuitReply> {
    return this.run(dependency, target, 'probe', token);
  }

  /** The probe's outcome: success closes the circuit, failure re-opens it with the open time doubled. */
  probeResult(dependency: OutboundDependency, target: string, token: string, ok: boolean): Promise<CircuitReply> {
    return this.run(dependency, target, 'probe_result', token, ok ? 1 : 0);
  }

  /** The probe was not sent after all (e.g. the host had no free slot): another call may probe. */
  release(dependency: OutboundDependency, target: string, token: string): Promise<CircuitReply> {
    return this.run(dependency, target, 'release', token);
  }

  /** Closes a circuit by hand (admin API). */
  reset(dependency: OutboundDependency, target: string): Promise<CircuitReply> {
    return this.run(dependency, target, 'reset');
  }

  /** Every circuit of a dependency that is not closed. */
  async list(dependency: OutboundDependency): Promise<CircuitInfo[]> {
    const tag = this.tag(dependency);
    const rows = await this.redis.outboundCircuitList(`${tag}:open`, `${tag}:circuit:`);
    return rows.map(([target, state, openedAt, nextProbeAt, failures]) => ({
      dependency,
      target: target!,
      state: state as CircuitState,
      openedAt: new Date(Number(openedAt)).toISOString(),
      nextProbeAt: new Date(Number(nextProbeAt)).toISOString(),
      recentFailures: Number(failures),
    }));
  }
}
