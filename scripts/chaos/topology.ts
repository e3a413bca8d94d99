/**
 * The Redis of a campaign, one of three topologies, each with the faults it can suffer:
 * - single: one redis-server (AOF, appendfsync everysec, noeviction) in its own network namespace (netns.ts) so
 *   the workers' link can be cut; freeze = SIGSTOP/SIGCONT.
 * - replicated: a primary, one replica and a Sentinel; clients reach the master through a role-following TCP
 *   proxy (sentinel-proxy.ts, what HAProxy does with a role check in production), since API and workers take one
 *   REDIS_URL. Failover = SIGKILL of the master, Sentinel promotes the replica, the old master comes back as a
 *   replica. Payments are WAITed for (REDIS_WAIT_REPLICAS=1).
 * - cluster: the local 3+3 Redis Cluster (scripts/lib/redis-cluster.ts); failover = SIGKILL of the master that
 *   owns the payments slot; REDIS_WAIT_REPLICAS=1.
 */
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from '../lib/ports';
import { startProcess, type ManagedProcess } from '../lib/process';
import { startRedisServer, type RedisServer } from '../lib/redis-server';
import { startRedisCluster, type RedisClusterHandle } from '../lib/redis-cluster';
import { waitFor, delay } from '../lib/wait';
import { replicaNotInSync, waitReplicaInSync } from '../lib/replica-sync';
import { queueKeyPrefix } from '../../services/common/queue-keys';
import { createRedisNamespace, type RedisNamespace } from './netns';
import type { Topology } from './schedule';
import { FaultSkipped } from './faults';

export interface CampaignRedis {
  topology: Topology;
  /** Environment for the API (and the checker's own connections, `checkerTarget`). */
  apiEnv: Record<string, string>;
  workerEnv: Record<string, string>;
  /** How the checker reaches Redis: one URL, or cluster seeds. */
  checkerTarget: { url: string; clusterNodes: { host: string; port: number }[] };
  /** One line describing the servers, for the report. */
  describe(): string;
  /** SIGSTOP the (payments) master, SIGCONT after `ms`. */
  freeze(ms: number): Promise<void>;
  /** SIGKILL the (payments) master, wait until a replica is promoted, keep it down `ms`, restart it. */
  failover(ms: number): Promise<void>;
  /** Cut the workers' link to Redis for `ms` (single topology only). */
  partition(ms: number): Promise<void>;
  stop(): Promise<void>;
}

/** True when host:port answers PING with +PONG within 1 s. */
/** SIGSTOP a Redis process, SIGCONT it after `ms`, whatever happens meanwhile. */
async function freezeFor(node: { signal(sig: NodeJS.Signals): void }, ms: number): Promise<void> {
  node.signal('SIGSTOP');
  try {
    await delay(ms);
  } finally {
    node.signal('SIGCONT');
  }
}

function ping(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, host);
    sock.setTimeout(1_000, () => (sock.destroy(), resolve(false)));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => (sock.destroy(), resolve(d.toString().startsWith('+PONG'))));
    sock.once('error', () => resolve(false));
  });
}

/** How long a failover waits for the master's replica to be in sync before it is skipped (cluster, replicated). */
const REPLICA_SYNC_WAIT_MS = 30_000;
/** Sentinel's down-after-milliseconds in the replicated topology: a master frozen longer is failed over. */
const SENTINEL_DOWN_AFTER_MS = 3_000;

const REDIS_ARGS = ['--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory', '512mb', '--maxmemory-policy', 'noeviction'];

/** @param logDir where the Sentinel's output goes (sentinel.log): its +sdown/+switch-master lines explain a failover. */
export async function startCampaignRedis(topology: Topology, tag: string, queuePrefix: string, logDir: string): Promise<CampaignRedis> {
  if (topology === 'single') return startSingle(tag);
  if (topology === 'replicated') return startReplicated(logDir);
  return startCluster(queuePrefix);
}

async function startSingle(tag: string): Promise<CampaignRedis> {
  const ns: RedisNamespace = await createRedisNamespace(tag);
  const dir = mkdtempSync(path.join(tmpdir(), 'chaos-redis-'));
  const port = 6379;
  const launch = () =>
    startProcess({
      name: 'redis (netns)',
      command: ns.execPrefix[0]!,
      // protected-mode off: the only addresses bound are this namespace's, reachable from this host alone.
      args: [...ns.execPrefix.slice(1), 'redis-server', '--port', String(port), '--bind', ns.workerAddress, ns.apiAddress, '--protected-mode', 'no', '--dir', dir, ...REDIS_ARGS],
      ready: { probe: () => ping(ns.apiAddress, port) },
      readyTimeoutMs: 15_000,
    });
  let server: ManagedProcess;
  try {
    server = await launch();
  } catch (err) {
    await ns.remove();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const apiUrl = `redis://${ns.apiAddress}:${port}`;
  return {
    topology: 'single',
    apiEnv: { REDIS_URL: apiUrl },
    workerEnv: { REDIS_URL: `redis://${ns.workerAddress}:${port}` },
    checkerTarget: { url: apiUrl, clusterNodes: [] },
    describe: () => `one redis-server (AOF everysec) in netns ${ns.name}: workers via ${ns.workerAddress}, API via ${ns.apiAddress}`,
    freeze: (ms) => freezeFor(server, ms),
    failover: () => Promise.reject(new Error('single topology: no replica to fail over to')),
    partition: async (ms) => {
      await ns.setWorkersLinkDown(true);
      try {
        await delay(ms);
      } finally {
        await ns.setWorkersLinkDown(false);
      }
    },
    stop: async () => {
      server.signal('SIGCONT');
      await server.stop({ signal: 'SIGKILL' });
      await ns.remove();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const MASTER_NAME = 'chaos';

async function startReplicated(logDir: string): Promise<CampaignRedis> {
  const dir = mkdtempSync(path.join(tmpdir(), 'chaos-sentinel-'));
  const started: RedisServer[] = [];
  let sentinel: ManagedProcess | undefined;
  let proxy: ManagedProcess | undefined;
  let sentinelClient: Redis | undefined;
  const stop = async () => {
    sentinelClient?.disconnect();
    await proxy?.stop({ signal: 'SIGKILL' });
    await sentinel?.stop({ signal: 'SIGKILL' });
    for (const s of started) {
      s.signal('SIGCONT');
      await s.stop();
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // One replica, so no full sync waits for a second one to join it: start it at once (the default waits 5 s).
    const nodeArgs = ['--repl-diskless-sync-delay', '0'];
    const primary = await startRedisServer({ appendonly: true, appendfsync: 'everysec', maxmemory: '512mb', parentDir: dir, extraArgs: nodeArgs });
    started.push(primary);
    // No --replicaof on the command line: a restarted node must come back as whatever Sentinel says (it boots as
    // a master no client reaches, the proxy following Sentinel, and Sentinel turns it into a replica), never as a
    // replica of a node that meanwhile became a replica itself.
    const replica = await startRedisServer({ appendonly: true, appendfsync: 'everysec', maxmemory: '512mb', parentDir: dir, extraArgs: nodeArgs });
    started.push(replica);
    const r = new Redis(replica.port, '127.0.0.1', { maxRetriesPerRequest: 1 });
    r.on('error', () => undefined);
    await r.call('REPLICAOF', '127.0.0.1', String(primary.port));
    r.disconnect();
    const sentinelPort = await freePort();
    const conf = path.join(dir, 'sentinel.conf');
    // down-after 3 s: a freeze shorter than that is waited out; a longer one (or a kill) is failed over.
    writeFileSync(conf, [
      `port ${sentinelPort}`, 'bind 127.0.0.1', `dir ${dir}`,
      `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primary.port} 1`,
      `sentinel down-after-milliseconds ${MASTER_NAME} ${SENTINEL_DOWN_AFTER_MS}`,
      // Sentinel waits 2 × failover-timeout before it tries a failover of the same master again.
      `sentinel failover-timeout ${MASTER_NAME} 4000`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`, '',
    ].join('\n'));
    const sentinelLog = createWriteStream(path.join(logDir, 'sentinel.log'), { flags: 'a' });
    sentinel = await startProcess({
      name: 'redis-sentinel', command: 'redis-server', args: [conf, '--sentinel'],
      onLine: (line) => sentinelLog.write(`${line}\n`),
      ready: { probe: () => ping('127.0.0.1', sentinelPort) },
    });
    void sentinel.exited.then(() => sentinelLog.end());
    // The campaign's decisions about Redis faults, beside Sentinel's own lines and in the run's output.
    const log = (line: string) => {
      sentinelLog.write(`campaign: ${line}\n`);
      process.stdout.write(`${line}\n`);
    };
    const s = new Redis(sentinelPort, '127.0.0.1', { maxRetriesPerRequest: 1, lazyConnect: true });
    s.on('error', () => undefined);
    await waitFor(async () => {
      await s.connect().catch(() => undefined);
      const replicas = (await s.call('SENTINEL', 'REPLICAS', MASTER_NAME)) as string[][];
      return replicas.some((r) => r.join(' ').includes('flags slave') || r[r.indexOf('flags') + 1] === 'slave');
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'Sentinel sees the replica' });
    sentinelClient = s;
    let proxyPort = 0;
    proxy = await startProcess({
      name: 'sentinel-proxy', command: process.execPath, args: [path.join(__dirname, 'sentinel-proxy.js'), String(sentinelPort), MASTER_NAME],
      onLine: (line) => {
        const m = /"proxyPort":(\d+)/.exec(line);
        if (m) proxyPort = Number(m[1]);
      },
      ready: { line: '"proxyPort"' },
    });
    const url = `redis://127.0.0.1:${proxyPort}`;
    const masterPort = async () => Number(((await s.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as [string, string])[1]);
    const currentMaster = async () => {
      const port = await masterPort();
      const m = started.find((x) => x.port === port);
      if (!m) throw new Error(`Sentinel names master :${port}, not one of ours`);
      return m;
    };
    /** After a failover: Sentinel has turned the old master into a replica of the new one and its sync is done. */
    const healed = async () => {
      const master = await waitFor(async () => {
        const m = await currentMaster().catch(() => undefined);
        return m && !(await replicaNotInSync(m, started).catch(() => 'unreachable')) ? m : undefined;
      }, { timeoutMs: 90_000, intervalMs: 250, what: 'a replica in sync with the master Sentinel names' });
      return master;
    };
    return {
      topology: 'replicated',
      apiEnv: { REDIS_URL: url, REDIS_WAIT_REPLICAS: '1' },
      workerEnv: { REDIS_URL: url },
      checkerTarget: { url, clusterNodes: [] },
      describe: () => `primary :${primary.port} + replica :${replica.port} (AOF everysec) + Sentinel :${sentinelPort}; clients via the master-following proxy :${proxyPort}`,
      // Sentinel, unlike Redis Cluster, promotes a replica whose full sync is not done: the new master then holds
      // whatever that node had (seed 105: with failovers every 10–20 s, both nodes were masters with their own data
      // most of the run, the proxy flipping between them — jobs vanished and came back). An operator does not kill a
      // master whose replica is not in sync, so a failover waits for one or is skipped with the reason; a freeze
      // longer than down-after is a failover too, so without an in-sync replica it is shortened to stay a freeze.
      // Each ends only once a replica is in sync again, so the next one finds the pair whole.
      freeze: async (ms) => {
        const m = await currentMaster();
        let frozenMs = ms;
        if (ms >= SENTINEL_DOWN_AFTER_MS) {
          const notInSync = await replicaNotInSync(m, started).catch((err: Error) => err.message);
          if (notInSync) {
            frozenMs = SENTINEL_DOWN_AFTER_MS - 1_000;
            log(`fault redis_freeze shortened from ${(ms / 1000).toFixed(1)} s to ${frozenMs / 1000} s (below Sentinel's down-after): ${notInSync}`);
          }
        }
        await freezeFor(m, frozenMs);
        if (frozenMs >= SENTINEL_DOWN_AFTER_MS) await healed();
      },
      failover: async (ms) => {
        const m = await currentMaster();
        try {
          await waitReplicaInSync(m, started, { timeoutMs: REPLICA_SYNC_WAIT_MS });
        } catch (err) {
          throw new FaultSkipped(`master :${m.port} not failed over: ${(err as Error).message}`);
        }
        m.signal('SIGKILL');
        await m.managed.exited;
        try {
          await waitFor(async () => (await masterPort()) !== m.port, { timeoutMs: 60_000, intervalMs: 100, what: 'Sentinel promotes the replica' });
          await delay(ms);
        } finally {
          // As an orchestrator starts a Sentinel-managed node: as a replica of the master Sentinel names now (it
          // would reconfigure it anyway, ≈ 10 s later: seed 105 refused payments `0 of 1 replicas online` ≈ 20 s
          // per failover with REDIS_WAIT_REPLICAS=1).
          const now = await masterPort().catch(() => undefined);
          await m.restart(now && now !== m.port ? ['--replicaof', '127.0.0.1', String(now)] : []);
        }
        await healed();
      },
      partition: () => Promise.reject(new Error('replicated topology: no partition (Redis is not in its own namespace)')),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

async function startCluster(queuePrefix: string): Promise<CampaignRedis> {
  const cluster: RedisClusterHandle = await startRedisCluster({ maxmemory: '256mb' });
  const nodes = cluster.seeds.split(',').map((s) => ({ host: '127.0.0.1', port: Number(s.split(':')[1]) }));
  // The payments queue's keys share one hash tag (common/queue-keys.ts): "the payments master" owns that slot.
  const paymentsKey = `${queueKeyPrefix({ queuePrefix, redis: { clusterNodes: nodes } }, 'payments')}:payments:id`;
  const target = (key: string) => cluster.masterOf(key);
  return {
    topology: 'cluster',
    apiEnv: { REDIS_CLUSTER_NODES: cluster.seeds, REDIS_WAIT_REPLICAS: '1' },
    workerEnv: { REDIS_CLUSTER_NODES: cluster.seeds },
    checkerTarget: { url: 'redis://127.0.0.1:1', clusterNodes: nodes },
    describe: () => `Redis Cluster, 3 masters + 3 replicas (AOF everysec, cluster-node-timeout 2 s): ${cluster.seeds}`,
    freeze: async (ms) => freezeFor(await target(paymentsKey), ms),
    failover: async (ms) => {
      const m = await target(paymentsKey);
      // Redis Cluster promotes only a replica that has synced with its master (cluster-replica-validity-factor):
      // the payments master's one replica is often the node the previous failover restarted, whose full sync
      // (delayed 5 s by repl-diskless-sync-delay) may not be done yet. Killing the master then takes the slot down
      // with nobody to promote it (seed 102: from 172 s on), which no operator would do: wait for the replica to
      // catch up, or skip the fault and say why.
      try {
        await cluster.waitReplicaInSync(m, { timeoutMs: REPLICA_SYNC_WAIT_MS });
      } catch (err) {
        throw new FaultSkipped(`payments master :${m.port} not failed over: ${(err as Error).message}`);
      }
      m.signal('SIGKILL');
      await m.managed.exited;
      let promoted: RedisServer | undefined;
      let failure: Error | undefined;
      try {
        promoted = await waitFor(async () => {
          const now = await target(paymentsKey);
          return now.port !== m.port ? now : undefined;
        }, { timeoutMs: 30_000, intervalMs: 200, what: 'a replica promoted for the payments slot' });
        await delay(ms);
      } catch (err) {
        failure = err as Error;
      }
      await m.restart();
      if (promoted) {
        // Healed once the old master is back as a replica in sync: the next failover has someone to promote.
        await cluster.waitReplicaInSync(promoted, { timeoutMs: 60_000 });
        return;
      }
      // Nobody was promoted: the slot is down until the old master, restarted from its AOF and nodes.conf, serves
      // it again. Wait for that so the campaign goes on with a whole cluster, then report the failure.
      const back = await waitFor(async () => (await target(paymentsKey)).port === m.port, {
        timeoutMs: 30_000, intervalMs: 200, what: `the restarted :${m.port} serving the payments slot again`,
      }).then(() => 'the restarted old master serves the slot again', (err: Error) => err.message);
      throw new Error(`${failure?.message ?? 'no replica promoted'}; ${back}`);
    },
    partition: () => Promise.reject(new Error('cluster topology: no partition (Redis is not in its own namespace)')),
    stop: async () => {
      for (const s of cluster.servers) s.signal('SIGCONT');
      await cluster.stop();
    },
  };
}
