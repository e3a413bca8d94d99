/**
 * Redis SIGKILLed in the middle of a 2,000-job burst through the real API, then restarted. What a
 * crash of the Redis *process* can lose depends on the AOF fsync policy, and on the disk; each case asserts
 * exactly what Redis promises for it:
 *
 * - `appendfsync everysec` (compose's default), AOF on tmpfs: Redis write()s the AOF
 *   before it replies, so a dead process loses nothing acknowledged. Asserted: 0 lost. tmpfs, because of the
 *   next case: on a disk, everysec's promise also depends on how fast that disk fsyncs, and this CI box's disk
 *   is shared with the rest of the suite.
 * - `appendfsync everysec`, AOF on disk: when the once-a-second background fsync is slow (a busy disk), Redis
 *   postpones the write for up to 2 s *while still replying*. A CI run on a busy disk lost 886 of 1,018
 *   acknowledged jobs that way. So the promise there is a time window, and that is what is asserted: every
 *   job acknowledged more than EVERYSEC_WINDOW_MS before the kill survives, and every lost job was
 *   acknowledged inside that window.
 * - `appendfsync always`, AOF on disk: Redis writes and fsyncs before any reply. Asserted: 0 lost, busy disk
 *   or not.
 * - no persistence (the guide's advice, see docs/reliability.md): the negative control. Even the jobs settled
 *   long before the crash are gone, so every check above can fail.
 *
 * The API is never restarted: after Redis is back the same process accepts jobs again.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { baseEnv, startApi } from '../helpers/services';
import { type RedisServerOptions, startRedisServer, uniquePrefix } from '../helpers/redis';
import { call } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { payment, paymentKey, pool, redisClient } from './lib';

const SETTLED = 200;
const BURST = 2000;
const KILL_AFTER_ACKS = 1000;
/**
 * everysec's worst case: a write postponed for "2 seconds" measured on Redis's whole-second clock (so up to
 * 3 s), then written. Jobs acknowledged earlier than this before the kill must be in the AOF.
 */
const EVERYSEC_WINDOW_MS = 3000;
/** How long the settled batch rests before the burst: past the window, with a margin. */
const SETTLE_MS = EVERYSEC_WINDOW_MS + 1000;
/** tmpfs: fsync costs nothing there, so no write is ever postponed. */
const TMPFS = existsSync('/dev/shm') ? '/dev/shm' : undefined;

interface CrashResult {
  settledLost: number;
  burstAcked: number;
  burstLost: number;
  refused: number;
  /** For each lost burst job: how long before the kill its 202 arrived (ms; negative if just after the signal). */
  lostAckAgesMs: number[];
  afterStatus: number;
}

async function crashMidBurst(t: { teardown(fn: () => unknown): void }, durability: RedisServerOptions): Promise<CrashResult> {
  const redis = await startRedisServer(durability);
  t.teardown(() => redis.stop());
  const prefix = uniquePrefix(durability.appendonly ? `aof-${durability.appendfsync}` : 'noaof');
  const api = await startApi(baseEnv(redis.url, prefix, { API_RATE_LIMIT_MAX: '0' }));
  t.teardown(() => api.stop('SIGKILL'));
  const enqueue = (i: number, tag: string) => call('POST', `${api.url}/v1/queues/payments/jobs`, payment(i, tag), paymentKey(i, tag));

  // Phase 1: a batch acknowledged well before the crash.
  const settled: string[] = [];
  await pool(Array.from({ length: SETTLED }, (_, i) => i), 16, async (i) => {
    const res = await enqueue(i, 'settled');
    if (res.status === 202) settled.push(res.body.id);
  });
  await sleep(SETTLE_MS);

  // Phase 2: the burst; Redis is SIGKILLed once KILL_AFTER_ACKS jobs are acknowledged (or when the burst ends,
  // if a slow disk made the API refuse that many).
  const acked = new Map<string, number>();
  let refused = 0;
  let killedAt: number | undefined;
  const exited = new Promise((r) => redis.process.once('exit', r));
  const kill = () => {
    killedAt = performance.now();
    redis.signal('SIGKILL');
  };
  await pool(Array.from({ length: BURST }, (_, i) => i), 32, async (i) => {
    const res = await enqueue(i, 'burst');
    // A 202 that lands just after the kill signal was still replied by Redis before it died: it counts.
    if (res.status === 202) acked.set(res.body.id, performance.now());
    else refused++;
    if (killedAt === undefined && acked.size >= KILL_AFTER_ACKS) kill();
  });
  if (killedAt === undefined) kill();
  await exited;
  await redis.restart();

  const client = redisClient(t, redis.url);
  const missing = async (ids: string[]) => {
    const pipeline = client.pipeline();
    for (const id of ids) pipeline.exists(`${prefix}:payments:${id}`);
    const results = (await pipeline.exec()) ?? [];
    return ids.filter((_, i) => results[i]?.[1] !== 1);
  };
  const settledLost = (await missing(settled)).length;
  const burstIds = [...acked.keys()];
  const lostIds = await missing(burstIds);

  // Same API process, no restart: it reconnects and accepts jobs again.
  const after = await waitFor(
    async () => {
      const res = await enqueue(9999, 'after');
      return res.status === 202 ? res : undefined;
    },
    { what: 'API accepting jobs after the Redis restart', timeoutMs: 10_000, intervalMs: 200 },
  );
  return {
    settledLost,
    burstAcked: acked.size,
    burstLost: lostIds.length,
    refused,
    lostAckAgesMs: lostIds.map((id) => Math.round(killedAt! - acked.get(id)!)),
    afterStatus: after.status,
  };
}

const summary = (name: string, r: CrashResult) =>
  `${name}: lost ${r.settledLost} of ${SETTLED} settled and ${r.burstLost} of ${r.burstAcked} burst jobs acknowledged ` +
  `(${r.refused} of ${BURST} refused with 503 around/after the SIGKILL)` +
  (r.burstLost ? `; lost jobs were acknowledged ${Math.min(...r.lostAckAgesMs)}–${Math.max(...r.lostAckAgesMs)} ms before the kill` : '');

t.test('SIGKILL Redis (AOF everysec) during a 2,000-job burst: 0 acknowledged jobs lost', async (t) => {
  const r = await crashMidBurst(t, { appendonly: true, appendfsync: 'everysec', parentDir: TMPFS });
  t.equal(r.settledLost, 0, 'every settled job survived');
  t.ok(r.burstAcked >= 100, `${r.burstAcked} burst jobs acknowledged before the kill`);
  t.equal(r.burstLost, 0, 'every acknowledged burst job survived the crash');
  t.ok(r.refused > 0, 'requests after the kill were refused (503), never acknowledged');
  t.equal(r.afterStatus, 202, 'API accepts jobs again without a restart');
  t.comment(summary(`appendfsync everysec, AOF on ${TMPFS ?? 'the temp dir'}`, r));
});

t.test('SIGKILL Redis (AOF everysec, on disk): loss bounded to the last fsync window', async (t) => {
  const r = await crashMidBurst(t, { appendonly: true, appendfsync: 'everysec' });
  t.equal(r.settledLost, 0, `every job acknowledged ≥ ${SETTLE_MS} ms before the crash survived`);
  t.ok(r.burstAcked >= 100, `${r.burstAcked} burst jobs acknowledged before the kill`);
  const outside = r.lostAckAgesMs.filter((age) => age > EVERYSEC_WINDOW_MS);
  t.same(outside, [], `no lost job was acknowledged more than ${EVERYSEC_WINDOW_MS} ms before the kill`);
  t.equal(r.afterStatus, 202, 'API accepts jobs again without a restart');
  t.comment(summary('appendfsync everysec, AOF on disk', r));
});

t.test('SIGKILL Redis (AOF always, on disk): 0 acknowledged jobs lost whatever the disk does', async (t) => {
  const r = await crashMidBurst(t, { appendonly: true, appendfsync: 'always' });
  t.equal(r.settledLost, 0, 'every settled job survived');
  t.ok(r.burstAcked >= 100, `${r.burstAcked} burst jobs acknowledged before the kill`);
  t.equal(r.burstLost, 0, 'every acknowledged burst job survived the crash');
  t.equal(r.afterStatus, 202, 'API accepts jobs again without a restart');
  t.comment(summary('appendfsync always, AOF on disk', r));
});

t.test('4 (negative control). same crash, Redis without persistence: acknowledged jobs are lost', async (t) => {
  const r = await crashMidBurst(t, { appendonly: false });
  t.equal(r.settledLost, SETTLED, 'even the settled jobs are gone: the checks above can fail');
  t.ok(r.burstLost > 0, 'acknowledged burst jobs are gone');
  t.comment(summary("no persistence (the guide's advice)", r));
});
