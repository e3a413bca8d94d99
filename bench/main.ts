/**
 * `npm run bench` — throughput, latency, telemetry overhead and memory of the product against its targets
 * (bench/plan.ts), in four stages on a private Redis with services started from dist/:
 *   baseline  plain BullMQ reference (stages/baseline.ts)
 *   fixed     open loop at a fixed rate: latencies, scrapes, RSS (stages/fixed.ts)
 *   capacity  max sustained jobs/s per process topology (stages/capacity.ts)
 *   overhead  default telemetry vs disabled, interleaved (stages/overhead.ts)
 *   cost      CPU per job against plain BullMQ, and telemetry's share, interleaved and profiled (stages/cost.ts)
 *   outbound  what the outbound boundary's closed path adds per call (stages/outbound.ts)
 *   cluster   jobs/s on one Redis vs a 3-master Redis Cluster (stages/cluster.ts)
 * The report (bench/report.ts) is printed and, for a full run, written to docs/benchmarks.md. Options: bench/cli.ts.
 */
import { cpus, release, totalmem } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { killStartedProcesses } from '../scripts/lib/process';
import { type BenchOptions, STAGES, USAGE, UsageError, parseBenchArgs } from './cli';
import { CAPACITY_START, planFor } from './plan';
import { cpuModel } from './proc';
import { type ProfileSummary, summarizeProfiles } from './profile';
import { SCALING_BEGIN, SCALING_END, renderReport, renderScaling } from './report';
import type { BenchResults } from './results';
import { stageBaseline } from './stages/baseline';
import { stageCapacity } from './stages/capacity';
import { stageFixed } from './stages/fixed';
import { stageOverhead } from './stages/overhead';
import { ratiosText, stageCost } from './stages/cost';
import { fmt } from './stats';
import { stageCluster } from './stages/cluster';
import { stageOutbound } from './stages/outbound';
import { ROOT, closeBench, openBench } from './stack';

const log = (s: string) => process.stdout.write(`${s}\n`);

async function measure(options: BenchOptions): Promise<BenchResults> {
  const started = new Date();
  const ctx = await openBench(options, log);
  log(`bench${options.quick ? ' (quick)' : ''}: ${cpus().length} vCPU ${cpuModel()}, Node ${process.version}; redis ${ctx.redisServer.url}; OTLP sink ${ctx.otlp.endpoint}`);
  const r: BenchResults = {
    startedAt: started.toISOString(),
    durationS: 0,
    quick: options.quick,
    stages: options.stages,
    concurrency: options.concurrency,
    idempotencyKeys: true,
    plan: planFor(options.quick),
    machine: { vcpus: cpus().length, cpuModel: cpuModel(), memGiB: totalmem() / 2 ** 30, kernel: release(), node: process.version },
    capacity: [],
    contention: ctx.contention,
  };
  const run = (stage: BenchOptions['stages'][number]) => options.stages.includes(stage);
  try {
    if (run('baseline')) r.baseline = await stageBaseline(ctx);
    if (run('fixed')) r.fixed = await stageFixed(ctx);
    if (run('fixed') && ctx.plan.fixedAlt) r.fixedAlt = await stageFixed(ctx, 1, 2);
    if (run('capacity')) {
      let start = CAPACITY_START;
      for (const [apis, workers] of ctx.plan.topologies) {
        const c = await stageCapacity(ctx, apis, workers, start);
        r.capacity.push(c);
        if (c.best) start = Math.max(CAPACITY_START, Math.round((c.best.rate * 0.9) / 100) * 100);
      }
    }
    if (run('overhead')) r.overhead = await stageOverhead(ctx);
    if (run('cost')) r.cost = await stageCost(ctx);
    if (run('outbound')) r.outbound = await stageOutbound(ctx, r.cost?.median.default.total);
    if (run('cluster')) r.cluster = await stageCluster(ctx);
  } finally {
    await closeBench(ctx);
  }
  if (ctx.profileDir) {
    r.profiles = (['api', 'worker'] as const).map((k) => summarizeProfiles(ctx.profileDir!, k)).filter((p): p is ProfileSummary => p !== undefined);
    log(`CPU profiles in ${ctx.profileDir}`);
  }
  r.durationS = (Date.now() - started.getTime()) / 1000;
  return r;
}

function write(file: string, text: string): void {
  const full = path.resolve(file);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text);
  log(`written to ${full.startsWith(`${ROOT}${path.sep}`) ? path.relative(ROOT, full) : full}`);
}

/** Replaces the measured section of docs/scaling.md (between its markers) with this run's figures. */
function writeScaling(results: BenchResults): void {
  const file = path.join(ROOT, 'docs', 'scaling.md');
  const text = readFileSync(file, 'utf8');
  const begin = text.indexOf(SCALING_BEGIN);
  const end = text.indexOf(SCALING_END);
  if (begin < 0 || end < begin) throw new Error(`${file}: the bench's markers are missing`);
  write(file, `${text.slice(0, begin + SCALING_BEGIN.length)}\n${renderScaling(results)}\n${text.slice(end)}`);
}

async function main(argv: string[]): Promise<number> {
  let options: BenchOptions | undefined;
  try {
    options = parseBenchArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`bench: ${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  if (!options) {
    log(USAGE);
    return 0;
  }
  const results = options.render
    ? // JSON has no NaN: a figure a run could not measure was saved as null and is "n/a" again.
      (JSON.parse(readFileSync(path.resolve(options.render), 'utf8'), (_k, v: unknown) => (v === null ? NaN : v)) as BenchResults)
    : await measure(options);
  if (options.json) write(options.json, `${JSON.stringify(results, null, 2)}\n`);
  const md = renderReport(results, options.render ? { renderedFrom: path.relative(ROOT, path.resolve(options.render)) } : {});
  log('');
  log(md);
  // docs/benchmarks.md only ever shows a complete full run: a quick or partial one would replace real figures.
  const complete = !results.quick && STAGES.every((s) => results.stages.includes(s));
  const out = options.out ?? (complete ? path.join(ROOT, 'docs', 'benchmarks.md') : undefined);
  if (out) write(out, md);
  if (complete && !options.out) writeScaling(results);
  if (results.cost) log(`ratios: ${ratiosText(results.cost)}`);
  if (options.failAbove === undefined) return 0;
  // The regression guard: a figure that could not be measured fails it too, never passes it.
  const ratio = results.cost?.ratioBare;
  if (ratio === undefined || !Number.isFinite(ratio)) {
    log('REGRESSION GUARD: CPU per job stack ÷ bare was not measured');
    return 1;
  }
  const ok = ratio <= options.failAbove;
  log(`REGRESSION GUARD ${ok ? 'passed' : 'FAILED'}: CPU per job stack ÷ bare ${fmt(ratio, 2)} ${ok ? '≤' : '>'} ${fmt(options.failAbove, 2)}`);
  return ok ? 0 : 1;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killStartedProcesses();
    process.exit(130);
  });
}

main(process.argv.slice(2)).then(
  // Exit once stdout has taken the report (a pipe may still be draining it).
  (code) => process.stdout.write('', () => process.exit(code)),
  (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack}\n`);
    killStartedProcesses();
    process.exit(1);
  },
);
