/**
 * The API contract through app.inject(), against the real Redis: validation and the one error shape, auth,
 * idempotency under concurrency, job reads, fault settings, the guide's JSON endpoints and probes.
 */
import t, { type Test } from 'tap';
import { buildTestApp } from '../helpers/app';

const payment = { amount: 1250, currency: 'EUR', account: 'acct_42' };

function assertErrorShape(t: Test, res: { statusCode: number; json(): any }, status: number, code: string) {
  const body = res.json();
  t.equal(res.statusCode, status, `status ${status}`);
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], 'error shape');
  t.equal(body.statusCode, status);
  t.equal(body.code, code);
  t.type(body.message, 'string');
  return body;
}

t.test('POST accepts a valid job: 202, id, state and Location', async (t) => {
  const { app, auth } = await buildTestApp(t);
  const res = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': 'pay-1' }, payload: { data: payment, priority: 'critical' } });
  t.equal(res.statusCode, 202);
  const body = res.json();
  t.match(body, { id: /^idem-[0-9a-f]{40}-[0-9a-f]{16}$/, queue: 'payments', state: 'prioritized' });
  t.notOk(res.headers['idempotent-replayed'], 'a first request is not a replay');
  t.equal(res.headers.location, `/v1/queues/payments/jobs/${body.id}`);

  const job = await app.queues.payments.getJob(body.id);
  t.equal(job?.opts.priority, 1, 'critical = priority 1');
  t.equal(job?.opts.attempts, 3, 'attempts from the catalog');
  t.match(job?.opts.backoff, { type: 'timeout-aware' });
  t.same(job?.data.payload, payment, 'payload stored as sent');

  const delayed = await app.inject({ method: 'POST', url: '/v1/queues/notifications/jobs', headers: auth, payload: { data: { channel: 'sms', to: '+3312345678', template: 'otp' }, delayMs: 60_000 } });
  t.equal(delayed.statusCode, 202);
  t.equal(delayed.json().state, 'delayed');
  t.match(delayed.json().id, /^\d+$/, 'without an Idempotency-Key: a plain BullMQ id');

  const read = await app.inject({ method: 'GET', url: `/v1/queues/payments/jobs/${body.id}`, headers: auth });
  t.equal(read.statusCode, 200);
  t.match(read.json(), { id: body.id, queue: 'payments', state: 'prioritized', attemptsMade: 0, data: payment, returnValue: null, failedReason: null, processedAt: null, finishedAt: null });
  t.ok(Date.parse(read.json().createdAt) > 0, 'createdAt is an ISO date');
});

t.test('validation errors are 400 with the error shape, naming the field, and enqueue nothing', async (t) => {
  const { app, auth } = await buildTestApp(t);
  const cases: [string, unknown, RegExp][] = [
    ['payments', { data: { ...payment, amount: 0 } }, /data\.amount/],
    ['payments', { data: { ...payment, amount: 12.5 } }, /data\.amount/],
    ['payments', { data: { ...payment, currency: 'eur' } }, /data\.currency/],
    ['payments', { data: { amount: 1, currency: 'EUR' } }, /account/],
    ['payments', { data: { ...payment, cvv: '123' } }, /unknown field "cvv"/],
    ['payments', { data: payment, priority: 'urgent' }, /priority/],
    ['payments', { data: payment, delayMs: -1 }, /delayMs/],
    ['payments', { data: payment, extra: true }, /unknown field "extra"/],
    ['payments', {}, /data/],
    ['notifications', { data: { channel: 'fax', to: 'x', template: 't' } }, /data\.channel/],
    ['webhooks', { data: { url: 'ftp://example.com/x', event: 'e', payload: {} } }, /data\.url/],
    ['webhooks', { data: { url: 'https://example.com/x', event: 'e' } }, /payload/],
  ];
  for (const [queue, payload, field] of cases) {
    const res = await app.inject({ method: 'POST', url: `/v1/queues/${queue}/jobs`, headers: { ...auth, 'idempotency-key': 'k-validation' }, payload: payload as object });
    const body = assertErrorShape(t, res, 400, 'VALIDATION_ERROR');
    t.match(body.message, field, `${queue} ${JSON.stringify(payload)} → ${body.message}`);
  }
  const malformed = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': 'k-malformed', 'content-type': 'application/json' }, payload: '{"data":' });
  assertErrorShape(t, malformed, 400, malformed.json().code);
  const counts = await app.queues.payments.getJobCounts();
  t.equal(Object.values(counts).reduce((a, b) => a + b, 0), 0, 'nothing enqueued');
});

t.test('unknown queue 404, oversize body 413, unknown route 404', async (t) => {
  const { app, auth } = await buildTestApp(t);
  const unknown = await app.inject({ method: 'POST', url: '/v1/queues/emails/jobs', headers: auth, payload: { data: {} } });
  t.match(assertErrorShape(t, unknown, 404, 'QUEUE_NOT_FOUND').message, /emails/);
  const unknownGet = await app.inject({ method: 'GET', url: '/v1/queues/emails/jobs/1', headers: auth });
  assertErrorShape(t, unknownGet, 404, 'QUEUE_NOT_FOUND');
  const missingJob = await app.inject({ method: 'GET', url: '/v1/queues/payments/jobs/999999', headers: auth });
  assertErrorShape(t, missingJob, 404, 'JOB_NOT_FOUND');
  const big = { data: { url: 'https://example.com/h', event: 'e', payload: { blob: 'x'.repeat(70 * 1024) } } };
  const oversize = await app.inject({ method: 'POST', url: '/v1/queues/webhooks/jobs', headers: auth, payload: big });
  assertErrorShape(t, oversize, 413, 'PAYLOAD_TOO_LARGE');
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/nope' }), 404, 'ROUTE_NOT_FOUND');
  t.equal((await app.queues.webhooks.getJobCounts()).prioritized, 0, 'oversize body enqueued nothing');
});

t.test('auth: missing or wrong key 401; no key configured refuses writes and says how to set one', async (t) => {
  const { app } = await buildTestApp(t);
  const none = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', payload: { data: payment } });
  assertErrorShape(t, none, 401, 'UNAUTHORIZED');
  const wrong = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { authorization: 'Bearer nope' }, payload: { data: payment } });
  assertErrorShape(t, wrong, 401, 'UNAUTHORIZED');
  const basic = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { authorization: 'Basic Zm9vOmJhcg==' }, payload: { data: payment } });
  assertErrorShape(t, basic, 401, 'UNAUTHORIZED');
  const invalidAndUnauthenticated = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', payload: { data: { amount: -1 } } });
  t.equal(invalidAndUnauthenticated.statusCode, 401, 'auth is checked before the schema is revealed');
  const faults = await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', payload: { failureRate: 1 } });
  assertErrorShape(t, faults, 401, 'UNAUTHORIZED');
  t.equal((await app.queues.payments.getJobCounts()).prioritized, 0, 'nothing enqueued');

  const open = await buildTestApp(t, { API_KEYS: '' });
  const refused = await open.app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { authorization: 'Bearer anything', 'idempotency-key': 'k' }, payload: { data: payment } });
  t.match(assertErrorShape(t, refused, 401, 'AUTH_NOT_CONFIGURED').message, /API_KEYS/);
});

t.test('Idempotency-Key: 50 concurrent identical requests create exactly one job', async (t) => {
  const { app, auth } = await buildTestApp(t);
  const headers = { ...auth, 'idempotency-key': 'order-7781-charge' };
  const responses = await Promise.all(
    Array.from({ length: 50 }, () => app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers, payload: { data: payment } })),
  );
  t.same([...new Set(responses.map((r) => r.statusCode))], [202]);
  const ids = new Set(responses.map((r) => r.json().id));
  t.equal(ids.size, 1, 'one job id for every response');
  const counts = await app.queues.payments.getJobCounts();
  t.equal(counts.prioritized, 1, 'one job in the queue');
  const other = await app.inject({ method: 'POST', url: '/v1/queues/notifications/jobs', headers, payload: { data: { channel: 'email', to: 'a@b.c', template: 't' } } });
  t.equal(other.statusCode, 202);
  t.equal((await app.queues.notifications.getJobCounts()).prioritized, 1, 'same key on another queue is another job');
  const bad = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': 'has space' }, payload: { data: payment } });
  assertErrorShape(t, bad, 400, 'VALIDATION_ERROR');
});

t.test('fault settings: stored per queue, merged, validated, listed', async (t) => {
  const { app, adminAuth: auth } = await buildTestApp(t);
  const put = await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', headers: auth, payload: { failureRate: 0.5, latencyMs: 20 } });
  t.equal(put.statusCode, 200);
  t.same(put.json(), { failureRate: 0.5, timeoutRate: 0, rateLimitRate: 0, latencyMs: 20 });
  const merged = await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', headers: auth, payload: { rateLimitRate: 0.1 } });
  t.same(merged.json(), { failureRate: 0.5, timeoutRate: 0, rateLimitRate: 0.1, latencyMs: 20 });
  const all = await app.inject({ method: 'GET', url: '/v1/admin/faults', headers: auth });
  t.same(Object.keys(all.json()), ['payments', 'notifications', 'webhooks']);
  t.equal(all.json().payments.failureRate, 0.5);
  assertErrorShape(t, await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', headers: auth, payload: { failureRate: 2 } }), 400, 'VALIDATION_ERROR');
  assertErrorShape(t, await app.inject({ method: 'PUT', url: '/v1/admin/faults/emails', headers: auth, payload: {} }), 404, 'QUEUE_NOT_FOUND');
});

t.test("the guide's JSON endpoints report counts from Redis", async (t) => {
  const { app, auth } = await buildTestApp(t);
  for (let i = 0; i < 3; i++) {
    await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': `guide-${i}` }, payload: { data: payment } });
  }
  await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': 'guide-delayed' }, payload: { data: payment, delayMs: 60_000 } });
  const one = await app.inject({ method: 'GET', url: '/queue/payments/metrics' });
  t.equal(one.statusCode, 200);
  t.match(one.json(), { success: true, data: { queueName: 'payments', waitingCount: 3, delayedCount: 1, activeCount: 0, completedCount: 0, failedCount: 0, averageLatency: 0, p95Latency: 0, p99Latency: 0, throughput: 0 } });
  t.ok(one.json().data.oldestWaitingAgeSeconds >= 0);
  t.ok(Date.parse(one.json().data.timestamp) > 0);
  const all = await app.inject({ method: 'GET', url: '/queue/metrics' });
  t.same(all.json().data.map((d: { queueName: string }) => d.queueName), ['payments', 'notifications', 'webhooks']);
  const status = await app.inject({ method: 'GET', url: '/queue/status' });
  t.match(status.json(), { success: true, data: { status: 'degraded', totals: { prioritized: 3, delayed: 1 }, queues: { payments: { prioritized: 3, workers: 0, paused: false } } } });
  t.notOk('paused' in status.json().data.totals, 'paused is a queue flag, not a job state');
  t.equal(one.json().data.paused, false);
  assertErrorShape(t, await app.inject({ method: 'GET', url: '/queue/emails/metrics' }), 404, 'QUEUE_NOT_FOUND');
});

t.test('probes: healthz always, readyz when Redis answers with noeviction', async (t) => {
  const { app } = await buildTestApp(t);
  t.same((await app.inject({ method: 'GET', url: '/healthz' })).json(), { status: 'ok' });
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.equal(ready.statusCode, 200);
  t.same(ready.json(), { status: 'ready' });

  const down = await buildTestApp(t, { REDIS_URL: 'redis://127.0.0.1:1' });
  const notReady = await down.app.inject({ method: 'GET', url: '/readyz' });
  assertErrorShape(t, notReady, 503, 'REDIS_UNAVAILABLE');
  const post = await down.app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...down.auth, 'idempotency-key': 'k-down' }, payload: { data: payment } });
  assertErrorShape(t, post, 503, 'REDIS_UNAVAILABLE');
  t.equal(post.headers['retry-after'], '1');
});
