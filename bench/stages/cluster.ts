/**
 * Stage "cluster": jobs/s of the same stack (1 API + 1 worker, default telemetry, payments + notifications) on
 * one Redis node and on a 3-master Redis Cluster (scripts/lib/redis-cluster.ts, no replicas, AOF everysec like
 * the single node), closed loop, interleaved single / cluster rounds. Each queue has its own hash tag
 * (services/common/queue-keys.ts), so the two queues run on two different masters. Reports each Redis process's
 * CPU: on a machine whose cores are already busy with API and worker, shards cannot add throughput — they
 * split Redis's work, which is what matters once one Redis core is the limit.
 */
import { queueKeyPrefix } from '../../services/common/queue-keys';
import { startRedisCluster, type RedisClusterHandle } from '../../scripts/lib/redis-cluster';
import { counts, cpuText, cpuWindow, drain, noteContended, waitQuiet } from '../measure';
import { MAX_OTHER_CPU, PREFIX, QUEUES, RETRY_LIMIT } from '../plan';
import { cpuSeconds } from '../proc';
import type { ClusterCompare, ClusterRun } from '../results';
import { type BenchContext, runLoad, startServices } from '../stack';
import { fmt, median } from '../stats';

const IN_FLIGHT = 64;
/** The services' key prefix per queue on a cluster: the hash tag, as the services compute it (any seed list will do). */
const ON_A_CLUSTER = { queuePrefix: PREFIX, redis: { clusterNodes: ['seed'] } };
const clusterPrefix = (queue: string) => queueKeyPrefix(ON_A_CLUSTER, queue as (typeof QUEUES)[number]);

async function placement(cluster: RedisClusterHandle): Promise<string[]> {
  const lines: string[] = [];
  for (const q of QUEUES) {
    const server = await cluster.masterOf(`${clusterPrefix(q)}:${q}:id`);
    lines.push(`${q} → 127.0.0.1:${server.port}`);
  }
  return lines;
}

async function runOnce(ctx: BenchContext, topology: ClusterRun['topology'], cluster: RedisClusterHandle): Promise<ClusterRun> {
  const onCluster = topology === 'cluster';
  const services = await startServices(ctx, 1, 1, 'default', onCluster ? { cluster } : {});
  const client = onCluster ? cluster.client() : ctx.redis;
  const prefix = onCluster ? clusterPrefix : PREFIX;
  try {
    await runLoad({ targets: services.targets, seconds: ctx.plan.warmS, rate: 0, concurrency: IN_FLIGHT });
    await drain(client, 30_000, prefix);
    await waitQuiet(ctx, `cluster stage (${topology})`);
    const redisPids = onCluster ? (await cluster.masters()).map((s) => s.managed.pid) : [ctx.redisServer.managed.pid];
    const r0 = redisPids.map(cpuSeconds);
    const c0 = await counts(client, prefix);
    const t0 = performance.now();
    const cpu = cpuWindow(ctx, services, redisPids);
    const load = await runLoad({ targets: services.targets, seconds: ctx.plan.clusterS, rate: 0, concurrency: IN_FLIGHT });
    const share = cpu(load.cpuSeconds);
    const wall = (performance.now() - t0) / 1000;
    const c1 = await counts(client, prefix);
    const redisPct = redisPids.map((pid, i) => Math.round(((cpuSeconds(pid) - r0[i]!) / wall) * 100));
    const completedPerS = (c1.done - c0.done) / wall;
    await drain(client, 30_000, prefix);
    return { topology, acceptedPerS: load.acceptedPerS, completedPerS, sustainedPerS: Math.min(load.acceptedPerS, completedPerS), p99: load.latency.p99, redisPct, cpu: share };
  } finally {
    if (client !== ctx.redis) client.disconnect();
    await services.stop();
  }
}

export async function stageCluster(ctx: BenchContext): Promise<ClusterCompare> {
  const { plan } = ctx;
  ctx.log(`cluster: one Redis vs a 3-master Redis Cluster, 1 API + 1 worker, default telemetry, ${plan.clusterS} s closed loop (${IN_FLIGHT} in flight), ${plan.clusterRounds} interleaved round(s)`);
  const cluster = await startRedisCluster({ replicasPerMaster: 0 });
  const runs: ClusterRun[] = [];
  try {
    const where = await placement(cluster);
    ctx.log(`  cluster nodes: ${(await cluster.describe()).join('; ')}; queues: ${where.join(', ')}`);
    for (let round = 0; round < plan.clusterRounds; round++) {
      for (const topology of ['single', 'cluster'] as const) {
        for (let attempt = 0; ; attempt++) {
          const run = await runOnce(ctx, topology, cluster);
          if (run.cpu.other > MAX_OTHER_CPU && attempt < RETRY_LIMIT && ctx.withinBudget()) {
            ctx.log(`  (other processes used ${run.cpu.other} % of a core: run repeated)`);
            continue;
          }
          if (run.cpu.other > MAX_OTHER_CPU) noteContended(ctx, `cluster stage (${topology})`, run.cpu.other);
          runs.push(run);
          ctx.log(`  ${topology}: accepted ${fmt(run.acceptedPerS)}/s, completed ${fmt(run.completedPerS)}/s, API p99 ${fmt(run.p99, 1)} ms; Redis CPU % per process ${run.redisPct.join(' / ')} [${cpuText(run.cpu)}]`);
          break;
        }
      }
    }
    const m = (t: ClusterRun['topology']) => median(runs.filter((r) => r.topology === t).map((r) => r.sustainedPerS));
    return { runs, single: m('single'), cluster: m('cluster'), placement: where };
  } finally {
    await cluster.stop();
  }
}
