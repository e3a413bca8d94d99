/**
 * Workers and a Redis Cluster that answers CLUSTERDOWN (docs/reliability.md, finding 5): a real local cluster of 3
 * masters without replicas (scripts/lib/redis-cluster.ts), so SIGKILLing the master of the queue's slot leaves that
 * slot with no master and, with cluster-require-full-coverage, the whole cluster in cluster_state:fail until the
 * node is started again (its AOF replayed, nothing lost).
 *
 * 1. A worker started while the cluster is down keeps running and waiting (/livez 200, /readyz 503 naming why)
 *    instead of exiting or hanging silently, and processes every job once the cluster is whole again, no restart.
 * 2. A worker that was running when the cluster went down processes the jobs added after it came back.
 *
 * Liveness bounds only (how long the test waits for something to happen at all), no timings asserted.
 */
import t, { type Test } from 'tap';
import { request } from 'undici';
import { Queue } from 'bullmq';
import { Cluster, Redis } from 'ioredis';
import { startProcess, type ManagedProcess } from '../../scripts/lib/process';
import { startRedisCluster, type RedisClusterHandle } from '../helpers/redis-cluster';
import { baseEnv, ROOT, startWorker } from '../helpers/services';
import { NOWHERE_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { freePort } from '../helpers/ports';
import { waitFor } from '../helpers/wait';
import { jobOptionsFor } from '../../services/common/job-options';
import { queueKeyPrefix } from '../../services/common/queue-keys';
import type { RedisServer } from '../../scripts/lib/redis-server';

const QUEUE = 'notifications';
/** How long the cluster stays down: past ioredis' CLUSTERDOWN retries (16 × 300 ms) and BullMQ's blocking watchdog. */
const DOWN_MS = 15_000;

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(url, { headersTimeout: 5_000, bodyTimeout: 5_000 });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

async function clusterState(cluster: RedisClusterHandle): Promise<string[]> {
  const alive = cluster.servers.filter((s) => s.process.exitCode === null && s.process.signalCode === null);
  return Promise.all(
    alive.map(async (s) => {
      const r = new Redis(s.port, '127.0.0.1', { maxRetriesPerRequest: 0, lazyConnect: true });
      r.on('error', () => undefined);
      try {
        await r.connect();
        return /cluster_state:(\w+)/.exec(String(await r.cluster('INFO')))?.[1] ?? 'unknown';
      } finally {
        r.disconnect();
      }
    }),
  );
}

/** SIGKILLs the master of the queue's slot and waits until the live nodes say cluster_state:fail. */
async function takeDown(cluster: RedisClusterHandle, queue: Queue): Promise<RedisServer> {
  const holder = await cluster.masterOf(queue.toKey('wait'));
  holder.signal('SIGKILL');
  await waitFor(async () => (await clusterState(cluster)).every((s) => s === 'fail'), {
    what: 'cluster_state:fail on every live node',
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  return holder;
}

async function bringBack(cluster: RedisClusterHandle, holder: RedisServer): Promise<void> {
  await holder.restart();
  await cluster.waitHealthy({ replicas: false, timeoutMs: 60_000 });
}

function assertionQueue(t: Test, cluster: RedisClusterHandle, prefix: string): Queue {
  const nodes = cluster.seeds.split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) }));
  const connection = new Cluster(nodes, { redisOptions: { maxRetriesPerRequest: null } });
  connection.on('error', () => undefined);
  const queue = new Queue(QUEUE, { connection, prefix: queueKeyPrefix({ queuePrefix: prefix, redis: { clusterNodes: nodes } }, QUEUE) });
  queue.on('error', () => undefined);
  t.teardown(async () => {
    await queue.close().catch(() => undefined);
    connection.disconnect();
  });
  return queue;
}

const addJobs = (queue: Queue, tag: string, n: number) =>
  Promise.all(
    Array.from({ length: n }, (_, i) =>
      queue.add(QUEUE, { payload: { channel: 'email', to: `${tag}${i}@example.com`, template: 'welcome' }, meta: {} }, { ...jobOptionsFor(QUEUE), jobId: `${tag}-${i}` }),
    ),
  );

async function allCompleted(queue: Queue, ids: string[], what: string, tail: () => string): Promise<void> {
  let states: string[] = [];
  await waitFor(
    async () => {
      states = await Promise.all(ids.map((id) => queue.getJobState(id)));
      return states.every((s) => s === 'completed');
    },
    { what, timeoutMs: 60_000, intervalMs: 250 },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; states ${JSON.stringify(states)}; worker output:\n${tail()}`);
  });
}

t.test('Redis Cluster down (CLUSTERDOWN) and back: workers wait, then process', async (t) => {
  const cluster = await startRedisCluster({ replicasPerMaster: 0, nodeTimeoutMs: 2_000 });
  t.teardown(() => cluster.stop());
  const envFor = (prefix: string) =>
    baseEnv(NOWHERE_REDIS_URL, prefix, { REDIS_URL: NOWHERE_REDIS_URL, REDIS_CLUSTER_NODES: cluster.seeds, WORKER_QUEUES: QUEUE, LOG_LEVEL: 'info' });

  t.test('a worker started while the cluster is down waits, says why, and processes once it is back', async (t) => {
    const prefix = uniquePrefix('clusterdown-start');
    const queue = assertionQueue(t, cluster, prefix);
    const before = (await addJobs(queue, 'before', 5)).map((j) => j.id!);
    const holder = await takeDown(cluster, queue);
    let back = false;
    t.teardown(async () => {
      if (!back) await holder.restart().catch(() => undefined);
    });

    const metricsPort = await freePort();
    const base = `http://127.0.0.1:${metricsPort}`;
    // Not startWorker: its readiness is the "worker started" line, which must not come while the cluster is down.
    // Ready here means the process answers /livez; one that exits first fails the test with its output.
    const worker: ManagedProcess = await startProcess({
      name: 'worker',
      command: process.execPath,
      args: ['--require', './dist/services/worker/tracing.js', 'dist/services/worker/main.js'],
      cwd: ROOT,
      env: { ...envFor(prefix), METRICS_PORT: String(metricsPort) },
      ready: { probe: async () => (await get(`${base}/livez`)).status === 200 },
      readyTimeoutMs: 30_000,
    });
    t.teardown(() => worker.stop({ signal: 'SIGKILL' }));

    // Through the outage: still running, not ready, and saying why.
    const until = Date.now() + DOWN_MS;
    const answers: number[] = [];
    let readyz: { status: number; body: Record<string, unknown> } | undefined;
    while (Date.now() < until) {
      readyz = await worker.waitUntil(() => get(`${base}/readyz`), { what: 'worker /readyz', timeoutMs: 10_000 });
      answers.push(readyz.status);
      await new Promise((r) => setTimeout(r, 1_000));
    }
    t.ok(worker.running(), `still running after ${DOWN_MS / 1000} s of CLUSTERDOWN`);
    t.same([...new Set(answers)], [503], `/readyz 503 all through the outage (${answers.length} probes)`);
    t.match(readyz?.body, { status: 'not_ready', reason: /^starting: / }, '/readyz names the start-up step as the reason');
    t.comment(`/readyz during the outage: ${JSON.stringify(readyz?.body)}`);
    t.ok(!worker.tail().includes('"msg":"worker started"'), 'not started yet');
    t.ok(worker.tail().includes('start-up: '), 'the wait is logged');

    await bringBack(cluster, holder);
    back = true;
    const after = (await addJobs(queue, 'after', 5)).map((j) => j.id!);
    await allCompleted(queue, [...before, ...after], 'every job completed after the cluster came back', () => worker.tail());
    await worker.waitUntil(async () => (await get(`${base}/readyz`)).status === 200, { what: '/readyz 200', timeoutMs: 30_000 });
    t.pass('the same process started, is ready and processed the 5 jobs from before the outage and 5 added after it');
    t.ok(worker.running(), 'no restart');
  });

  t.test('a running worker resumes after CLUSTERDOWN', async (t) => {
    const prefix = uniquePrefix('clusterdown-run');
    const queue = assertionQueue(t, cluster, prefix);
    const worker = await startWorker(envFor(prefix));
    t.teardown(() => worker.stop('SIGKILL'));
    const tail = () => [...worker.logs.slice(-15).map((l) => JSON.stringify(l)), ...worker.stderr.slice(-5)].join('\n');
    const first = (await addJobs(queue, 'first', 5)).map((j) => j.id!);
    await allCompleted(queue, first, 'jobs completed before the outage', tail);

    const holder = await takeDown(cluster, queue);
    let back = false;
    t.teardown(async () => {
      if (!back) await holder.restart().catch(() => undefined);
    });
    await new Promise((r) => setTimeout(r, DOWN_MS));
    t.equal(worker.managed.running(), true, 'the worker ran through the outage');

    await bringBack(cluster, holder);
    back = true;
    const after = (await addJobs(queue, 'after', 5)).map((j) => j.id!);
    await allCompleted(queue, after, 'jobs added after the cluster came back completed by the same worker', tail);
    t.equal(worker.managed.running(), true, 'no restart');
  });
});
