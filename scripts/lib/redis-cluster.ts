/**
 * A real local Redis Cluster: 3 masters + 3 replicas (or 3 masters alone), each a redis-server in cluster mode (AOF on, noeviction, a
 * short cluster-node-timeout so a failover takes seconds) started with ./redis-server.ts, joined with
 * `redis-cli --cluster create … --cluster-replicas 1`, torn down by stop(). Used by the tests
 * (test/helpers/redis-cluster.ts: one cluster per test file) and by `npm run stack -- --redis-cluster`.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { freePort } from './ports';
import { startRedisServer, type RedisServer } from './redis-server';
import { waitFor } from './wait';
import { redisInfo, replicaNotInSync, waitReplicaInSync } from './replica-sync';

const exec = promisify(execFile);

/** Cluster bus port = port + 10000: both must be free, and both below the ephemeral range (ports.ts). */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await freePort(10_000);
    if (port >= 55_536 || taken.has(port) || taken.has(port + 10_000)) continue;
    const bus = port + 10_000;
    if (await isFree(bus)) {
      taken.add(port).add(bus);
      return port;
    }
  }
}

async function isFree(port: number): Promise<boolean> {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export interface RedisClusterHandle {
  servers: RedisServer[];
  /** "127.0.0.1:p1,127.0.0.1:p2,…": the value for REDIS_CLUSTER_NODES. */
  seeds: string;
  /** An ioredis Cluster client for assertions; disconnected by stop(). */
  client(): Cluster;
  /** The live servers that are masters right now. */
  masters(): Promise<RedisServer[]>;
  /** One line per node from CLUSTER NODES: "127.0.0.1:7001 master 0-5460" / "127.0.0.1:7004 replica of 127.0.0.1:7001". */
  describe(): Promise<string[]>;
  /** INFO stats total_commands_processed of one server. */
  commandsProcessed(server: RedisServer): Promise<number>;
  /** The server that is master of the slot of `key` right now. */
  masterOf(key: string): Promise<RedisServer>;
  /**
   * Resolves once every live node reports cluster_state:ok and every live replica is in sync; with
   * `replicas` (default true) every master must also have one (false after a failover left a master alone).
   */
  waitHealthy(opts?: { timeoutMs?: number; replicas?: boolean }): Promise<void>;
  /**
   * Why `master` has no replica that Redis Cluster could promote right now (undefined when one is in sync): a
   * replica counts once its link is up, its initial sync is done and its offset has reached the master's. A
   * replica that has not completed a sync since it started (e.g. just restarted: Redis 7 delays a diskless full
   * sync by repl-diskless-sync-delay, 5 s) refuses to fail over ("Disconnected from master for longer than
   * allowed", cluster-replica-validity-factor), and the slot then stays down until the master itself returns.
   */
  replicaNotInSync(master: RedisServer): Promise<string | undefined>;
  /** Polls replicaNotInSync until `master` has an in-sync replica; rejects with the last reason on timeout. */
  waitReplicaInSync(master: RedisServer, opts?: { timeoutMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** cluster-node-timeout in ms: how long a master may be silent before its replica takes over. */
  nodeTimeoutMs?: number;
  appendfsync?: 'always' | 'everysec';
  /** Per node, e.g. '256mb' (default: no limit). */
  maxmemory?: string;
  /** Where the nodes' data directories are created (default: the OS temp dir). */
  parentDir?: string;
  /**
   * 1 (default): 3 masters + 3 replicas. 0: 3 masters alone — for throughput comparisons against one node
   * without a replica (bench/stages/cluster.ts); no failover then.
   */
  replicasPerMaster?: 0 | 1;
}

const info = redisInfo;

export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const taken = new Set<number>();
  const ports: number[] = [];
  const replicasPerMaster = opts.replicasPerMaster ?? 1;
  for (let i = 0; i < 3 * (1 + replicasPerMaster); i++) ports.push(await clusterPort(taken));
  const servers = await Promise.all(
    ports.map((port) =>
      startRedisServer({
        port,
        appendonly: true,
        appendfsync: opts.appendfsync ?? 'everysec',
        maxmemory: opts.maxmemory,
        parentDir: opts.parentDir,
        extraArgs: [
          '--cluster-enabled', 'yes',
          '--cluster-config-file', 'nodes.conf',
          '--cluster-node-timeout', String(opts.nodeTimeoutMs ?? 2_000),
        ],
      }),
    ),
  );
  const clients: Cluster[] = [];
  const handle: RedisClusterHandle = {
    servers,
    seeds: ports.map((p) => `127.0.0.1:${p}`).join(','),
    client: () => {
      const c = new Cluster(ports.map((port) => ({ host: '127.0.0.1', port })), { redisOptions: { maxRetriesPerRequest: 3 } });
      c.on('error', () => undefined);
      clients.push(c);
      return c;
    },
    masters: async () => {
      const alive = servers.filter((s) => s.process.exitCode === null && s.process.signalCode === null);
      const roles = await Promise.all(alive.map((s) => info(s.port, 'replication')));
      return alive.filter((_, i) => /role:master/.test(roles[i]!));
    },
    describe: async () => {
      const alive = servers.find((s) => s.process.exitCode === null && s.process.signalCode === null);
      if (!alive) return [];
      const r = new Redis(alive.port, '127.0.0.1', { maxRetriesPerRequest: 0 });
      r.on('error', () => undefined);
      try {
        const lines = String(await r.cluster('NODES')).trim().split('\n').map((l) => l.split(' '));
        const address = (id: string) => lines.find((l) => l[0] === id)?.[1]?.split('@')[0] ?? id;
        return lines
          .map((l) => {
            const [, addr, flags, master] = l as [string, string, string, string];
            const where = addr.split('@')[0]!;
            if (flags.includes('fail')) return `${where} down`;
            return flags.includes('master') ? `${where} master ${l.slice(8).join(' ')}` : `${where} replica of ${address(master)}`;
          })
          .sort();
      } finally {
        r.disconnect();
      }
    },
    commandsProcessed: async (server) => Number(/total_commands_processed:(\d+)/.exec(await info(server.port, 'stats'))?.[1] ?? 0),
    masterOf: async (key) => {
      const alive = servers.filter((s) => s.process.exitCode === null && s.process.signalCode === null);
      for (const s of alive) {
        const r = new Redis(s.port, '127.0.0.1', { maxRetriesPerRequest: 0, lazyConnect: true });
        r.on('error', () => undefined);
        try {
          await r.connect();
          const slot = await r.cluster('KEYSLOT', key);
          const role = (await r.role())[0];
          const slots = (await r.cluster('SLOTS')) as unknown as [number, number, [string, number]][];
          const owner = slots.find(([from, to]) => slot >= from && slot <= to)?.[2]?.[1];
          if (role === 'master' && owner === s.port) return s;
        } finally {
          r.disconnect();
        }
      }
      throw new Error(`no live master owns the slot of ${key}`);
    },
    waitHealthy: async ({ timeoutMs = 30_000, replicas = true } = {}) => {
      await waitFor(
        async () => {
          const alive = servers.filter((s) => s.process.exitCode === null && s.process.signalCode === null);
          for (const s of alive) {
            if (!/cluster_state:ok/.test(await info(s.port, 'cluster'))) return false;
            const repl = await info(s.port, 'replication');
            // A replica counts once its link is up and the initial sync is done.
            if (/role:slave/.test(repl) && (!/master_link_status:up/.test(repl) || /master_sync_in_progress:1/.test(repl))) return false;
            if (replicas && /role:master/.test(repl) && /connected_slaves:0/.test(repl)) return false;
          }
          return true;
        },
        { timeoutMs, intervalMs: 200, what: 'Redis Cluster healthy (cluster_state:ok, replicas in sync)' },
      );
    },
    replicaNotInSync: (master) => replicaNotInSync(master, servers),
    waitReplicaInSync: (master, opts) => waitReplicaInSync(master, servers, opts),
    stop: async () => {
      for (const c of clients) c.disconnect();
      await Promise.all(servers.map((s) => s.stop()));
    },
  };
  try {
    await exec('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicasPerMaster), '--cluster-yes']);
    await handle.waitHealthy({ replicas: replicasPerMaster > 0 });
  } catch (err) {
    await handle.stop();
    throw err;
  }
  return handle;
}
