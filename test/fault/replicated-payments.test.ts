/**
 * Durability by queue on a replicated Redis (one master + one replica): by default a payment's 202 waits for
 * the replica (the catalog's durability, services/api/replication-gate.ts), other queues do not wait, and a node
 * without replicas refuses nothing. A replica that cannot acknowledge (frozen with SIGSTOP) turns a payment into
 * the documented 503 REDIS_NOT_REPLICATED (outcome unknown, retry with the same Idempotency-Key) within the
 * request deadline. REDIS_WAIT_REPLICAS overrides every queue. The failover itself: test/cluster/failover.test.ts.
 */
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import { buildTestApp } from '../helpers/app';
import { startRedisServer } from '../helpers/redis';
import { API_KEY } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import { notification, payment } from './lib';
import { onlineReplicas, SHORT_HOLD_MS } from '../../services/api/replication-gate';
import { setTimeout as sleep } from 'node:timers/promises';

const auth = { authorization: `Bearer ${API_KEY}` };

async function replicatedRedis(t: Test) {
  const master = await startRedisServer();
  t.teardown(() => master.stop());
  const replica = await startRedisServer({ extraArgs: ['--replicaof', '127.0.0.1', String(master.port)] });
  t.teardown(async () => {
    replica.signal('SIGCONT');
    await replica.stop();
  });
  const admin = new Redis(master.url);
  t.teardown(() => admin.disconnect());
  await waitFor(async () => onlineReplicas(await admin.info('replication')) === 1, { what: 'replica online', timeoutMs: 20_000 });
  return { master, replica };
}

t.test('INFO replication: only replicas in state online count', async (t) => {
  const info = 'role:master\r\nconnected_slaves:2\r\nslave0:ip=10.0.0.2,port=6379,state=online,offset=42,lag=0\r\n' +
    'slave1:ip=10.0.0.3,port=6379,state=wait_bgsave,offset=0,lag=0\r\nmaster_repl_offset:42\r\n';
  t.equal(onlineReplicas(info), 1);
  t.equal(onlineReplicas('role:master\r\nconnected_slaves:0\r\n'), 0);
});

t.test('with a replica: payments wait for it, notifications do not; a frozen replica → 503 REDIS_NOT_REPLICATED', async (t) => {
  const { master, replica } = await replicatedRedis(t);
  const { app } = await buildTestApp(t, { REDIS_URL: master.url });
  const pay = (i: number) => app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': `dur-${i}` }, payload: payment(i, 'dur') });
  const notify = (i: number) => app.inject({ method: 'POST', url: '/v1/queues/notifications/jobs', headers: auth, payload: notification(i) });

  t.equal((await pay(1)).statusCode, 202, 'a payment acknowledged by the replica → 202');
  replica.signal('SIGSTOP');
  const refused = await pay(2);
  t.equal(refused.statusCode, 503, 'replica frozen: the payment is not confirmed → 503');
  t.equal(refused.json().code, 'REDIS_NOT_REPLICATED');
  t.match(refused.json().message, /same Idempotency-Key/, 'the message says the outcome is unknown and how to retry');
  t.equal(refused.headers['retry-after'], '1');
  t.equal((await notify(1)).statusCode, 202, 'a notification does not wait for the replica (durability 0)');
  const held = await pay(3);
  t.same([held.statusCode, held.json().code], [503, 'REDIS_NOT_REPLICATED'], 'within Retry-After of the shortfall: refused without a WAIT');
  t.match(held.json().message, /fell short less than 1000 ms ago/);
  replica.signal('SIGCONT');
  await sleep(SHORT_HOLD_MS); // the client honours Retry-After: 1
  const retried = await pay(2);
  t.equal(retried.statusCode, 202, 'the retry with the same Idempotency-Key after the replica is back → 202');
  t.equal((await app.queues.payments.getJobCounts()).prioritized, 3, 'three payments (the refused ones were stored: outcome unknown), the retried one stored once');
});

t.test('no replica online: payments are refused without a WAIT, so the shared connection keeps serving everything else', async (t) => {
  const { master, replica } = await replicatedRedis(t);
  const { app } = await buildTestApp(t, { REDIS_URL: master.url, REDIS_WAIT_REPLICAS: '1' });
  const pay = (i: number) => app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': `gone-${i}` }, payload: payment(i, 'gone') });
  t.equal((await pay(0)).statusCode, 202, 'with the replica: 202');
  await replica.stop();
  const admin = new Redis(master.url);
  t.teardown(() => admin.disconnect());
  await waitFor(async () => onlineReplicas(await admin.info('replication')) === 0, { what: 'replica gone', timeoutMs: 10_000 });
  // The gate still counts one replica (its count is 5 s fresh): before WAITs were grouped, each of these WAITed
  // 200 ms on the one producer connection, one after the other, and the commands queued behind them timed out
  // (400 ms): 19 of 20 answered REDIS_UNAVAILABLE, and /readyz failed with them.
  const burst = await Promise.all([...Array.from({ length: 20 }, (_, i) => pay(i + 1)), app.inject({ method: 'GET', url: '/readyz' })]);
  const readyz = burst.pop()!;
  const codes = burst.map((r) => `${r.statusCode} ${r.json().code}`);
  t.same([...new Set(codes)], ['503 REDIS_NOT_REPLICATED'], `20 concurrent payments: each told it is not replicated (${codes.filter((c) => c.includes('UNAVAILABLE')).length} REDIS_UNAVAILABLE)`);
  t.equal(readyz.statusCode, 200, '/readyz on the same connection answers meanwhile');
  // The shortfall made the gate read the count again: from now on it refuses from the count, sending no WAIT.
  const counted = await waitFor(async () => {
    const res = await pay(100);
    return /0 of 1 replicas online/.test(res.json().message) ? res : undefined;
  }, { what: 'a refusal from the replica count', timeoutMs: 5_000, intervalMs: 50 });
  t.equal(counted.statusCode, 503, 'refused from the count: "0 of 1 replicas online"');
  t.equal((await app.inject({ method: 'POST', url: '/v1/queues/notifications/jobs', headers: { ...auth, 'idempotency-key': 'n-gone' }, payload: notification(1) })).statusCode, 503, 'REDIS_WAIT_REPLICAS=1 asks it of every queue');
});

t.test('a replay through another API waits for the replica too: its WAIT covers the add that API did not make', async (t) => {
  const { master, replica } = await replicatedRedis(t);
  const first = await buildTestApp(t, { REDIS_URL: master.url });
  const other = await buildTestApp(t, { REDIS_URL: master.url, QUEUE_PREFIX: first.prefix });
  const pay = (app: typeof first.app) => app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': 'via-two' }, payload: payment(7, 'two') });
  replica.signal('SIGSTOP');
  const refused = await pay(first.app);
  t.same([refused.statusCode, refused.json().code], [503, 'REDIS_NOT_REPLICATED'], 'first API: stored on the master, not confirmed');
  // The other API's connection has written nothing: a WAIT on it alone would count the frozen replica as caught up
  // (its acknowledged offset covers that connection's writes) and answer 202 for a job only the master holds.
  const replay = await pay(other.app);
  t.same([replay.statusCode, replay.json().code], [503, 'REDIS_NOT_REPLICATED'], 'the replay elsewhere, replica still frozen: not confirmed either');
  replica.signal('SIGCONT');
  await sleep(SHORT_HOLD_MS);
  const confirmed = await pay(other.app);
  t.same([confirmed.statusCode, confirmed.headers['idempotent-replayed']], [202, 'true'], 'replica back: the replay → 202, the same job');
  t.equal((await other.app.queues.payments.getJobCounts()).prioritized, 1, 'stored once');
});

t.test('REDIS_WAIT_REPLICAS=0 turns the wait off for every queue', async (t) => {
  const { master, replica } = await replicatedRedis(t);
  const { app } = await buildTestApp(t, { REDIS_URL: master.url, REDIS_WAIT_REPLICAS: '0' });
  replica.signal('SIGSTOP');
  const res = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': 'off-1' }, payload: payment(1, 'off') });
  t.equal(res.statusCode, 202, 'a payment is acknowledged by the master alone');
});

t.test('a Redis without replicas: the catalog default refuses nothing; REDIS_WAIT_REPLICAS=1 insists', async (t) => {
  const alone = await startRedisServer();
  t.teardown(() => alone.stop());
  const byDefault = await buildTestApp(t, { REDIS_URL: alone.url });
  const pay = (app: typeof byDefault.app, key: string) =>
    app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': key }, payload: payment(1, key) });
  t.equal((await pay(byDefault.app, 'alone-1')).statusCode, 202, 'no replica to wait for: 202 from the master');
  const strict = await buildTestApp(t, { REDIS_URL: alone.url, REDIS_WAIT_REPLICAS: '1' });
  const res = await pay(strict.app, 'alone-2');
  t.equal(res.statusCode, 503, 'an explicit REDIS_WAIT_REPLICAS=1 is not met by a master alone');
  t.equal(res.json().code, 'REDIS_NOT_REPLICATED');
});
