/**
 * A BullMQ Queue sets itself up once: its RedisConnection waits for the connection, then runs one INFO (the version
 * check) and keeps that promise as the client of every later command. When the INFO fails — it times out after the
 * API's 400 ms command timeout if Redis freezes (or the CPU starves) while the API boots — the Queue keeps the
 * rejection forever: every add fails at once with it, Redis healthy again or not, and /readyz said ready (found by
 * the fault campaign, docs/reliability.md). The API must rebuild such a Queue by itself, report it on /readyz in the
 * meantime and answer its adds 503 REDIS_UNAVAILABLE, never 500, never a hang (services/api/plugins/app/queues.ts).
 *
 * Both tests use a private redis-server: the first freezes it (SIGSTOP) at the exact moment a Queue's set-up INFO
 * is in flight, the second refuses that INFO through an ACL (a set-up failure that lasts until the ACL is fixed).
 */
import t, { type Test } from 'tap';
import { Redis } from 'ioredis';
import type { FastifyInstance } from 'fastify';
import { buildTestApp } from '../helpers/app';
import { type RedisServer, startRedisServer } from '../helpers/redis';
import { ADMIN_KEY, API_KEY } from '../helpers/services';
import { captureLogs } from '../helpers/log-capture';
import { waitFor } from '../helpers/wait';
import { ms, notification, payment, paymentKey } from './lib';

const auth = { authorization: `Bearer ${API_KEY}` };

const pay = (app: FastifyInstance, i: number) =>
  app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, ...paymentKey(i, 'setup') }, payload: payment(i, 'setup') });
const readyz = (app: FastifyInstance) => app.inject({ method: 'GET', url: '/readyz' });

/**
 * SIGSTOPs `redis` from inside the first INFO that BullMQ's version check sends (RedisConnection
 * getRedisVersionAndType), before it is written: Redis freezes while the API's Queues are setting themselves up.
 * The wrapper only picks the moment; the freeze, the timeout and everything after are real.
 */
function freezeAtQueueSetUp(t: Test, redis: RedisServer): { frozen: boolean } {
  const state = { frozen: false };
  const proto = Redis.prototype as unknown as { info: (this: Redis, ...args: unknown[]) => unknown };
  const info = proto.info;
  proto.info = function (this: Redis, ...args: unknown[]) {
    if (!state.frozen && new Error().stack?.includes('getRedisVersionAndType')) {
      state.frozen = true;
      redis.signal('SIGSTOP');
    }
    return info.apply(this, args);
  };
  t.teardown(() => {
    proto.info = info;
  });
  return state;
}

t.test('Redis frozen while the API sets its queues up: 503 meanwhile, then the API recovers by itself', async (t) => {
  const redis = await startRedisServer();
  t.teardown(async () => {
    redis.signal('SIGCONT');
    await redis.stop();
  });
  const freeze = freezeAtQueueSetUp(t, redis);
  const { logger, lines } = captureLogs();
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url }, { logger });
  t.ok(freeze.frozen, 'Redis froze while the Queues were setting themselves up');

  const start = performance.now();
  const frozen = await pay(app, 1);
  const frozenMs = ms(start);
  t.equal(frozen.statusCode, 503, 'a payment while Redis is frozen → 503');
  t.equal(frozen.json().code, 'REDIS_UNAVAILABLE');
  t.ok(frozenMs < 1_000, `answered in ${frozenMs} ms (< 1 s)`);
  t.equal((await readyz(app)).statusCode, 503, '/readyz 503 while Redis is frozen');

  redis.signal('SIGCONT');
  const resumed = performance.now();
  const answers: { statusCode: number; body: Record<string, unknown> }[] = [];
  await waitFor(
    async () => {
      const r = await readyz(app);
      answers.push({ statusCode: r.statusCode, body: r.json() });
      return r.statusCode === 200;
    },
    { what: '/readyz 200 after SIGCONT', timeoutMs: 10_000, intervalMs: 100 },
  );
  const readyMs = ms(resumed);
  const notReady = answers.slice(0, -1);
  t.ok(
    notReady.every((a) => a.statusCode === 503 && a.body.code === 'REDIS_UNAVAILABLE' && a.body.error === 'Service Unavailable' && typeof a.body.message === 'string'),
    `until ready (${readyMs} ms after SIGCONT), every /readyz answer was 503 REDIS_UNAVAILABLE in the error shape`,
  );

  const accepted = await pay(app, 2);
  t.equal(accepted.statusCode, 202, 'after SIGCONT, with no restart, a payment → 202');
  t.ok(await app.queues.payments.getJob(accepted.json().id), 'its job is in Redis');
  const retried = await pay(app, 1);
  t.equal(retried.statusCode, 202, 'the payment answered 503 during the freeze, retried with its key → 202');
  t.equal((await app.inject({ method: 'POST', url: '/v1/queues/notifications/jobs', headers: auth, payload: notification(1) })).statusCode, 202, 'notifications too');
  t.same(app.unusableQueues(), [], 'every queue usable');
  // The console's adapters read the rebuilt Queue, not the broken one they were built with (console-circuits.ts).
  const board = await app.inject({ url: '/admin/queues/api/queues?activeQueue=payments&status=latest', headers: { authorization: `Bearer ${ADMIN_KEY}` } });
  t.equal(board.statusCode, 200, 'the console answers after the rebuild');
  const boardPayments = board.json<{ queues: { name: string; counts: Record<string, number> }[] }>().queues.find((q) => q.name === 'payments');
  t.ok(boardPayments && Object.values(boardPayments.counts).reduce((a, x) => a + x, 0) >= 2, 'and counts the payments accepted after it');

  const failed = lines.filter((l) => l.msg === 'queue set-up failed: building the queue again');
  const again = lines.filter((l) => l.msg === 'queue set up again: accepting jobs');
  t.same([...new Set(failed.map((l) => l.queue))].sort(), ['notifications', 'payments', 'webhooks'], 'each queue logged its failed set-up');
  t.same([...new Set(again.map((l) => l.queue))].sort(), ['notifications', 'payments', 'webhooks'], 'and that it was set up again');
  t.comment(
    `frozen POST → 503 in ${frozenMs} ms; ${failed.length} failed set-ups logged; ready ${readyMs} ms after SIGCONT ` +
      `(${notReady.length} × 503 before${notReady[0] ? `, first: "${String(notReady[0].body.message)}"` : ''})`,
  );
});

t.test('a Queue whose set-up keeps failing (INFO refused by an ACL): /readyz 503 naming it, adds 503 not 500; ready once fixed', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const admin = new Redis(redis.url);
  t.teardown(() => admin.disconnect());
  // Everything the API needs but a bare INFO (the one BullMQ's set-up sends; ioredis skips its ready check on NOPERM).
  const password = `pw-${process.pid}`; // a throwaway ACL user of this private Redis
  await admin.call('ACL', 'SETUSER', 'api', 'on', `>${password}`, '~*', '&*', '+@all', '-info', '+info|memory', '+info|replication');
  const url = new URL(redis.url);
  url.username = 'api';
  url.password = password;
  const { app } = await buildTestApp(t, { REDIS_URL: url.toString() });

  const notReady = await readyz(app);
  t.equal(notReady.statusCode, 503, '/readyz 503: Redis answers, but no queue is set up');
  t.equal(notReady.headers['retry-after'], '1');
  t.match(notReady.json(), { statusCode: 503, code: 'REDIS_UNAVAILABLE', error: 'Service Unavailable' }, 'in the error shape');
  t.match(notReady.json().message, /queue "payments" cannot take jobs: its BullMQ set-up failed \d+ time\(s\) in a row \(last: NOPERM/, 'naming the queue and the cause');

  const refused = await pay(app, 1);
  t.equal(refused.statusCode, 503, 'a payment → 503, not 500');
  t.equal(refused.json().code, 'REDIS_UNAVAILABLE');
  t.equal(refused.headers['retry-after'], '1');
  t.match(refused.json().message, /"payments" queue cannot reach the job store yet: its set-up failed \(NOPERM.*nothing was stored/);

  await admin.call('ACL', 'SETUSER', 'api', '+info');
  const fixed = performance.now();
  await waitFor(async () => (await readyz(app)).statusCode === 200, { what: '/readyz 200 once INFO is allowed', timeoutMs: 10_000, intervalMs: 100 });
  const readyMs = ms(fixed);
  const accepted = await pay(app, 1);
  t.equal(accepted.statusCode, 202, 'the retry with the same key → 202, with no restart');
  t.ok(await app.queues.payments.getJob(accepted.json().id), 'its job is in Redis');
  t.comment(`NOPERM set-up: /readyz "${notReady.json().message.slice(0, 120)}…"; ready ${readyMs} ms after the ACL fix`);
});
