/**
 * One chaos campaign: start Redis (topology.ts), the recording webhook receiver, 2 APIs and 2 workers; run the
 * load (load.ts) and the seed's fault schedule (faults.ts) together; heal, drain, read the ground truth from
 * Redis and the receiver, check it (checker.ts) and write the report (report.ts). Everything it starts is
 * registered for cleanup — processes, the namespace and its veths — which runs on success, on error and on
 * SIGINT (main.ts).
 */
import { mkdirSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { Queue } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { QUEUE_NAMES, type QueueName } from '../../services/common/queue-catalog';
import { queueKeyPrefix } from '../../services/common/queue-keys';
import { every, waitFor } from '../lib/wait';
import { startCampaignRedis, type CampaignRedis } from './topology';
import { startRecordingReceiver } from './receiver';
import { startService, type Crash, type Restart, type ServiceInstance } from './services';
import { runLoad } from './load';
import { runFaults, setProviderFaults } from './faults';
import { buildSchedule, QUIET_TAIL_S, type Topology } from './schedule';
import { check, type Charge, type FinalJob, type WorkerCounters } from './checker';
import { buildReport, writeReport, type CampaignReport } from './report';
import { removeStaleNamespaces } from './netns';

export interface CampaignOptions {
  seed: number;
  durationS: number;
  topology: Topology;
  reportDir: string;
  ratePerS?: number;
  workers?: number;
  apis?: number;
  log?: (line: string) => void;
}

/** Cleanups of everything started, run once in reverse order (campaign end, error, SIGINT). */
export class Cleanup {
  private readonly steps: (() => Promise<unknown>)[] = [];
  private running: Promise<void> | undefined;
  add(step: () => Promise<unknown>): void {
    this.steps.push(step);
  }
  /** Each step gets at most 15 s: a hung close must not keep the namespace and veths (the last steps) around. */
  run(): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([step().catch(() => undefined), new Promise((r) => (timer = setTimeout(r, 15_000)))]);
        clearTimeout(timer);
      }
    })();
    return this.running;
  }
}

const QUEUE_PREFIX = 'chaos';
/** Shorter than production (30 s) so a killed worker's jobs come back within a short campaign; see docs/reliability.md. */
const WORKER_STALL = { WORKER_LOCK_DURATION_MS: '10000', WORKER_STALLED_INTERVAL_MS: '5000' };

/** Sums the samples of one metric family in a Prometheus text exposition (every label combination). */
export function sumMetric(text: string, name: string, labelFilter?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (labelFilter && !rest.includes(labelFilter)) continue;
    const value = Number(line.trim().split(/\s+/).at(-1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

async function scrapeCounters(w: ServiceInstance): Promise<WorkerCounters & { active: number }> {
  const res = await fetch(w.metricsUrl, { signal: AbortSignal.timeout(1_500) });
  const text = await res.text();
  return {
    completed: sumMetric(text, 'bullmq_jobs_completed_total'),
    failed: sumMetric(text, 'bullmq_jobs_failed_total'),
    retries: sumMetric(text, 'bullmq_job_retries_total'),
    active: sumMetric(text, 'bullmq_queue_jobs', 'state="active"'),
  };
}

export async function runCampaign(o: CampaignOptions, cleanup: Cleanup): Promise<CampaignReport> {
  const log = o.log ?? (() => undefined);
  const workersN = o.workers ?? 2;
  const apisN = o.apis ?? 2;
  const ratePerS = o.ratePerS ?? 25;
  mkdirSync(path.join(o.reportDir, 'logs'), { recursive: true });
  for (const f of ['report.json', 'report.md']) rmSync(path.join(o.reportDir, f), { force: true });
  const schedule = buildSchedule({ seed: o.seed, durationS: o.durationS, topology: o.topology, workers: workersN, apis: apisN });
  log(`chaos: seed ${o.seed}, ${o.topology}, ${o.durationS} s, ${schedule.length} faults scheduled; report in ${o.reportDir}`);

  if (o.topology === 'single') {
    const stale = await removeStaleNamespaces();
    if (stale.length) log(`chaos: removed namespaces left by killed campaigns: ${stale.join(', ')}`);
  }
  const redis: CampaignRedis = await startCampaignRedis(o.topology, String(process.pid), QUEUE_PREFIX, path.join(o.reportDir, 'logs'));
  cleanup.add(() => redis.stop());
  log(`chaos: ${redis.describe()}`);
  const receiver = await startRecordingReceiver();
  cleanup.add(() => receiver.close());

  const streams: WriteStream[] = [];
  cleanup.add(() => Promise.all(streams.map((s) => new Promise((r) => s.end(r)))));
  const apiKey = `chaos-${randomBytes(12).toString('hex')}`;
  const adminKey = `chaos-admin-${randomBytes(12).toString('hex')}`;
  const common = {
    PATH: process.env.PATH ?? '',
    QUEUE_PREFIX,
    API_KEYS: apiKey,
    ADMIN_API_KEYS: adminKey,
    FAULTS_ENABLED: 'true',
    WEBHOOK_SIGNING_SECRET: randomBytes(16).toString('hex'),
    WEBHOOK_ALLOW_PRIVATE: 'true',
    OTEL_SDK_DISABLED: 'true',
    LOG_LEVEL: 'warn',
  };
  const services: ServiceInstance[] = [];
  const crashes: Crash[] = [];
  const restarts: Restart[] = [];
  cleanup.add(() => Promise.all(services.map((s) => s.shutdown())));
  const logDir = path.join(o.reportDir, 'logs');
  const apis = await Promise.all(Array.from({ length: apisN }, (_, i) => startService('api', i, { ...common, ...redis.apiEnv }, logDir, streams, crashes, restarts)));
  services.push(...apis);
  const workers = await Promise.all(Array.from({ length: workersN }, (_, i) => startService('worker', i, { ...common, ...WORKER_STALL, ...redis.workerEnv }, logDir, streams, crashes, restarts)));
  services.push(...workers);
  log(`chaos: ${apisN} APIs, ${workersN} workers ready`);

  // Counters per worker lifetime: the last scrape of each process before it died, and at the end.
  const lifetimes = new Map<string, WorkerCounters>();
  let countTolerance = 0;
  const sample = async (w: ServiceInstance) => {
    const c = await scrapeCounters(w);
    lifetimes.set(`${w.name}#${w.starts()}`, c);
    return c;
  };
  const sampler = every(1_000, async () => {
    await Promise.all(workers.map((w) => sample(w).catch(() => undefined)));
  });

  const loadStart = Date.now();
  const load = runLoad({
    seed: o.seed,
    apis: () => apis.map((a) => `http://127.0.0.1:${a.port}`),
    apiKey,
    ratePerS,
    durationS: o.durationS,
    receiverUrl: receiver.url,
  });
  const faultsDone = new AbortController();
  cleanup.add(async () => faultsDone.abort());
  const faultLog = await runFaults(
    schedule,
    {
      redis, apis, workers, receiver, adminKey, log,
      beforeWorkerKill: async (w) => {
        const c = await sample(w).catch(() => undefined);
        // Jobs in flight at the kill may have finished after this scrape: the counters may miss that many.
        countTolerance += c?.active ?? 0;
      },
    },
    loadStart,
    faultsDone.signal,
    (o.durationS - QUIET_TAIL_S / 2) * 1_000,
  );
  await load.done;
  const loadEndMs = Date.now() - loadStart;
  log(`chaos: load done after ${(loadEndMs / 1000).toFixed(1)} s (${load.intents.length} intents, ${load.history.length} attempts); draining`);

  // Heal anything a fault left behind, then wait until no accepted job is waiting, active or delayed.
  for (const q of ['payments', 'notifications', 'webhooks']) {
    await setProviderFaults({ apis, adminKey }, q, { failureRate: 0, rateLimitRate: 0, timeoutRate: 0, latencyMs: 0 }, 120_000);
  }
  receiver.setHanging(false);
  const target = redis.checkerTarget;
  const client = target.clusterNodes.length
    ? new Cluster(target.clusterNodes, { redisOptions: { maxRetriesPerRequest: null } })
    : new Redis(target.url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  cleanup.add(async () => client.disconnect());
  const queues = Object.fromEntries(
    QUEUE_NAMES.map((q) => [q, new Queue(q, { connection: client, prefix: queueKeyPrefix({ queuePrefix: QUEUE_PREFIX, redis: { clusterNodes: target.clusterNodes } }, q) })]),
  ) as Record<QueueName, Queue>;
  cleanup.add(() => Promise.all(Object.values(queues).map((q) => q.close())));
  const drainStart = Date.now();
  await waitFor(
    async () => {
      for (const q of Object.values(queues)) {
        const c = await q.getJobCounts('waiting', 'active', 'delayed', 'prioritized', 'waiting-children');
        if (Object.values(c).some((n) => n > 0)) return false;
      }
      return true;
    },
    { timeoutMs: 150_000, intervalMs: 1_000, what: 'every queue drained (nothing waiting, active or delayed)' },
  ).catch((err: Error) => log(`chaos: ${err.message}; checking what is there`));
  const drainS = Math.round((Date.now() - drainStart) / 100) / 10;
  await sampler.stop();
  await Promise.all(workers.map((w) => sample(w).catch(() => undefined)));

  // Ground truth.
  const jobs: Record<string, FinalJob | undefined> = {};
  for (const it of load.intents.filter((i) => i.jobId)) {
    const job = await queues[it.queue].getJob(it.jobId!);
    if (!job) continue;
    jobs[it.jobId!] = {
      state: await job.getState(),
      attemptsMade: job.attemptsMade,
      finishedMs: job.finishedOn ? job.finishedOn - loadStart : undefined,
      chargeId: (job.returnvalue as { chargeId?: string } | null)?.chargeId,
      failedReason: job.failedReason,
    };
  }
  const allFinished = { completed: 0, failed: 0, retries: 0 };
  for (const q of Object.values(queues)) {
    for (const state of ['completed', 'failed'] as const) {
      for (const job of await q.getJobs([state], 0, -1)) {
        allFinished[state]++;
        allFinished.retries += Math.max(0, job.attemptsMade - 1);
      }
    }
  }
  const charges: Charge[] = [];
  const nodes: Redis[] = client instanceof Cluster ? client.nodes('master') : [client];
  const chargePrefix = `${QUEUE_PREFIX}:simulated-provider:charges:`;
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `${chargePrefix}*`, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) {
        const v = await node.get(k);
        if (v) charges.push({ key: k.slice(chargePrefix.length), ...(JSON.parse(v) as Omit<Charge, 'key'>) });
      }
    } while (cursor !== '0');
  }
  const counters = [...lifetimes.values()].reduce<WorkerCounters>(
    (s, c) => ({ completed: s.completed + c.completed, failed: s.failed + c.failed, retries: s.retries + c.retries }),
    { completed: 0, failed: 0, retries: 0 },
  );

  writeFileSync(path.join(o.reportDir, 'history.jsonl'), load.history.map((a) => JSON.stringify(a)).join('\n') + '\n');
  writeFileSync(path.join(o.reportDir, 'truth.json'), JSON.stringify({ intents: load.intents, jobs, charges, deliveries: receiver.deliveries, counters, countTolerance }, null, 1));

  const result = check({ intents: load.intents, history: load.history, jobs, charges, deliveries: receiver.deliveries, counters, countTolerance, allFinished, faults: faultLog, loadEndMs, loadStartMs: loadStart, crashes: crashes.map((c) => ({ ...c, atMs: c.atMs - loadStart })) });
  const report = buildReport({
    seed: o.seed, topology: o.topology, durationS: o.durationS, schedule, faultLog, result, drainS, redis: redis.describe(),
    restarts: restarts.map((r) => ({ ...r, atMs: r.atMs - loadStart })),
    settings: { apis: apisN, workers: workersN, ratePerS, ...WORKER_STALL, REDIS_WAIT_REPLICAS: redis.apiEnv.REDIS_WAIT_REPLICAS ?? '0' },
  });
  writeReport(o.reportDir, report);
  return report;
}
