/**
 * Stage "outbound": what the outbound boundary (services/worker/outbound/call.ts: circuit → quota → call →
 * record) costs per call on its closed path — every circuit closed, the quota not binding — against the same
 * calls made directly. It runs the worker's own classes, wired as services/worker/main.ts wires them (shared
 * circuit state and quota leases in the bench's Redis, prom-client metrics), in this process: the provider
 * call does no work but takes PROVIDER_LATENCY_MS, so the calls come at a worker's pace (the boundary's Redis work
 * is per time — leases per validity, syncs per interval — so a free-running loop would hide it), and what is left
 * after subtracting the direct calls is the boundary itself, in this process and in Redis.
 * Rounds are interleaved (direct / guarded) with the same in-flight count as a worker's concurrency; the
 * figure is median(guarded − direct) CPU per call, and its share of the stack's CPU per job from the cost
 * stage of the same run (goal ≤ 3 %).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { Redis } from 'ioredis';
import { CircuitStore } from '../../services/common/outbound-circuits';
import { OUTBOUND_DEPENDENCIES, OUTBOUND_POLICY, type OutboundDependency, type QuotaPolicy } from '../../services/common/queue-catalog';
import { createOutboundMetrics } from '../../services/common/telemetry/outbound-metrics';
import { createTelemetryGuard } from '../../services/common/telemetry/guard';
import { CircuitBreakers } from '../../services/worker/outbound/circuit';
import { OutboundQuotas } from '../../services/worker/outbound/quota';
import { OutboundBoundary } from '../../services/worker/outbound/call';
import { cpuSeconds } from '../proc';
import { waitQuiet } from '../measure';
import type { OutboundCost, OutboundRun } from '../results';
import type { BenchContext } from '../stack';
import { fmt, median } from '../stats';

const DEPENDENCY: OutboundDependency = 'notification_provider';
/** A worker's calls in flight: the bench's worker concurrency. */
const IN_FLIGHT = 50;
/** Far above what one process can start: the quota is taken (leases, Lua) but never makes a call wait. */
const UNBINDING: QuotaPolicy = { limit: 1_000_000, windowMs: 1_000 };

/**
 * 50 in flight ÷ 15 ms ≈ 3,300 calls/s: the pace of one saturated worker process on this machine class
 * (docs/benchmarks.md, capacity), where the boundary's per-interval Redis work weighs most per call.
 */
const PROVIDER_LATENCY_MS = 15;

const callProvider = async (): Promise<string> => {
  await sleep(PROVIDER_LATENCY_MS);
  return 'sent';
};

async function closedLoop(calls: number, one: () => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next++ < calls) await one();
    }),
  );
}

async function measureRun(ctx: BenchContext, mode: OutboundRun['mode'], calls: number, one: () => Promise<unknown>): Promise<OutboundRun> {
  const redisPid = ctx.redisServer.managed.pid;
  const self0 = process.cpuUsage();
  const redis0 = cpuSeconds(redisPid);
  const t0 = performance.now();
  await closedLoop(calls, one);
  const seconds = (performance.now() - t0) / 1000;
  const self = process.cpuUsage(self0);
  const perCall = (s: number) => (s * 1000) / calls;
  const processMs = perCall((self.user + self.system) / 1e6);
  const redisMs = perCall(cpuSeconds(redisPid) - redis0);
  return { mode, calls, callsPerS: calls / seconds, cpuMsPerCall: { process: processMs, redis: redisMs, total: processMs + redisMs } };
}

export async function stageOutbound(ctx: BenchContext, stackCpuMsPerJob: number | undefined): Promise<OutboundCost> {
  const { plan } = ctx;
  const connection = new Redis(ctx.redisServer.url, { maxRetriesPerRequest: null });
  const quotas = Object.fromEntries(OUTBOUND_DEPENDENCIES.map((d) => [d, UNBINDING])) as Record<OutboundDependency, QuotaPolicy>;
  const store = new CircuitStore(connection, 'bench-outbound', OUTBOUND_POLICY.breaker);
  const metrics = createOutboundMetrics(new Registry(), { quotas, openCircuits: async (d) => (await store.list(d)).length });
  const failures: unknown[] = [];
  const boundary = new OutboundBoundary(
    new CircuitBreakers(store, OUTBOUND_POLICY.breaker, metrics, (err) => failures.push(err)),
    new OutboundQuotas(connection, 'bench-outbound', quotas, OUTBOUND_POLICY.aimd, metrics, (err) => failures.push(err)),
    metrics,
    createTelemetryGuard((_what, err) => failures.push(err)),
  );
  const guarded = () => boundary.call(DEPENDENCY, DEPENDENCY, callProvider);
  ctx.log(`outbound: ${plan.outboundRounds} interleaved rounds (direct / through the boundary), ${fmt(plan.outboundCalls)} provider calls each (no work, ${PROVIDER_LATENCY_MS} ms), ${IN_FLIGHT} in flight, circuits closed, quota not binding`);
  const runs: OutboundRun[] = [];
  try {
    // Warm-up: JIT, the Lua scripts loaded, the local circuit state cached.
    await closedLoop(Math.round(plan.outboundCalls / 5), guarded);
    await closedLoop(Math.round(plan.outboundCalls / 5), callProvider);
    for (let round = 0; round < plan.outboundRounds; round++) {
      await waitQuiet(ctx, `outbound round ${round + 1}`);
      for (const [mode, one] of [['direct', callProvider], ['guarded', guarded]] as const) {
        const run = await measureRun(ctx, mode, plan.outboundCalls, one);
        runs.push(run);
        ctx.log(`  ${mode}: ${fmt(run.callsPerS)} calls/s; CPU µs/call process ${fmt(run.cpuMsPerCall.process * 1000, 1)}, redis ${fmt(run.cpuMsPerCall.redis * 1000, 1)}`);
      }
    }
  } finally {
    connection.disconnect();
  }
  if (failures.length > 0) {
    // A boundary that could not reach its state lets calls through without the Redis work: that is not the closed path.
    throw new Error(`outbound stage: the boundary reported ${failures.length} errors (first: ${(failures[0] as Error).message})`);
  }
  const per = (mode: OutboundRun['mode']) => runs.filter((r) => r.mode === mode);
  const extra = per('guarded').map((g, i) => g.cpuMsPerCall.total - per('direct')[i]!.cpuMsPerCall.total);
  const extraProcess = per('guarded').map((g, i) => g.cpuMsPerCall.process - per('direct')[i]!.cpuMsPerCall.process);
  const extraRedis = per('guarded').map((g, i) => g.cpuMsPerCall.redis - per('direct')[i]!.cpuMsPerCall.redis);
  const cpuMsPerCall = { process: median(extraProcess), redis: median(extraRedis), total: median(extra) };
  const share = stackCpuMsPerJob && Number.isFinite(stackCpuMsPerJob) ? cpuMsPerCall.total / stackCpuMsPerJob : NaN;
  ctx.log(`  boundary closed path: ${fmt(cpuMsPerCall.total * 1000, 1)} µs CPU per call (process ${fmt(cpuMsPerCall.process * 1000, 1)}, redis ${fmt(cpuMsPerCall.redis * 1000, 1)})${Number.isFinite(share) ? `, ${fmt(share * 100, 1)} % of the stack's CPU per job` : ''}`);
  return { runs, cpuMsPerCall, shareOfJob: share, stackCpuMsPerJob: stackCpuMsPerJob ?? NaN };
}
