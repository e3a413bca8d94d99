/**
 * The stack on a real Redis Cluster (3 masters + 3 replicas): each queue's keys on one slot, the three queues
 * spread over at least two masters, and the real API and worker processes — with REDIS_URL pointing at nothing —
 * accepting, processing and reporting jobs; the noeviction check covers every master.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { QUEUE_NAMES } from '../../services/common/queue-catalog';
import { queueKeyPrefix } from '../../services/common/queue-keys';
import { startRedisCluster } from '../helpers/redis-cluster';
import { ADMIN_KEY, baseEnv, startApi, startWorker } from '../helpers/services';
import { NOWHERE_REDIS_URL, SHARED_REDIS_URL } from '../helpers/redis';
import { call, scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { notification, payment } from '../fault/lib';

t.test('Redis Cluster: queues on their own slots, spread over masters; API and worker use only the cluster', async (t) => {
  const cluster = await startRedisCluster();
  t.teardown(() => cluster.stop());
  const clusterNodes = cluster.seeds.split(',');
  const client = cluster.client();

  // Where each queue lives with the shipped default prefix; the cluster is this file's own, so the processes
  // below use that prefix too. (Any other QUEUE_PREFIX hashes elsewhere: docs/scaling.md says how to check it.)
  const prefix = 'bull';
  {
    const queuePrefix = prefix;
    const placement = await Promise.all(
      QUEUE_NAMES.map(async (queue) => {
        const keyPrefix = queueKeyPrefix({ queuePrefix, redis: { clusterNodes } }, queue);
        const slots = await Promise.all(['wait', 'id', 'meta', 'events', '1'].map((k) => client.cluster('KEYSLOT', `${keyPrefix}:${queue}:${k}`)));
        const master = await cluster.masterOf(`${keyPrefix}:${queue}:wait`);
        return { queue, keyPrefix, slots, master: master.port };
      }),
    );
    for (const p of placement) t.equal(new Set(p.slots).size, 1, `${queuePrefix}: every key of ${p.queue} (${p.keyPrefix}) on one slot (${p.slots[0]})`);
    t.equal(new Set(placement.map((p) => p.slots[0])).size, 3, `${queuePrefix}: the three queues on three different slots`);
    const masters = new Set(placement.map((p) => p.master));
    t.ok(masters.size >= 2, `${queuePrefix}: the three queues live on ${masters.size} masters`);
    t.comment(`prefix ${queuePrefix}: ${placement.map((p) => `${p.queue} → slot ${p.slots[0]} on :${p.master}`).join(', ')}`);
  }
  t.equal(queueKeyPrefix({ queuePrefix: 'bull', redis: { clusterNodes: [] } }, 'payments'), 'bull', 'single node: keys unchanged (bull:payments:…)');

  // The real processes, told about the cluster only; REDIS_URL points where nothing listens.
  process.env.TEST_REDIS_CLUSTER_NODES = cluster.seeds;
  t.teardown(() => delete process.env.TEST_REDIS_CLUSTER_NODES);
  const env = baseEnv(SHARED_REDIS_URL, prefix);
  t.equal(env.REDIS_URL, NOWHERE_REDIS_URL, 'REDIS_URL points at nothing');
  t.equal(env.REDIS_CLUSTER_NODES, cluster.seeds);
  const api = await startApi(env);
  t.teardown(() => api.stop('SIGKILL'));
  const worker = await startWorker(env);
  t.teardown(() => worker.stop('SIGKILL'));
  const placementLog = worker.logs.find((l) => l.msg === 'queue placement on the Redis Cluster') as { placement?: Record<string, string> } | undefined;
  t.match(placementLog?.placement, { payments: /^slot 15553 on 127\.0\.0\.1:\d+$/, notifications: /^slot 7850 on /, webhooks: /^slot 3256 on / }, 'the worker logs where each queue lives');

  const ids: Record<string, string> = {};
  ids.payments = (await call('POST', `${api.url}/v1/queues/payments/jobs`, payment(1, 'cluster'), { 'idempotency-key': 'cluster-pay-1' })).body.id;
  ids.notifications = (await call('POST', `${api.url}/v1/queues/notifications/jobs`, notification(1))).body.id;
  for (const [queue, id] of Object.entries(ids)) {
    t.ok(id, `${queue}: 202 with a job id`);
    const job = await waitFor(
      async () => {
        const res = await call('GET', `${api.url}/v1/queues/${queue}/jobs/${id}`);
        return res.body.state === 'completed' ? res.body : undefined;
      },
      { what: `${queue} job completed on the cluster` },
    );
    t.equal(job.attemptsMade, 1, `${queue}: processed once`);
  }

  // The job's keys sit on the queue's own slot, under the tagged prefix.
  const payKey = `${queueKeyPrefix({ queuePrefix: prefix, redis: { clusterNodes } }, 'payments')}:payments:${ids.payments}`;
  t.equal(await client.exists(payKey), 1, `job hash ${payKey} is on the cluster`);
  // The intent's idempotency record shares the queue's slot (one failover keeps or loses both; WAIT covers both).
  const payTag = queueKeyPrefix({ queuePrefix: prefix, redis: { clusterNodes } }, 'payments');
  const holder = await cluster.masterOf(`${payTag}:payments:id`);
  const onHolder = new Redis(holder.port, '127.0.0.1');
  t.teardown(() => onHolder.disconnect());
  const [, records] = await onHolder.scan('0', 'MATCH', `${payTag}:idempotency:payments:*`, 'COUNT', 1000);
  t.equal(records.length, 1, `the idempotency record is under ${payTag}, on the payments master`);

  // Queue-state reads (BullMQ's own APIs, per queue slot): the guide's endpoint and the worker's gauges.
  const status = await call('GET', `${api.url}/queue/status`);
  t.equal(status.status, 200, '/queue/status works in cluster mode');
  t.equal(status.body.data.queues.payments.completed, 1, 'payments: 1 completed');
  const metrics = await call('GET', `${api.url}/queue/metrics`);
  t.equal(metrics.status, 200, '/queue/metrics works in cluster mode');
  const board = await call('GET', `${api.url}/admin/queues/api/queues`, undefined, { authorization: `Bearer ${ADMIN_KEY}` });
  t.equal(board.status, 200, 'the console (bull-board) reads the queues on the cluster');
  t.same(
    (board.body.queues as { name: string }[]).map((q) => q.name).sort(),
    ['notifications', 'payments', 'webhooks'],
    'every catalog queue in the console',
  );
  const m = await scrape(worker.metricsUrl);
  t.equal(valueOf(m, 'bullmq_queue_jobs', { queue: 'payments', state: 'completed' }), 1, 'bullmq_queue_jobs gauge read from the cluster');
  t.equal(valueOf(m, 'bullmq_queue_workers', { queue: 'payments' }), 1, 'bullmq_queue_workers: the worker is seen on the payments slot');
  t.equal((await call('GET', `${api.url}/readyz`)).status, 200, '/readyz: every master noeviction');

  // noeviction is checked on every master: one master with an evicting policy fails readiness and worker boot.
  const masters = await cluster.masters();
  const last = masters[masters.length - 1]!;
  const admin = new Redis(last.port, '127.0.0.1');
  t.teardown(() => admin.disconnect());
  await admin.config('SET', 'maxmemory-policy', 'allkeys-lru');
  const ready = await call('GET', `${api.url}/readyz`);
  t.equal(ready.status, 503, '/readyz 503 when one master evicts');
  t.match(JSON.stringify(ready.body), /allkeys-lru/, 'names the policy');
  await t.rejects(startWorker(env), /allkeys-lru/, `a worker refuses to start when master :${last.port} evicts`);
  await admin.config('SET', 'maxmemory-policy', 'noeviction');
  t.equal((await call('GET', `${api.url}/readyz`)).status, 200, '/readyz 200 again');
});
