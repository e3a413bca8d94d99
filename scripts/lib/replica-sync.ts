/**
 * Is a master's replica caught up? What an operator checks before failing a master over (and what Redis Cluster
 * checks before promoting one; Sentinel does not: it promotes a replica whose full sync has not finished, and the
 * new master's data is then whatever that node held — docs/reliability.md, findings 5 and 6). Used by the Redis
 * Cluster handle (./redis-cluster.ts) and by the campaign's replicated topology (scripts/chaos/topology.ts).
 */
import { Redis } from 'ioredis';
import type { RedisServer } from './redis-server';
import { waitFor } from './wait';

export async function redisInfo(port: number, section: string): Promise<string> {
  const r = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return section === 'cluster' ? await r.cluster('INFO') : await r.info(section);
  } finally {
    r.disconnect();
  }
}

/** Why no replica of `master` is in sync (link up, no full sync running, at the master's offset); undefined when one is. */
export async function replicaNotInSync(master: RedisServer, servers: readonly RedisServer[]): Promise<string | undefined> {
  const masterRepl = await redisInfo(master.port, 'replication');
  if (!/role:master/.test(masterRepl)) return `:${master.port} is not a master`;
  const masterOffset = Number(/master_repl_offset:(\d+)/.exec(masterRepl)?.[1] ?? 0);
  const replicaPorts = [...masterRepl.matchAll(/^slave\d+:.*\bport=(\d+)/gm)].map((m) => Number(m[1]));
  if (!replicaPorts.length) return `:${master.port} has no replica connected`;
  const reasons: string[] = [];
  for (const port of replicaPorts) {
    const replica = servers.find((s) => s.port === port);
    if (!replica || replica.process.exitCode !== null || replica.process.signalCode !== null) {
      reasons.push(`:${port} not running`);
      continue;
    }
    const repl = await redisInfo(port, 'replication').catch((err: Error) => `unreachable: ${err.message}`);
    const field = (name: string) => new RegExp(`${name}:([^\\r\\n]*)`).exec(repl)?.[1];
    const offset = Number(field('slave_repl_offset') ?? -1);
    if (field('master_port') !== String(master.port)) reasons.push(`:${port} is not its replica (${field('role') ?? repl})`);
    else if (field('master_link_status') !== 'up') reasons.push(`:${port} master_link_status:${field('master_link_status')}`);
    else if (field('master_sync_in_progress') !== '0') reasons.push(`:${port} full sync in progress`);
    else if (offset < masterOffset) reasons.push(`:${port} at offset ${offset} of ${masterOffset}`);
    else return undefined;
  }
  return `no replica of :${master.port} in sync (${reasons.join('; ')})`;
}

/** Polls replicaNotInSync until `master` has an in-sync replica; rejects with the last reason on timeout. */
export async function waitReplicaInSync(master: RedisServer, servers: readonly RedisServer[], { timeoutMs = 30_000 } = {}): Promise<void> {
  let reason: string | undefined = 'not checked yet';
  await waitFor(async () => (reason = await replicaNotInSync(master, servers).catch((err: Error) => `:${master.port} unreachable: ${err.message}`)) === undefined, {
    timeoutMs, intervalMs: 200, what: `a replica of :${master.port} in sync`,
  }).catch((err: Error) => {
    throw new Error(`${err.message}: ${reason}`);
  });
}
