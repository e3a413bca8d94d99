/**
 * Stage "baseline": plain BullMQ (bench/baseline.ts children: no API, no telemetry) — addBulk prefill then a
 * worker drains it; then Queue.add with a worker running, BullMQ's default job options vs the product's.
 */
import path from 'node:path';
import { describeExit, startProcess, type ManagedProcess } from '../../scripts/lib/process';
import { every } from '../../scripts/lib/wait';
import { BASELINE_PREFIX, BASELINE_QUEUE, type BaselineVariant } from '../baseline';
import { counts, waitQuiet } from '../measure';
import { cpuSeconds } from '../proc';
import type { Baseline, BaselineRun } from '../results';
import type { BenchContext } from '../stack';
import { fmt } from '../stats';

const script = () => path.join(__dirname, '..', 'baseline.js');

export interface ProducerResult {
  perS: number;
  /** CPU ms the producer spent adding (bench/baseline.ts). */
  cpuMs: number;
}

/** A producer child: resolves with its JSON result line once it exits 0. `nodeArgs`: e.g. --cpu-prof. */
export async function produce(
  ctx: BenchContext,
  role: 'bulk' | 'add',
  jobs: number,
  variant: BaselineVariant,
  opts: { inFlight?: number; nodeArgs?: string[]; warm?: number } = {},
): Promise<{ proc: ManagedProcess; result: Promise<ProducerResult>; warmed: Promise<void> }> {
  let last = '';
  let onWarm = () => undefined as void;
  const warmed = new Promise<void>((resolve) => (onWarm = resolve));
  const proc = await startProcess({
    name: `baseline ${role}`,
    command: process.execPath,
    args: [...(opts.nodeArgs ?? []), script(), role, ctx.redisServer.url, String(jobs), variant, String(opts.inFlight ?? 64), String(opts.warm ?? 0)],
    onLine: (line, stream) => {
      if (stream === 'stdout' && line.trim() === 'warm') onWarm();
      else if (stream === 'stdout' && line.trim()) last = line;
    },
  });
  const result = proc.exited.then((s) => {
    if (s.code !== 0) throw new Error(`baseline ${role} exited (${describeExit(s)}):\n${proc.tail()}`);
    return JSON.parse(last) as ProducerResult;
  });
  return { proc, result, warmed };
}

export function startWorker(ctx: BenchContext, nodeArgs: string[] = []): Promise<ManagedProcess> {
  return startProcess({
    name: 'baseline worker',
    command: process.execPath,
    args: [...nodeArgs, script(), 'worker', ctx.redisServer.url, String(ctx.options.concurrency)],
    ready: { line: /^ready$/ },
  });
}

/** Seconds from t0 until `target` jobs are done or failed; fails at once if the worker dies. */
export async function untilDone(ctx: BenchContext, worker: ManagedProcess, target: number, t0: number): Promise<number> {
  await worker.waitUntil(
    async () => {
      const c = await counts(ctx.redis, BASELINE_PREFIX, [BASELINE_QUEUE]);
      return c.done + c.failed >= target;
    },
    { timeoutMs: 600_000, intervalMs: 20, what: `${target} baseline jobs done` },
  );
  return (performance.now() - t0) / 1000;
}

export async function stageBaseline(ctx: BenchContext): Promise<Baseline> {
  const n = ctx.plan.baselineJobs;
  const stop = (w: ManagedProcess) => w.stop({ signal: 'SIGTERM', killAfterMs: 5_000 });
  await ctx.redis.flushall();
  ctx.log(`baseline: plain BullMQ, ${n} jobs per run, worker concurrency ${ctx.options.concurrency}`);
  await waitQuiet(ctx, 'baseline');
  // a) addBulk prefill, then a worker drains it.
  const bulk = await (await produce(ctx, 'bulk', n, 'product')).result;
  const t0 = performance.now();
  let worker = await startWorker(ctx);
  const drainS = await untilDone(ctx, worker, n, t0).finally(() => stop(worker));
  // b) Queue.add (one call per job, like the API) while the worker runs; BullMQ defaults, then the product's job options.
  const runs: BaselineRun[] = [];
  for (const variant of ['plain', 'product'] as const) {
    await ctx.redis.flushall();
    worker = await startWorker(ctx);
    try {
      await waitQuiet(ctx, `baseline ${variant}`);
      const redisPid = ctx.redisServer.managed.pid;
      const r0 = cpuSeconds(redisPid);
      const w0 = cpuSeconds(worker.pid);
      const t1 = performance.now();
      const producer = await produce(ctx, 'add', n, variant);
      // The producer's CPU is read while it lives (its /proc entry goes with it): the highest reading wins.
      let producerCpu = 0;
      const sampler = every(100, async () => void (producerCpu = Math.max(producerCpu, cpuSeconds(producer.proc.pid))));
      const add = await producer.result.finally(() => sampler.stop());
      const bothS = await untilDone(ctx, worker, n, t1);
      const perJob = (s: number) => (s * 1000) / n;
      runs.push({
        variant,
        addPerS: add.perS,
        endToEndPerS: n / bothS,
        cpuMsPerJob: { producer: perJob(producerCpu), worker: perJob(cpuSeconds(worker.pid) - w0), redis: perJob(cpuSeconds(redisPid) - r0) },
      });
    } finally {
      await stop(worker);
    }
  }
  const r: Baseline = { bulkAddPerS: bulk.perS, drainPerS: n / drainS, runs };
  ctx.log(`  addBulk ${fmt(r.bulkAddPerS)}/s; worker drain ${fmt(r.drainPerS)}/s`);
  for (const x of runs) {
    ctx.log(`  Queue.add + Worker (${x.variant} job options): ${fmt(x.endToEndPerS)} jobs/s end to end; CPU ms/job producer ${fmt(x.cpuMsPerJob.producer, 3)}, worker ${fmt(x.cpuMsPerJob.worker, 3)}, redis ${fmt(x.cpuMsPerJob.redis, 3)}`);
  }
  return r;
}
