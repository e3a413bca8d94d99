/**
 * Worker health endpoints on the metrics port: /livez answers while the process runs; /readyz answers 200 while
 * Redis answers a PING within a second and 503 with a JSON reason while it does not (a private redis-server
 * frozen with SIGSTOP), 200 again after SIGCONT — same process, no restart — and 503 once the worker drains.
 */
import t from 'tap';
import { request } from 'undici';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { baseEnv, startWorker } from '../helpers/services';
import { startRedisServer, uniquePrefix } from '../helpers/redis';
import { startReceiver } from '../helpers/receiver';
import { jobOptionsFor } from '../../services/common/job-options';
import { waitFor } from '../helpers/wait';

async function get(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await request(url, { headersTimeout: 10_000, bodyTimeout: 10_000 });
  return { status: res.statusCode, body: (await res.body.json()) as Record<string, unknown> };
}

t.test('/livez 200 throughout; /readyz 503 with a reason while Redis is frozen, 200 again after SIGCONT, 503 while draining', async (t) => {
  const redis = await startRedisServer({});
  t.teardown(() => redis.stop());
  const prefix = uniquePrefix('health');
  const worker = await startWorker(baseEnv(redis.url, prefix, { WORKER_QUEUES: 'webhooks', SHUTDOWN_GRACE_MS: '15000' }));
  t.teardown(() => worker.stop('SIGKILL'));
  const base = worker.metricsUrl.replace(/\/metrics$/, '');

  t.same(await get(`${base}/livez`), { status: 200, body: { status: 'ok' } }, '/livez 200');
  t.same(await get(`${base}/readyz`), { status: 200, body: { status: 'ready' } }, '/readyz 200 with Redis answering');

  redis.signal('SIGSTOP');
  let frozen: { status: number; body: Record<string, unknown> } | undefined;
  try {
    // The first probe after the freeze already waits out the 1 s PING bound; poll in case it raced the signal.
    frozen = await waitFor(
      async () => {
        const r = await get(`${base}/readyz`);
        return r.status === 503 ? r : undefined;
      },
      { what: '/readyz 503 while Redis is frozen', timeoutMs: 15_000 },
    );
    t.equal(frozen.body.status, 'not_ready');
    t.match(frozen.body.reason, /redis.*did not answer within 1000 ms/, 'the reason names Redis and the bound');
    t.same(await get(`${base}/livez`), { status: 200, body: { status: 'ok' } }, '/livez still 200: the process itself is fine');
  } finally {
    redis.signal('SIGCONT');
  }

  await waitFor(async () => (await get(`${base}/readyz`)).status === 200, { what: '/readyz 200 after SIGCONT', timeoutMs: 15_000 });
  t.pass('/readyz 200 again after SIGCONT, same process');

  // Draining: readiness goes first, so no new traffic is sent while the active job finishes (a slow target holds it).
  const target = await startReceiver();
  t.teardown(() => target.close());
  target.script.push({ status: 200, hangMs: 4_000 });
  const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
  const queue = new Queue('webhooks', { connection, prefix });
  t.teardown(async () => {
    await queue.close();
    connection.disconnect();
  });
  await queue.add('webhooks', { payload: { url: target.url, event: 'order.created', payload: {} }, meta: {} }, jobOptionsFor('webhooks'));
  await waitFor(async () => (await queue.getJobCounts('active')).active === 1, { what: 'the slow delivery active' });
  worker.process.kill('SIGTERM');
  const draining = await waitFor(
    async () => {
      const r = await get(`${base}/readyz`);
      return r.status === 503 ? r : undefined;
    },
    { what: '/readyz 503 while shutting down', timeoutMs: 10_000 },
  );
  t.match(draining.body, { status: 'not_ready', reason: /shutting down/ }, '503 while shutting down, the active job still running');
  t.same(await get(`${base}/livez`), { status: 200, body: { status: 'ok' } }, '/livez 200 while draining');
  t.equal(await worker.exited, 0, 'worker exited 0');
  t.equal(target.deliveries.length, 1, 'the active delivery finished during the drain');
});

t.test('/livez and /readyz are only GETs; other paths stay 404', async (t) => {
  const redis = await startRedisServer({});
  t.teardown(() => redis.stop());
  const worker = await startWorker(baseEnv(redis.url, uniquePrefix('health'), { WORKER_QUEUES: 'notifications' }));
  t.teardown(() => worker.stop('SIGKILL'));
  const base = worker.metricsUrl.replace(/\/metrics$/, '');
  const status = async (path: string, method: 'GET' | 'POST' = 'GET') => {
    const res = await request(`${base}${path}`, { method });
    await res.body.dump();
    return res.statusCode;
  };
  t.equal(await status('/livez', 'POST'), 404);
  t.equal(await status('/healthz'), 404);
  t.equal(await status('/readyz?verbose=1'), 200, 'a query string does not change the answer');
});
