/**
 * Fault test 4: Redis SIGKILLed in the middle of a 2,000-job burst through the real API, then restarted.
 * With AOF everysec every job the API acknowledged (202) is still there after the restart: Redis write()s the
 * AOF buffer before it replies, so a dead *process* loses nothing acknowledged (everysec only bounds the loss
 * on a machine/OS crash to about a second). The negative control runs the same burst against a Redis without
 * persistence — the guide's advice — and shows the acknowledged jobs gone, so the check can fail.
 * The API is never restarted: after Redis is back the same process accepts jobs again.
 */
import t from 'tap';
import { baseEnv, startApi } from '../helpers/services';
import { startRedisServer, uniquePrefix } from '../helpers/redis';
import { call } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { payment, pool, redisClient } from './lib';

const BURST = 2000;
const KILL_AFTER_ACKS = 1000;

async function burstAndCrash(t: { teardown(fn: () => unknown): void }, appendonly: boolean) {
  const redis = await startRedisServer({ appendonly });
  t.teardown(() => redis.stop());
  const prefix = uniquePrefix(appendonly ? 'aof' : 'noaof');
  const api = await startApi(baseEnv(redis.url, prefix, { API_RATE_LIMIT_MAX: '0' }));
  t.teardown(() => api.stop('SIGKILL'));

  const acked: string[] = [];
  let refused = 0;
  let killed = false;
  const exited = new Promise((r) => redis.process.once('exit', r));
  await pool(Array.from({ length: BURST }, (_, i) => i), 32, async (i) => {
    const res = await call('POST', `${api.url}/v1/queues/payments/jobs`, payment(i, 'burst'));
    if (res.status === 202) acked.push(res.body.id);
    else refused++;
    if (!killed && acked.length >= KILL_AFTER_ACKS) {
      killed = true;
      redis.signal('SIGKILL');
    }
  });
  await exited;
  await redis.restart();

  const client = redisClient(t, redis.url);
  const pipeline = client.pipeline();
  for (const id of acked) pipeline.exists(`${prefix}:payments:${id}`);
  const found = ((await pipeline.exec()) ?? []).filter(([, v]) => v === 1).length;

  // Same API process, no restart: it reconnects and accepts jobs again.
  const after = await waitFor(
    async () => {
      const res = await call('POST', `${api.url}/v1/queues/payments/jobs`, payment(9999, 'after'));
      return res.status === 202 ? res : undefined;
    },
    { what: 'API accepting jobs after the Redis restart', timeoutMs: 10_000, intervalMs: 200 },
  );
  return { acked: acked.length, refused, lost: acked.length - found, afterStatus: after.status };
}

t.test('4. SIGKILL Redis (AOF everysec) during a 2,000-job burst: 0 acknowledged jobs lost', async (t) => {
  const r = await burstAndCrash(t, true);
  t.ok(r.acked >= KILL_AFTER_ACKS, `${r.acked} jobs acknowledged before/around the kill`);
  t.ok(r.refused > 0, `${r.refused} requests after the kill refused (503), not acknowledged`);
  t.equal(r.lost, 0, 'every acknowledged job survived the crash');
  t.equal(r.afterStatus, 202, 'API accepts jobs again without a restart');
  t.comment(`AOF everysec: lost ${r.lost} of ${r.acked} acknowledged jobs (${r.refused} of ${BURST} refused with 503 after the SIGKILL)`);
});

t.test('4 (negative control). same burst, Redis without persistence: acknowledged jobs are lost', async (t) => {
  const r = await burstAndCrash(t, false);
  t.ok(r.acked >= KILL_AFTER_ACKS);
  t.ok(r.lost > 0, 'the crash loses acknowledged jobs without AOF — the check above can fail');
  t.comment(`no persistence (the guide's advice): lost ${r.lost} of ${r.acked} acknowledged jobs`);
});
