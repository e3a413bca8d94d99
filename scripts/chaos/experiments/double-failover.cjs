/* global console, setTimeout, process, __dirname */
/**
 * Experiment (not part of the campaign): the cluster campaign's failover sequence twice, ~4–10 s apart, on the
 * local 3+3 cluster of scripts/lib/redis-cluster.ts, while a writer loads the payments slot. Prints, at every
 * step, each live node's CLUSTER NODES view (myself + payments-slot owner) and INFO replication, and the
 * redis-server log lines (every node's stdout). Run after `npm run build`:
 *   node scripts/chaos/experiments/double-failover.cjs [secondKillAfterRestartMs=4000] [mbOfData=20]
 */
const path = require('node:path');
const dist = path.join(__dirname, '../../../dist/scripts/lib');
const { startRedisCluster } = require(path.join(dist, 'redis-cluster.js'));
const { Redis } = require('ioredis');

const GAP_MS = Number(process.argv[2] ?? 4_000);
const MB = Number(process.argv[3] ?? 20);
const KEY = '{chaos:payments}:payments:id';
const t0 = Date.now();
const ts = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s`;
const log = (...a) => console.log(ts(), ...a);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const alive = (s) => s.process.exitCode === null && s.process.signalCode === null;

function tapLogs(s) {
  const child = s.process;
  if (child.__tapped) return;
  child.__tapped = true;
  for (const stream of [child.stdout, child.stderr]) {
    stream?.on('data', (d) => {
      for (const line of String(d).split('\n').filter(Boolean)) console.log(ts(), `[:${s.port}]`, line);
    });
  }
}

async function snapshot(cluster, label) {
  log(`==== ${label}`);
  const m = await masterOfOrNull(cluster);
  if (m && cluster.replicaNotInSync) log(`  payments master :${m.port}; replicaNotInSync: ${(await cluster.replicaNotInSync(m)) ?? 'no (one is in sync)'}`);
  for (const s of cluster.servers) {
    if (!alive(s)) {
      log(`  :${s.port} DEAD`);
      continue;
    }
    const r = new Redis(s.port, '127.0.0.1', { maxRetriesPerRequest: 0, lazyConnect: true, connectTimeout: 1000, commandTimeout: 1000 });
    r.on('error', () => undefined);
    try {
      await r.connect();
      const slot = await r.cluster('KEYSLOT', KEY);
      const nodes = String(await r.cluster('NODES')).trim().split('\n');
      const me = nodes.find((l) => l.includes('myself'));
      const owner = nodes.find((l) => l.split(' ').slice(8).some((range) => {
        const [a, b] = range.split('-').map(Number);
        return slot >= a && slot <= (b ?? a);
      }));
      const repl = await r.info('replication');
      const ci = await r.cluster('INFO');
      const pick = (txt, keys) => keys.map((k) => new RegExp(`${k}:([^\\r\\n]*)`).exec(txt)?.[1]).map((v, i) => `${keys[i]}=${v}`).join(' ');
      log(`  :${s.port} myself: ${me}`);
      log(`  :${s.port}   slot ${slot} owner (its view): ${owner ?? 'NONE'}`);
      log(`  :${s.port}   ${pick(ci, ['cluster_state', 'cluster_current_epoch', 'cluster_my_epoch'])}`);
      log(`  :${s.port}   ${pick(repl, ['role', 'master_port', 'master_link_status', 'master_sync_in_progress', 'master_link_down_since_seconds', 'connected_slaves', 'slave0', 'master_repl_offset'])}`);
    } catch (e) {
      log(`  :${s.port} error ${e.message}`);
    } finally {
      r.disconnect();
    }
  }
}

async function masterOfOrNull(cluster) {
  try {
    return await cluster.masterOf(KEY);
  } catch {
    return null;
  }
}

async function waitPromotion(cluster, old, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let n = 0;
  while (Date.now() < deadline) {
    const m = await masterOfOrNull(cluster);
    if (m && m.port !== old.port) return m;
    if (++n % 25 === 0) await snapshot(cluster, `still no promotion for the payments slot (old master :${old.port})`);
    await sleep(200);
  }
  return null;
}

async function main() {
  const cluster = await startRedisCluster({ maxmemory: '256mb' });
  cluster.servers.forEach(tapLogs);
  log('cluster up', await cluster.describe());
  const c = cluster.client();
  // Bulk data on the payments slot so a full resync takes a realistic while, then a steady writer.
  const blob = 'x'.repeat(1024);
  for (let i = 0; i < MB * 1024; i += 500) {
    const p = c.pipeline();
    for (let j = i; j < i + 500; j++) p.set(`{chaos:payments}:blob:${j}`, blob);
    await p.exec();
  }
  let writing = true;
  let ok = 0;
  let failed = 0;
  void (async () => {
    while (writing) {
      await c.incr(KEY).then(() => ok++, () => failed++);
      await sleep(5);
    }
  })();
  await snapshot(cluster, 'loaded');

  for (let round = 1; round <= 2; round++) {
    const m = await cluster.masterOf(KEY);
    log(`#### round ${round}: SIGKILL payments master :${m.port} (writes ok=${ok} failed=${failed})`);
    m.signal('SIGKILL');
    await m.managed.exited;
    const promoted = await waitPromotion(cluster, m, 30_000);
    if (!promoted) {
      log(`#### round ${round}: NO PROMOTION within 30 s`);
      await snapshot(cluster, 'after the 30 s wait');
    } else {
      log(`#### round ${round}: promoted :${promoted.port}`);
      await snapshot(cluster, 'promoted');
    }
    await sleep(4_000);
    log(`#### round ${round}: restart :${m.port}`);
    await m.restart();
    tapLogs(m);
    await snapshot(cluster, 'restarted');
    if (round === 1) {
      for (let waited = 0; waited < GAP_MS; waited += 1_000) {
        await sleep(Math.min(1_000, GAP_MS - waited));
        await snapshot(cluster, `${waited + 1000} ms after the restart`);
      }
    }
  }
  // Does the slot come back once the second killed node is back?
  for (let i = 0; i < 20; i++) {
    await sleep(1_500);
    const m = await masterOfOrNull(cluster);
    log(`payments slot master: ${m ? `:${m.port}` : 'NONE'} (writes ok=${ok} failed=${failed})`);
    if (i % 5 === 4) await snapshot(cluster, 'after the second restart');
  }
  writing = false;
  await cluster.stop();
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
