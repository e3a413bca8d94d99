/**
 * What the stages read while the services run: job counts and end-to-end latency from BullMQ's own Redis keys
 * (identical with metrics disabled), /metrics scrape times, and the CPU share of every process in a window.
 */
import { cpus } from 'node:os';
import * as hdr from 'hdr-histogram-js';
import type { Cluster, Redis } from 'ioredis';
import { delay, every, waitFor } from '../scripts/lib/wait';
import { PREFIX, QUEUES, QUIET_CPU } from './plan';
import { cpuSeconds, machineBusySeconds } from './proc';
import type { BenchContext, Service, Services } from './stack';
import { fmt } from './stats';

export interface Counts {
  added: number;
  outstanding: number;
  failed: number;
  done: number;
}

/**
 * Jobs added (the id counter), outstanding (waiting, prioritized, active, delayed), failed and done. `prefix` is
 * the key prefix, or the prefix of each queue (on a cluster every queue has its own hash tag). One pipeline per
 * queue: a queue's keys share a slot, so this works on a Redis Cluster client too.
 */
export async function counts(redis: Redis | Cluster, prefix: string | ((queue: string) => string) = PREFIX, queues: readonly string[] = QUEUES): Promise<Counts> {
  const perQueue = await Promise.all(
    queues.map(async (q) => {
      const k = (s: string) => `${typeof prefix === 'string' ? prefix : prefix(q)}:${q}:${s}`;
      const p = redis.pipeline();
      p.get(k('id')).llen(k('wait')).zcard(k('prioritized')).llen(k('active')).zcard(k('delayed')).zcard(k('failed'));
      return ((await p.exec()) ?? []).map(([, v]) => Number(v ?? 0));
    }),
  );
  let added = 0;
  let outstanding = 0;
  let failed = 0;
  for (const [id, wait, prio, active, delayed, fail] of perQueue) {
    added += id!;
    outstanding += wait! + prio! + active! + delayed!;
    failed += fail!;
  }
  return { added, outstanding, failed, done: added - outstanding - failed };
}

/** Waits (bounded) until no job is outstanding; resolves with what is still outstanding then. */
export async function drain(redis: Redis | Cluster, maxMs = 60_000, prefix: Parameters<typeof counts>[1] = PREFIX, queues: readonly string[] = QUEUES): Promise<number> {
  await waitFor(async () => (await counts(redis, prefix, queues)).outstanding === 0, { timeoutMs: maxMs, intervalMs: 100, what: 'backlog drained' }).catch(
    () => undefined, // reported through the returned backlog
  );
  return (await counts(redis, prefix, queues)).outstanding;
}

/** Calls per Redis command since the server started (INFO commandstats), e.g. { evalsha: 1200, hget: 40 }. */
export async function commandCalls(redis: Redis): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const m of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls[m[1]!] = Number(m[2]);
  return calls;
}

/**
 * Redis commands per job between two commandCalls readings, by command, largest first (the readings' own INFO and
 * the bench's count polls are in it: a few hundred calls per run against tens of thousands of jobs).
 */
export function commandsPerJob(before: Record<string, number>, after: Record<string, number>, jobs: number): Record<string, number> {
  const perJob = Object.entries(after)
    .map(([cmd, n]) => [cmd, (n - (before[cmd] ?? 0)) / jobs] as const)
    .filter(([cmd, x]) => cmd !== 'info' && x >= 0.005)
    .sort((a, b) => b[1] - a[1]);
  return Object.fromEntries(perJob);
}

/** Keys matching a pattern (the ledger keeps one expiring key per payment). SCAN: bench-only, never the product. */
export async function countKeys(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 5000);
    cursor = next;
    n += keys.length;
  } while (cursor !== '0');
  return n;
}

export interface E2e {
  samples: number;
  p50: number;
  p99: number;
  max: number;
}

/** Samples end-to-end latency (finishedOn − timestamp) of jobs completed since `since`, from BullMQ's own hashes. */
export function e2eSampler(redis: Redis, since: number): { stop(): Promise<E2e> } {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000, numberOfSignificantValueDigits: 3 });
  const last: Record<string, number> = Object.fromEntries(QUEUES.map((q) => [q, since]));
  let samples = 0;
  const poll = async () => {
    for (const q of QUEUES) {
      const res = await redis.zrangebyscore(`${PREFIX}:${q}:completed`, `(${last[q]}`, '+inf', 'WITHSCORES');
      if (res.length === 0) continue;
      const ids: string[] = [];
      for (let i = 0; i < res.length; i += 2) ids.push(res[i]!);
      last[q] = Number(res[res.length - 1]);
      const step = Math.max(1, Math.floor(ids.length / 250)); // ≤ 250 jobs per queue per poll
      const p = redis.pipeline();
      for (let i = 0; i < ids.length; i += step) p.hmget(`${PREFIX}:${q}:${ids[i]}`, 'timestamp', 'finishedOn');
      for (const [, v] of (await p.exec()) ?? []) {
        const [ts, fin] = (v as (string | null)[]) ?? [];
        if (!ts || !fin || Number(ts) < since) continue;
        h.recordValue(Math.max(1, Number(fin) - Number(ts)));
        samples++;
      }
    }
  };
  const sampler = every(500, poll);
  return {
    stop: async () => {
      await sampler.stop();
      return { samples, p50: h.getValueAtPercentile(50), p99: h.getValueAtPercentile(99), max: h.maxValue };
    },
  };
}

const OPENMETRICS_ACCEPT = 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';

/** One Prometheus-style scrape: its duration (ms) and body. */
export async function scrapeOnce(port: number): Promise<{ ms: number; body: string }> {
  const t = performance.now();
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { accept: OPENMETRICS_ACCEPT } });
  const body = await res.text();
  return { ms: performance.now() - t, body };
}

/** Scrapes every service each `everyMs` until stopped; scrape durations per metrics port (NaN = failed). */
export function scrapeSampler(services: Service[], everyMs: number): { stop(): Promise<Record<number, number[]>> } {
  const times: Record<number, number[]> = Object.fromEntries(services.map((s) => [s.metricsPort, []]));
  const sampler = every(everyMs, async () => {
    for (const s of services) times[s.metricsPort]!.push((await scrapeOnce(s.metricsPort).catch(() => ({ ms: NaN }))).ms);
  });
  return { stop: async () => (await sampler.stop(), times) };
}

/** Sum of every sample of a metric family in a text exposition. */
export function metricSum(body: string, name: string): number {
  let sum = 0;
  for (const line of body.split('\n')) if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.split(' ')[1]);
  return sum;
}

/** CPU of a measured window, % of one core: each role, the load generator, and other processes on the machine. */
export interface CpuShare {
  api: number;
  worker: number;
  redis: number;
  loadgen: number;
  other: number;
  total: number;
}

/**
 * Starts a CPU reading of some processes (each role read by a function, CPU seconds); closing it returns the
 * seconds each used, the wall time, and what the rest of the machine used meanwhile (`other`: machine busy time
 * minus these processes, helpers such as the load generator, and this orchestrator). `override` replaces a role's
 * reading with a figure the process reported itself (a producer that exits before the window closes).
 */
export function cpuReading<K extends string>(readers: Record<K, () => number>) {
  const keys = Object.keys(readers) as K[];
  const read = () => Object.fromEntries(keys.map((k) => [k, readers[k]()])) as Record<K, number>;
  const before = read();
  const busy0 = machineBusySeconds();
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  return (helperCpu: number, override: Partial<Record<K, number>> = {}) => {
    const after = read();
    const used = Object.fromEntries(keys.map((k) => [k, override[k] ?? after[k] - before[k]])) as Record<K, number>;
    const self = process.cpuUsage(self0);
    const wall = (performance.now() - t0) / 1000;
    const ours = keys.reduce((a, k) => a + used[k], 0);
    const other = Math.max(0, machineBusySeconds() - busy0 - ours - helperCpu - (self.user + self.system) / 1e6);
    return { used, wall, other, busy: machineBusySeconds() - busy0 };
  };
}

/** Starts a CPU window; call the result with the load generator's CPU seconds to close it. */
export function cpuWindow(ctx: BenchContext, services: Services, redisPids = [ctx.redisServer.managed.pid]): (loadgenCpu: number) => CpuShare {
  const sum = (pids: number[]) => () => pids.reduce((a, p) => a + cpuSeconds(p), 0);
  const close = cpuReading({ api: sum(services.apis.map((s) => s.pid)), worker: sum(services.workers.map((s) => s.pid)), redis: sum(redisPids) });
  return (loadgenCpu) => {
    const { used, wall, other, busy } = close(loadgenCpu);
    // Whatever else ran on the machine meanwhile (other users' processes): contamination, reported not hidden.
    const share = (cpu: number) => Math.round((cpu / wall) * 100);
    return { api: share(used.api), worker: share(used.worker), redis: share(used.redis), loadgen: share(loadgenCpu), other: share(other), total: share(busy) };
  };
}

export const cpuText = (c: CpuShare): string =>
  `CPU % of one core: api ${c.api}, worker ${c.worker}, redis ${c.redis}, load generator ${c.loadgen}, other processes ${c.other}; machine busy ${c.total} of ${cpus().length * 100}`;

/**
 * The machine may be shared (CI, other users): before a measured window, wait (bounded, and only while the
 * run's budget lasts) until the whole machine is nearly idle while our idle services sit still; note it when
 * it never gets there.
 */
export async function waitQuiet(ctx: BenchContext, what: string, maxMs = 15_000): Promise<void> {
  let busy = 0;
  const quiet = await waitFor(
    async () => {
      const b0 = machineBusySeconds();
      await delay(1000);
      busy = (machineBusySeconds() - b0) * 100;
      return busy <= QUIET_CPU;
    },
    { timeoutMs: ctx.withinBudget() ? maxMs : 0, intervalMs: 0, what: 'a quiet machine' },
  ).catch(() => false);
  if (quiet) return;
  const msg = `${what}: machine still ${Math.round(busy)} % busy (of ${cpus().length * 100}) from other processes after waiting up to ${fmt(maxMs / 1000)} s; measured anyway`;
  ctx.contention.push(msg);
  ctx.log(`  WARNING ${msg}`);
}

/** Notes a window kept although other processes used more than allowed in every attempt. */
export function noteContended(ctx: BenchContext, what: string, otherPct: number): void {
  ctx.contention.push(`${what}: other processes used ${otherPct} % of a core in every attempt (or the time budget for repeats was used up); last attempt kept`);
}
