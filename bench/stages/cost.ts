/**
 * Stage "cost": CPU ms per job of the product (API + worker + Redis) against plain BullMQ (producer + worker +
 * Redis) doing the same job — notifications-shaped data, the product's job options (bench/baseline.ts
 * "product"), the same worker concurrency, COST_IN_FLIGHT requests or adds in flight, closed loop — and the
 * product with all telemetry off. Interleaved rounds plain / default / disabled with fresh processes and FLUSHALL
 * each; CPU is read from /proc from the first add until the last job is done, so the worker's tail counts.
 * Then one profiled round (plain and default, --cpu-prof, not measured for CPU) splits each process's CPU by
 * component (bench/profile.ts), which is what explains the ratio.
 */
import { mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { ManagedProcess } from '../../scripts/lib/process';
import { every } from '../../scripts/lib/wait';
import { commandCalls, commandsPerJob, counts, cpuReading, drain, noteContended, waitQuiet } from '../measure';
import { COST_IN_FLIGHT, MAX_OTHER_CPU, RETRY_LIMIT } from '../plan';
import { cpuSeconds } from '../proc';
import { componentShares } from '../profile';
import type { Cost, CostRun } from '../results';
import { type BenchContext, runLoad, startServices } from '../stack';
import { fmt, median } from '../stats';
import { produce, startWorker, untilDone } from './baseline';
import { REFERENCES, ensureReferenceDeps, startReference } from '../reference';

/** Interleaved in this order each round; only plain, default and disabled are profiled for the breakdown. */
const KINDS = ['plain', 'bare', 'typical', 'default', 'disabled'] as const;
type Kind = (typeof KINDS)[number];
const PROFILED = ['plain', 'default', 'disabled'] as const;
const QUEUES = ['notifications'] as const;

const pctOfCore = (seconds: number, wall: number) => Math.round((seconds / wall) * 100);

function toRun(kind: Kind, jobs: number, seconds: number, used: { front: number; worker: number; redis: number }, otherPct: number): CostRun {
  const ms = (s: number) => (s * 1000) / jobs;
  const cpuMsPerJob = { front: ms(used.front), worker: ms(used.worker), redis: ms(used.redis), total: ms(used.front + used.worker + used.redis) };
  return { kind, jobs, jobsPerS: jobs / seconds, cpuMsPerJob, otherPct };
}

async function plainRun(ctx: BenchContext, profileDir?: string): Promise<CostRun> {
  await ctx.redis.flushall();
  const prof = (role: string) => (profileDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profileDir, role)}`] : []);
  const worker: ManagedProcess = await startWorker(ctx, prof('plainWorker'));
  try {
    if (!profileDir) await waitQuiet(ctx, 'cost run (plain)');
    const redisPid = ctx.redisServer.managed.pid;
    // Warm-up on both sides, like the product's: the producer adds `warm` jobs, waits until the worker has done
    // them, prints "warm", then adds the measured ones; the CPU window opens at that line.
    const warm = Math.round(ctx.plan.costJobs / 10);
    const producer = await produce(ctx, 'add', ctx.plan.costJobs, 'product', { inFlight: COST_IN_FLIGHT, nodeArgs: prof('plainProducer'), warm });
    // The producer reports the CPU of its measured adding itself (its process is gone by the time the worker is
    // done); its whole process is sampled too, so the rest of its CPU is not taken for another process's load.
    let producerTotal = 0;
    const sampler = every(100, async () => void (producerTotal = Math.max(producerTotal, cpuSeconds(producer.proc.pid))));
    try {
      await Promise.race([producer.warmed, producer.result]);
      const producerAtStart = cpuSeconds(producer.proc.pid);
      const calls0 = await commandCalls(ctx.redis);
      const close = cpuReading({ front: () => 0, worker: () => cpuSeconds(worker.pid), redis: () => cpuSeconds(redisPid) });
      const t0 = performance.now();
      const added = await producer.result;
      const seconds = await untilDone(ctx, worker, warm + ctx.plan.costJobs, t0);
      const { used, wall, other } = close(Math.max(0, producerTotal - producerAtStart - added.cpuMs / 1000), { front: added.cpuMs / 1000 });
      const run = toRun('plain', ctx.plan.costJobs, seconds, used, pctOfCore(other, wall));
      return { ...run, redisCommandsPerJob: commandsPerJob(calls0, await commandCalls(ctx.redis), run.jobs) };
    } finally {
      await sampler.stop();
    }
  } finally {
    await worker.stop({ signal: 'SIGTERM', killAfterMs: 5_000 });
  }
}

async function productRun(ctx: BenchContext, kind: 'bare' | 'typical' | 'default' | 'disabled', profileDir?: string): Promise<CostRun> {
  // Measured runs never run with --cpu-prof (not even under --profile): plain ones don't, and it costs CPU.
  const services =
    kind === 'bare' || kind === 'typical'
      ? await startReference(ctx, kind)
      : await startServices(ctx, 1, 1, kind, { queues: QUEUES, profileDir: profileDir ? path.join(profileDir, kind) : null });
  try {
    const { targets } = services;
    await runLoad({ targets, seconds: ctx.plan.warmS, rate: 0, concurrency: COST_IN_FLIGHT, connections: COST_IN_FLIGHT });
    await drain(ctx.redis, 30_000, undefined, QUEUES);
    if (!profileDir) await waitQuiet(ctx, `cost run (${kind})`);
    const api = services.apis[0]!;
    const worker = services.workers[0]!;
    const redisPid = ctx.redisServer.managed.pid;
    const c0 = await counts(ctx.redis, undefined, QUEUES);
    const calls0 = await commandCalls(ctx.redis);
    const close = cpuReading({ front: () => cpuSeconds(api.pid), worker: () => cpuSeconds(worker.pid), redis: () => cpuSeconds(redisPid) });
    const t0 = performance.now();
    const load = await runLoad({ targets, seconds: ctx.plan.costS, rate: 0, concurrency: COST_IN_FLIGHT, connections: COST_IN_FLIGHT });
    const backlog = await drain(ctx.redis, 60_000, undefined, QUEUES);
    const seconds = (performance.now() - t0) / 1000;
    const { used, wall, other } = close(load.cpuSeconds);
    const c1 = await counts(ctx.redis, undefined, QUEUES);
    if (backlog > 0) ctx.contention.push(`cost run (${kind}): ${backlog} jobs still outstanding 60 s after the load stopped`);
    const run = toRun(kind, c1.added - c0.added, seconds, used, pctOfCore(other, wall));
    return { ...run, redisCommandsPerJob: commandsPerJob(calls0, await commandCalls(ctx.redis), run.jobs) };
  } finally {
    await services.stop();
  }
}

const runOnce = (ctx: BenchContext, kind: Kind, profileDir?: string) => (kind === 'plain' ? plainRun(ctx, profileDir) : productRun(ctx, kind, profileDir));

/** Total Redis commands per job of a run; NaN for results from before the bench counted them. */
export const redisCommandsTotal = (r: CostRun): number =>
  r.redisCommandsPerJob ? Object.values(r.redisCommandsPerJob).reduce((a, x) => a + x, 0) : NaN;

const describe = (r: CostRun) =>
  `${r.kind}: ${fmt(r.jobs)} jobs, ${fmt(r.jobsPerS)} jobs/s; CPU ms/job ${r.kind === 'plain' ? 'producer' : 'api'} ${fmt(r.cpuMsPerJob.front, 3)}, worker ${fmt(r.cpuMsPerJob.worker, 3)}, redis ${fmt(r.cpuMsPerJob.redis, 3)} = ${fmt(r.cpuMsPerJob.total, 3)}; Redis commands/job ${fmt(redisCommandsTotal(r), 1)} (other processes ${r.otherPct} % of a core)`;

const spread = (xs: number[] | undefined) => (xs?.length ? ` (rounds ${fmt(Math.min(...xs), 2)}–${fmt(Math.max(...xs), 2)})` : '');

/** The cost stage's ratios in one line: what `npm run bench -- --quick` prints and the CI guard reads. */
export function ratiosText(c: Cost): string {
  return [
    `CPU per job, stack ÷ bare ${fmt(c.ratioBare, 2)}${spread(c.ratioByRound?.bare)}`,
    `stack ÷ typical ${fmt(c.ratioTypical, 2)}${spread(c.ratioByRound?.typical)}`,
    `stack ÷ plain BullMQ ${fmt(c.ratio, 2)}${spread(c.ratioByRound?.plain)}`,
    `telemetry on ÷ off ${fmt(1 + c.telemetryShare, 2)}${spread(c.telemetryShareByRound.map((x) => 1 + x))}`,
  ].join('; ');
}

export async function stageCost(ctx: BenchContext): Promise<Cost> {
  const { plan } = ctx;
  for (const r of REFERENCES) ensureReferenceDeps(r, (line) => ctx.log(line));
  ctx.log(`cost: ${plan.costRounds} interleaved rounds (plain BullMQ / bare Fastify + BullMQ / typical instrumented build / product, default telemetry / product, telemetry off), notifications, product job options, ${COST_IN_FLIGHT} in flight, closed loop; plain ${fmt(plan.costJobs)} jobs, product ${plan.costS} s`);
  const runs: CostRun[] = [];
  for (let round = 0; round < plan.costRounds; round++) {
    for (const kind of KINDS) {
      const what = `cost run ${runs.length + 1} (${kind})`;
      for (let attempt = 0; ; attempt++) {
        const run = await runOnce(ctx, kind);
        if (run.otherPct > MAX_OTHER_CPU && attempt < RETRY_LIMIT && ctx.withinBudget()) {
          ctx.log(`  (other processes used ${run.otherPct} % of a core: run repeated)`);
          continue;
        }
        if (run.otherPct > MAX_OTHER_CPU) noteContended(ctx, what, run.otherPct);
        if (run.jobs <= 0) ctx.contention.push(`${what}: no job completed in the window; left out of the medians`);
        runs.push(run);
        ctx.log(`  ${describe(run)}`);
        break;
      }
    }
  }
  const med = (kind: Kind) => {
    const of = runs.filter((r) => r.kind === kind);
    // A run that completed no job measured nothing (NaN per job): it is left out, and noted as contended.
    const m = (k: keyof CostRun['cpuMsPerJob']) => median(of.map((r) => r.cpuMsPerJob[k]).filter(Number.isFinite));
    return { front: m('front'), worker: m('worker'), redis: m('redis'), total: m('total') };
  };
  const medianByKind = { plain: med('plain'), bare: med('bare'), typical: med('typical'), default: med('default'), disabled: med('disabled') };
  const byRound = (kind: Kind) => runs.filter((r) => r.kind === kind).map((r) => r.cpuMsPerJob.total);
  const on = byRound('default');
  const perRound = (reference: Kind) => byRound(reference).map((x, i) => on[i]! / x).filter(Number.isFinite);
  const off = byRound('disabled');
  const cost: Cost = {
    runs,
    median: medianByKind,
    ratio: medianByKind.default.total / medianByKind.plain.total,
    telemetryShare: medianByKind.default.total / medianByKind.disabled.total - 1,
    telemetryShareByRound: on.map((x, i) => x / off[i]! - 1).filter(Number.isFinite),
    ratioBare: medianByKind.default.total / medianByKind.bare.total,
    ratioTypical: medianByKind.default.total / medianByKind.typical.total,
    ratioByRound: { plain: perRound('plain'), bare: perRound('bare'), typical: perRound('typical') },
  };
  ctx.log(`  ${ratiosText(cost)}`);
  if (!plan.costProfile) return cost;

  // Where the CPU goes: one profiled run of each kind (profiling slows them, so they are not measured).
  const dir = ctx.profileDir ? path.join(ctx.profileDir, 'cost') : path.join(tmpdir(), `bench-cost-profiles-${Date.now()}`);
  mkdirSync(dir, { recursive: true });
  try {
    for (const kind of PROFILED) await runOnce(ctx, kind, dir);
  } catch (err) {
    // The measured runs stand without the breakdown; the report then has no "where the CPU goes" table.
    ctx.contention.push(`cost stage: a profiled run failed (${(err as Error).message.split('\n')[0]}); no CPU breakdown`);
    return cost;
  }
  cost.components = {
    plainProducer: componentShares(path.join(dir, 'plainProducer')),
    plainWorker: componentShares(path.join(dir, 'plainWorker')),
    api: componentShares(path.join(dir, 'default', 'api')),
    worker: componentShares(path.join(dir, 'default', 'worker')),
    apiDisabled: componentShares(path.join(dir, 'disabled', 'api')),
    workerDisabled: componentShares(path.join(dir, 'disabled', 'worker')),
  };
  ctx.log(`  CPU profiles of the cost stage in ${dir}`);
  return cost;
}
