import t from 'tap';
import { parseConfig, ConfigError } from '../../services/common/config';
import { queueKeyPrefix } from '../../services/common/queue-keys';
import { QUEUE_CATALOG } from '../../services/common/queue-catalog';
import { loadThresholds } from '../../services/common/thresholds';

t.test('defaults come from the catalog and the issue contract', async (t) => {
  const c = parseConfig({});
  t.equal(c.redis.url, 'redis://127.0.0.1:6379');
  t.equal(c.api.host, '127.0.0.1');
  t.equal(c.api.port, 3000);
  t.same(c.api.keys, []);
  t.equal(c.queuePrefix, 'bull');
  t.same(c.worker.queues, ['payments', 'notifications', 'webhooks']);
  const policyOf = (field: 'concurrency' | 'timeoutMs' | 'softTimeoutMs') =>
    Object.fromEntries(Object.entries(c.worker.policies).map(([q, p]) => [q, p[field]]));
  t.same(policyOf('concurrency'), { payments: 5, notifications: 10, webhooks: 64 });
  t.same(policyOf('timeoutMs'), { payments: 10_000, notifications: 5_000, webhooks: 30_000 });
  t.same(policyOf('softTimeoutMs'), { payments: 8_000, notifications: 4_000, webhooks: 24_000 }, 'soft timeout at 80 % of the timeout');
  for (const [q, p] of Object.entries(c.worker.policies)) {
    t.same({ ...p }, { ...QUEUE_CATALOG[q as keyof typeof QUEUE_CATALOG].policy, queue: q, softTimeoutMs: p.softTimeoutMs }, `${q}: the catalog policy when no override is set`);
  }
  t.equal(c.webhooks.allowPrivate, false);
  t.equal(c.api.bodyLimitBytes, 64 * 1024);
  t.same(c.failedRetention, { age: 7 * 24 * 3600, count: 20_000 }, 'dead letters: 7 days, 20k per queue');
  t.same(c.api.authFailureLimit, { max: 10, windowMs: 60_000 }, 'wrong keys: 10 per minute per address');
  t.equal(c.api.trustProxy, false, 'no proxy trusted: the socket address is the client');
  const thresholds = loadThresholds();
  t.equal(c.worker.memorySoftLimitBytes, thresholds.worker_memory_bytes.warning, 'memory soft limit from thresholds.yaml');
  t.equal(c.worker.memoryHardLimitBytes, thresholds.worker_memory_bytes.critical, 'memory hard limit from thresholds.yaml');
});

t.test('values are parsed and per-queue overrides apply', async (t) => {
  const c = parseConfig({
    API_KEYS: ' a , b ,,c',
    API_PORT: '8080',
    WORKER_QUEUES: 'webhooks,payments',
    WORKER_CONCURRENCY_PAYMENTS: '12',
    WORKER_TIMEOUT_MS_WEBHOOKS: '1500',
    WORKER_LOCK_DURATION_MS: '60000',
    WEBHOOK_ALLOW_PRIVATE: 'true',
    QUEUE_PREFIX: '{bull}',
    FAILED_RETENTION_S: '3600',
    FAILED_RETENTION_COUNT: '500',
  });
  t.same(c.failedRetention, { age: 3600, count: 500 });
  t.same(c.api.keys, ['a', 'b', 'c']);
  t.equal(c.api.port, 8080);
  t.same(c.worker.queues, ['webhooks', 'payments']);
  t.equal(c.worker.policies.payments.concurrency, 12);
  t.equal(c.worker.policies.notifications.concurrency, QUEUE_CATALOG.notifications.policy.concurrency);
  t.equal(c.worker.policies.webhooks.timeoutMs, 1500);
  t.equal(c.worker.policies.webhooks.softTimeoutMs, 1200, 'the soft timeout follows an overridden timeout');
  t.equal(c.worker.policies.payments.timeoutMs, QUEUE_CATALOG.payments.policy.timeoutMs, 'an override applies to its queue only');
  t.same(Object.values(c.worker.policies).map((p) => p.lockDurationMs), [60_000, 60_000, 60_000], 'WORKER_LOCK_DURATION_MS applies to every queue');
  t.equal(c.worker.policies.webhooks.stalledIntervalMs, QUEUE_CATALOG.webhooks.policy.stalledIntervalMs, 'unset overrides keep the catalog value');
  t.equal(c.webhooks.allowPrivate, true);
  t.equal(c.queuePrefix, '{bull}', 'hash-tagged prefix for Redis Cluster is accepted');
});

t.test('bad values are refused with a message naming the variable', async (t) => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ API_PORT: 'http' }, /API_PORT/],
    [{ API_PORT: '70000' }, /API_PORT/],
    [{ REDIS_URL: 'localhost:6379' }, /REDIS_URL/],
    [{ WORKER_QUEUES: 'payments,emails' }, /WORKER_QUEUES.*emails/],
    [{ WORKER_CONCURRENCY_WEBHOOKS: '0' }, /WORKER_CONCURRENCY_WEBHOOKS/],
    [{ WEBHOOK_ALLOW_PRIVATE: 'maybe' }, /WEBHOOK_ALLOW_PRIVATE/],
    [{ WEBHOOK_SIGNING_SECRET: 'short' }, /WEBHOOK_SIGNING_SECRET/],
    [{ QUEUE_PREFIX: 'a:b' }, /QUEUE_PREFIX/],
    [{ API_AUTH_FAILURE_LIMIT_MAX: '-1' }, /API_AUTH_FAILURE_LIMIT_MAX/],
    [{ API_AUTH_FAILURE_WINDOW_MS: '10' }, /API_AUTH_FAILURE_WINDOW_MS/],
    [{ TRUST_PROXY: 'true' }, /TRUST_PROXY=true would trust every/],
    [{ TRUST_PROXY: '10.0.0.0/33' }, /TRUST_PROXY.*"10\.0\.0\.0\/33"/],
    [{ TRUST_PROXY: '10.0.0.1, proxy.internal' }, /TRUST_PROXY.*"proxy\.internal"/],
    [{ TRUST_PROXY: '99' }, /TRUST_PROXY hop count/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ FAILED_RETENTION_S: String(8 * 24 * 3600) }, /FAILED_RETENTION_S/], // longer than the payment ledger remembers
    [{ FAILED_RETENTION_COUNT: '0' }, /FAILED_RETENTION_COUNT/],
    [{ WORKER_MEMORY_SOFT_LIMIT_BYTES: '2000', WORKER_MEMORY_HARD_LIMIT_BYTES: '1000' }, /SOFT_LIMIT/],
  ];
  for (const [env, pattern] of cases) {
    t.throws(() => parseConfig(env), ConfigError, JSON.stringify(env));
    t.throws(() => parseConfig(env), pattern, JSON.stringify(env));
  }
});

t.test('TRUST_PROXY: false, a hop count, or proxy addresses and CIDRs', async (t) => {
  t.equal(parseConfig({ TRUST_PROXY: 'false' }).api.trustProxy, false);
  t.equal(parseConfig({ TRUST_PROXY: '0' }).api.trustProxy, false);
  t.equal(parseConfig({ TRUST_PROXY: '2' }).api.trustProxy, 2);
  t.same(parseConfig({ TRUST_PROXY: ' 10.0.0.0/8, 192.168.1.7 ,::1, fd00::/8, loopback' }).api.trustProxy,
    ['10.0.0.0/8', '192.168.1.7', '::1', 'fd00::/8', 'loopback']);
});

t.test('tracing: trace mode and opt-in auto-instrumentation', async (t) => {
  const d = parseConfig({});
  t.equal(d.tracing.mode, 'child', 'attempt spans are children of the producer span by default');
  t.same(d.tracing.instrumentations, [], 'lean explicit mode by default');
  const c = parseConfig({ OTEL_BULLMQ_TRACE_MODE: 'link', OTEL_NODE_ENABLED_INSTRUMENTATIONS: ' http, ioredis ,undici,' });
  t.equal(c.tracing.mode, 'link');
  t.same(c.tracing.instrumentations, ['http', 'ioredis', 'undici']);
  t.throws(() => parseConfig({ OTEL_BULLMQ_TRACE_MODE: 'sibling' }), /OTEL_BULLMQ_TRACE_MODE/);
  t.throws(() => parseConfig({ OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http;rm -rf' }), /OTEL_NODE_ENABLED_INSTRUMENTATIONS/);
});

t.test('Redis Cluster settings: seed nodes parsed, bad ones refused; per-queue hash tags only on a cluster', async (t) => {
  const single = parseConfig({});
  t.same(single.redis.clusterNodes, [], 'one node (REDIS_URL) by default');
  t.same(
    single.redis.replicaAcks,
    {
      payments: { replicas: 1, onlyWithReplicas: true },
      notifications: { replicas: 0, onlyWithReplicas: true },
      webhooks: { replicas: 0, onlyWithReplicas: true },
    },
    'by default each queue’s catalog durability: payments wait for one replica where there are replicas',
  );
  t.same(parseConfig({ REDIS_WAIT_REPLICAS: '0' }).redis.replicaAcks.payments, { replicas: 0, onlyWithReplicas: false }, 'REDIS_WAIT_REPLICAS=0: no queue waits');
  const c = parseConfig({ REDIS_CLUSTER_NODES: ' redis-0.redis:6379, 10.0.0.2:7001 ', REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '150' });
  t.same(c.redis.clusterNodes, [{ host: 'redis-0.redis', port: 6379 }, { host: '10.0.0.2', port: 7001 }]);
  t.same([c.redis.replicaAcks.notifications, c.redis.waitTimeoutMs], [{ replicas: 1, onlyWithReplicas: false }, 150], 'REDIS_WAIT_REPLICAS applies to every queue, strictly');
  for (const [env, pattern] of [
    [{ REDIS_CLUSTER_NODES: 'redis-0' }, /REDIS_CLUSTER_NODES/],
    [{ REDIS_CLUSTER_NODES: 'a:1,b' }, /REDIS_CLUSTER_NODES/],
    [{ REDIS_CLUSTER_NODES: 'a:70000' }, /REDIS_CLUSTER_NODES/],
    [{ REDIS_WAIT_TIMEOUT_MS: '1000' }, /REDIS_WAIT_TIMEOUT_MS/],
    [{ REDIS_WAIT_REPLICAS: '-1' }, /REDIS_WAIT_REPLICAS/],
  ] as [Record<string, string>, RegExp][]) {
    t.throws(() => parseConfig(env), pattern, JSON.stringify(env));
  }
  t.equal(queueKeyPrefix(single, 'payments'), 'bull', 'one node: keys stay bull:payments:…');
  t.equal(queueKeyPrefix(c, 'payments'), '{bull:payments}', 'cluster: the queue is its own hash tag');
  t.equal(queueKeyPrefix(parseConfig({ REDIS_CLUSTER_NODES: 'a:1', QUEUE_PREFIX: '{bull}' }), 'webhooks'), '{bull:webhooks}', 'an old "{bull}" prefix does not put every queue on one slot');
});
