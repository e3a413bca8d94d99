/**
 * Stage "capacity": max sustained jobs/s per process topology — open-loop rate steps until the API stops
 * accepting the rate or the workers stop keeping up (backlog at the end of a step > ½ s of work), then bisection.
 */
import { MAX_OTHER_CPU, RETRY_LIMIT } from '../plan';
import { counts, cpuText, cpuWindow, drain, noteContended, waitQuiet } from '../measure';
import type { Capacity, Probe } from '../results';
import { type BenchContext, type Services, runLoad, startServices } from '../stack';
import { fmt } from '../stats';

export async function stageCapacity(ctx: BenchContext, apis: number, workers: number, start: number): Promise<Capacity> {
  ctx.log(`capacity: ${apis} API + ${workers} worker process(es), default telemetry, ${ctx.plan.probeS} s open-loop steps`);
  const services = await startServices(ctx, apis, workers, 'default');
  const probes: Probe[] = [];
  try {
    await runLoad({ targets: services.targets, seconds: ctx.plan.warmS, rate: 1000, concurrency: 0 });
    await drain(ctx.redis);
    let lo = 0; // highest sustained rate
    let hi = 0; // lowest failed rate
    let rate = start;
    while (probes.length < ctx.plan.maxProbes) {
      const p = await probe(ctx, services, rate);
      probes.push(p);
      await drain(ctx.redis, 30_000);
      if (p.ok) lo = rate;
      else hi = rate;
      if (!hi) rate = Math.round((rate * 1.25) / 100) * 100;
      else if (!lo) rate = Math.round((rate * 0.75) / 100) * 100;
      else if (hi - lo > Math.max(200, lo * 0.06)) rate = Math.round((lo + hi) / 2 / 100) * 100;
      else break;
      if (rate < 200) break;
    }
  } finally {
    await services.stop();
  }
  const best = probes.filter((p) => p.ok).sort((a, b) => b.rate - a.rate)[0];
  return { apis, workers, probes, best };
}

async function probe(ctx: BenchContext, services: Services, rate: number): Promise<Probe> {
  for (let attempt = 0; ; attempt++) {
    const p = await probeOnce(ctx, services, rate);
    // A failed step is repeated even under light outside load: one noisy window must not set the maximum.
    if (p.cpu.other <= (p.ok ? MAX_OTHER_CPU : MAX_OTHER_CPU / 2)) return p;
    if (attempt >= RETRY_LIMIT || !ctx.withinBudget()) {
      noteContended(ctx, `capacity step ${rate} req/s`, p.cpu.other);
      return p;
    }
    ctx.log(`  (other processes used ${p.cpu.other} % of a core: step repeated)`);
    await drain(ctx.redis, 30_000);
  }
}

async function probeOnce(ctx: BenchContext, services: Services, rate: number): Promise<Probe> {
  const seconds = ctx.plan.probeS;
  await waitQuiet(ctx, `capacity step ${rate} req/s`);
  const c0 = await counts(ctx.redis);
  const t0 = performance.now();
  const cpu = cpuWindow(ctx, services);
  const load = await runLoad({ targets: services.targets, seconds, rate, concurrency: 0 });
  const share = cpu(load.cpuSeconds);
  const c1 = await counts(ctx.redis);
  const wall = (performance.now() - t0) / 1000;
  const completedPerS = (c1.done - c0.done) / wall;
  const bad = load.sent - load.accepted;
  const why: string[] = [];
  if (load.accepted < rate * seconds * 0.97) why.push(`API accepted only ${fmt(load.acceptedPerS)}/s`);
  if (bad > load.sent * 0.001) why.push(`${bad} requests not accepted (${JSON.stringify(load.statuses)}, ${load.errors} errors)`);
  if (c1.outstanding > Math.max(rate / 2, 1000)) why.push(`backlog ${c1.outstanding} jobs at the end: workers did not keep up`);
  if (load.latency.p99 > 1000) why.push(`API p99 ${fmt(load.latency.p99)} ms: requests queue up`);
  const p: Probe = { rate, load, completedPerS, backlogEnd: c1.outstanding, ok: why.length === 0, why: why.join('; ') || 'sustained', cpu: share };
  ctx.log(`  ${rate} req/s: accepted ${fmt(load.acceptedPerS)}/s, completed ${fmt(completedPerS)}/s, backlog ${p.backlogEnd}, API p99 ${fmt(load.latency.p99, 1)} ms → ${p.why} [${cpuText(share)}]`);
  return p;
}
