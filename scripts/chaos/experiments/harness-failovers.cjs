/* global console, process, __dirname */
/**
 * Experiment (not part of the campaign): the campaign's own cluster failover (scripts/chaos/topology.ts) three
 * times back to back, as the redis lane does when failovers queue up, under a writer on the payments slot.
 * Before the fix the second one found the restarted node still syncing and the slot went down for good.
 *   npm run build && node scripts/chaos/experiments/harness-failovers.cjs
 */
const path = require('node:path');
const { mkdtempSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { Cluster } = require('ioredis');
const { startCampaignRedis } = require(path.join(__dirname, '../../../dist/scripts/chaos/topology.js'));
const { FaultSkipped } = require(path.join(__dirname, '../../../dist/scripts/chaos/faults.js'));

const t0 = Date.now();
const log = (...a) => console.log(`${((Date.now() - t0) / 1000).toFixed(1).padStart(6)} s`, ...a);

async function main() {
  const redis = await startCampaignRedis('cluster', 'exp', 'chaos', mkdtempSync(path.join(tmpdir(), 'exp-')));
  log(redis.describe());
  const c = new Cluster(redis.checkerTarget.clusterNodes, { redisOptions: { maxRetriesPerRequest: 3 } });
  c.on('error', () => undefined);
  let writing = true;
  let ok = 0;
  let failed = 0;
  void (async () => {
    while (writing) await c.incr('{chaos:payments}:payments:id').then(() => ok++, () => failed++);
  })();
  for (let i = 1; i <= 3; i++) {
    const started = Date.now();
    try {
      await redis.failover(3_000);
      log(`failover ${i} done in ${Date.now() - started} ms (writes ok=${ok} failed=${failed})`);
    } catch (err) {
      log(`failover ${i} ${err instanceof FaultSkipped ? 'SKIPPED' : 'FAILED'} after ${Date.now() - started} ms: ${err.message}`);
    }
  }
  writing = false;
  c.disconnect();
  await redis.stop();
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
