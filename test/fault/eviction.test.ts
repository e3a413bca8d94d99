/**
 * An evicting Redis. API and worker refuse to start with a message that explains why (exit 1);
 * a running API whose Redis is switched to an evicting policy reports it on /readyz (503, code and reason) and
 * is ready again once noeviction is back.
 */
import t from 'tap';
import { baseEnv, startApi, startWorker } from '../helpers/services';
import { startRedisServer, uniquePrefix } from '../helpers/redis';
import { call } from '../helpers/http';
import { ms, redisClient } from './lib';

// As logged (JSON, quotes escaped) and as served by /readyz.
const WHY_LOGGED = /maxmemory-policy is \\?"allkeys-lru\\?", but BullMQ needs \\?"noeviction\\?".*accepted jobs are lost\. Set/;
const WHY = /maxmemory-policy is "allkeys-lru", but BullMQ needs "noeviction".*accepted jobs are lost/;

t.test('starting against an evicting Redis fails with the explaining message', async (t) => {
  const redis = await startRedisServer({ maxmemoryPolicy: 'allkeys-lru' });
  t.teardown(() => redis.stop());
  const env = baseEnv(redis.url, uniquePrefix('evict'));
  const refused = async (start: () => Promise<unknown>) => {
    const at = performance.now();
    const err = await start().then(() => undefined, (e: Error) => e);
    return { err, ms: ms(at) };
  };
  const apiRun = await refused(() => startApi(env));
  t.match(apiRun.err?.message, /^api exited \(1\)/, 'api exits 1');
  t.match(apiRun.err?.message, WHY_LOGGED, 'api logs why (noeviction, jobs lost, how to fix)');
  const workerRun = await refused(() => startWorker(env));
  t.match(workerRun.err?.message, /^worker exited \(1\)/, 'worker exits 1');
  t.match(workerRun.err?.message, WHY_LOGGED, 'worker logs why');
  const apiMs = apiRun.ms;
  const workerMs = workerRun.ms;
  t.comment(`evicting Redis (allkeys-lru): api refused to start in ${apiMs} ms, worker in ${workerMs} ms, both exit 1 naming noeviction`);
});

t.test('/readyz says why when the policy becomes evicting, and recovers', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const api = await startApi(baseEnv(redis.url, uniquePrefix('evict-ready')));
  t.teardown(() => api.stop('SIGKILL'));
  const admin = redisClient(t, redis.url);
  t.equal((await call('GET', `${api.url}/readyz`)).status, 200, 'ready on noeviction');

  await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
  const res = await call('GET', `${api.url}/readyz`);
  t.equal(res.status, 503);
  t.match(res.body, { statusCode: 503, code: 'REDIS_EVICTION_POLICY_UNSAFE', error: 'Service Unavailable', message: WHY });
  t.ok(res.headers['retry-after'], 'Retry-After');

  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  t.equal((await call('GET', `${api.url}/readyz`)).status, 200, 'ready again after noeviction is restored');
  t.comment(`/readyz on allkeys-lru: ${res.status} ${res.body.code}: "${String(res.body.message).slice(0, 80)}…"`);
});
