/**
 * The API side of the trust review, one test per finding: idempotency bound to the request and scoped per
 * client, replays not counted as new jobs, exact amounts and ISO 4217 currencies, JSON depth, header-safe webhook
 * events and worker-parseable, public webhook URLs, Redis out of memory, Node-level client errors in the error
 * shape, and the guide's anonymous endpoints costing Redis at most once per second. (The admin plane, 401 before
 * 404 and the failed-auth limit are in admin-plane.test.ts; the frozen-Redis retry in fault/frozen-payments.)
 */
import t, { type Test } from 'tap';
import net from 'node:net';
import { Redis } from 'ioredis';
import { buildTestApp } from '../helpers/app';
import { captureLogs } from '../helpers/log-capture';
import { startRedisServer } from '../helpers/redis';
import { API_KEY } from '../helpers/services';
import { parseMetrics, valueOf } from '../helpers/http';

const payment = { amount: 1250, currency: 'EUR', account: 'acct_42', reference: 'inv-42' };
const OTHER_KEY = 'other-client-key-0123456789';

function expectError(t: Test, res: { statusCode: number; json(): any }, status: number, code: string) {
  t.equal(res.statusCode, status, `status ${status} ${code}`);
  const body = res.json();
  t.equal(body.code, code);
  t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], 'error shape');
  return body;
}
const enqueued = async (registry: { metrics(): Promise<string> }, queue: string) =>
  valueOf(parseMetrics(await registry.metrics()), 'bullmq_jobs_enqueued_total', { queue });

t.test('payments require an Idempotency-Key: 400 IDEMPOTENCY_KEY_REQUIRED, nothing stored', async (t) => {
  const { app, auth } = await buildTestApp(t);
  const res = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: auth, payload: { data: payment } });
  t.match(expectError(t, res, 400, 'IDEMPOTENCY_KEY_REQUIRED').message, /Idempotency-Key/);
  const invalidToo = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: auth, payload: { data: { amount: 'x' } } });
  expectError(t, invalidToo, 400, 'IDEMPOTENCY_KEY_REQUIRED');
  const notification = await app.inject({ method: 'POST', url: '/v1/queues/notifications/jobs', headers: auth, payload: { data: { channel: 'sms', to: '+33', template: 't' } } });
  t.equal(notification.statusCode, 202, 'other queues: the key stays optional');
  t.equal((await app.queues.payments.getJobCounts()).prioritized, 0);
});

t.test('same key, same request → 202 replay (same id, Idempotent-Replayed, not counted); different request → 422, nothing stored', async (t) => {
  const { app, auth, registry } = await buildTestApp(t);
  const headers = { ...auth, 'idempotency-key': 'order-1' };
  const post = (body: object, h: Record<string, string> = headers) => app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: h, payload: body });

  const first = await post({ data: payment });
  t.equal(first.statusCode, 202);
  t.notOk(first.headers['idempotent-replayed']);
  const replay = await post({ data: { reference: 'inv-42', account: 'acct_42', currency: 'EUR', amount: 1250 }, priority: 'normal', delayMs: 0 });
  t.equal(replay.statusCode, 202, 'same request (other key order, defaults spelled out) → 202');
  t.equal(replay.json().id, first.json().id, 'same id');
  t.equal(replay.headers['idempotent-replayed'], 'true', 'Idempotent-Replayed: true');
  t.equal(replay.headers.location, first.headers.location);
  t.equal(await enqueued(registry, 'payments'), 1, 'bullmq_jobs_enqueued_total counts the job once');

  const changes: [string, object][] = [
    ['amount', { data: { ...payment, amount: 999_999 } }],
    ['account', { data: { ...payment, account: 'acct_attacker' } }],
    ['priority', { data: payment, priority: 'critical' }],
    ['delayMs', { data: payment, delayMs: 5_000 }],
  ];
  for (const [what, body] of changes) {
    const res = await post(body);
    t.match(expectError(t, res, 422, 'IDEMPOTENCY_KEY_REUSED').message, /different request/, `changed ${what} → 422`);
  }
  const counts = await app.queues.payments.getJobCounts();
  t.equal((counts.prioritized ?? 0) + (counts.delayed ?? 0), 1, 'still one job');
  const job = await app.queues.payments.getJob(first.json().id);
  t.same(job?.data.payload, payment, 'the stored job is the first request, untouched');
  t.equal(await enqueued(registry, 'payments'), 1, 'no 422 or replay counted');
  t.match(job?.data.meta, { idempotencyKey: 'order-1', clientId: /^[0-9a-f]{16}$/ }, 'job meta carries the key and the client key id');
  t.notOk(JSON.stringify(job?.data).includes(API_KEY), 'never the client key itself');
});

t.test('Idempotency-Keys are scoped per client key: same key from two clients → two jobs', async (t) => {
  const { app } = await buildTestApp(t, { API_KEYS: `${API_KEY},${OTHER_KEY}` });
  const as = (key: string, body: object) =>
    app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { authorization: `Bearer ${key}`, 'idempotency-key': 'shared-key' }, payload: body });
  const a = await as(API_KEY, { data: payment });
  const b = await as(OTHER_KEY, { data: { ...payment, amount: 77 } });
  t.equal(a.statusCode, 202);
  t.equal(b.statusCode, 202, 'the other client is not told the key is taken (no 422, no replay)');
  t.not(a.json().id, b.json().id, 'two different jobs');
  t.notOk(b.headers['idempotent-replayed']);
  const [ja, jb] = await Promise.all([app.queues.payments.getJob(a.json().id), app.queues.payments.getJob(b.json().id)]);
  t.not(ja?.data.meta.clientId, jb?.data.meta.clientId, 'different client ids');
  t.equal(jb?.data.payload.amount, 77, 'each client gets its own request stored');
});

t.test('50 concurrent identical requests: 1 job, 49 replays, never a 422; counter +1', async (t) => {
  const { app, auth, registry } = await buildTestApp(t);
  const headers = { ...auth, 'idempotency-key': 'burst-1' };
  const responses = await Promise.all(
    Array.from({ length: 50 }, () => app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers, payload: { data: payment } })),
  );
  t.same([...new Set(responses.map((r) => r.statusCode))], [202], 'all 202');
  t.equal(new Set(responses.map((r) => r.json().id)).size, 1, 'one id');
  t.equal(responses.filter((r) => r.headers['idempotent-replayed'] === 'true').length, 49, '49 marked as replays');
  t.equal((await app.queues.payments.getJobCounts()).prioritized, 1, 'one job');
  t.equal(await enqueued(registry, 'payments'), 1, 'bullmq_jobs_enqueued_total +1');
});

t.test('amount: an integer 1 … 1e12 minor units; currency: ISO 4217', async (t) => {
  const { app, auth } = await buildTestApp(t);
  let n = 0;
  const post = (data: object) =>
    app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': `amount-${n++}` }, payload: { data } });
  const raw = (text: string) =>
    app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': `raw-${n++}`, 'content-type': 'application/json' }, payload: text });
  const body = (amount: string) => `{"data":{"amount":${amount},"currency":"EUR","account":"a"}}`;
  for (const amount of ['9007199254740993', '1e308', '1e400', '1000000000001', '0', '-5', '1.5']) {
    const res = await raw(body(amount));
    t.match(expectError(t, res, 400, 'VALIDATION_ERROR').message, /body\.data\.amount/, `amount ${amount} → 400 naming the field`);
  }
  t.equal((await raw(body('1000000000000'))).statusCode, 202, 'amount 1e12 accepted');
  t.equal((await raw(body('1'))).statusCode, 202, 'amount 1 accepted');
  for (const currency of ['ABC', 'XTS', 'XXX', 'eur', 'EURO']) {
    expectError(t, await post({ ...payment, currency }), 400, 'VALIDATION_ERROR');
  }
  for (const currency of ['EUR', 'USD', 'JPY', 'CHF']) t.equal((await post({ ...payment, currency })).statusCode, 202, `${currency} accepted`);
  const stored = await app.queues.payments.getJobs(['prioritized']);
  t.ok(stored.every((j) => Number.isSafeInteger(j.data.payload.amount) && j.data.payload.amount <= 1e12), 'every stored amount is exact');
});

t.test('JSON nested deeper than 32 levels → 400 VALIDATION_ERROR, never 500, nothing logged as an error', async (t) => {
  const { logger, lines } = captureLogs();
  const { app, auth } = await buildTestApp(t, {}, { logger });
  const nested = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;
  const post = (variables: string) =>
    app.inject({
      method: 'POST',
      url: '/v1/queues/notifications/jobs',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: `{"data":{"channel":"email","to":"a@b.c","template":"t","variables":${variables}}}`,
    });
  const deep = await post(nested(4_500));
  t.match(expectError(t, deep, 400, 'VALIDATION_ERROR').message, /nested deeper than 32/);
  expectError(t, await post(nested(31)), 400, 'VALIDATION_ERROR'); // 31 + the body and data objects = 33
  t.equal((await post(nested(30))).statusCode, 202, '32 levels in all: accepted');
  const arrays = await post(`{"x":${'['.repeat(40)}${']'.repeat(40)}}`);
  expectError(t, arrays, 400, 'VALIDATION_ERROR');
  const inString = await post(`{"s":"${'{['.repeat(100)}"}`);
  t.equal(inString.statusCode, 202, 'brackets inside strings are not nesting');
  t.same(lines.filter((l) => Number(l.level) >= 50), [], 'no error logged');
});

t.test('webhooks: event is an RFC 9110 token; url parsed and checked with the worker\'s rules; payload numbers exact', async (t) => {
  const { app, auth } = await buildTestApp(t);
  const post = (data: object, text?: string) =>
    app.inject({ method: 'POST', url: '/v1/queues/webhooks/jobs', headers: { ...auth, 'content-type': 'application/json' }, payload: text ?? JSON.stringify({ data }) });
  const hook = { url: 'https://example.com/hook', event: 'invoice.paid', payload: { id: 1 } };
  t.equal((await post(hook)).statusCode, 202, 'a good webhook is accepted');
  for (const event of ['invoice\r\nx-injected: 1', 'a b', 'ev"ent', 'é', 'x'.repeat(101), '']) {
    expectError(t, await post({ ...hook, event }), 400, 'VALIDATION_ERROR');
  }
  t.equal((await post({ ...hook, event: "a-b_c.d!#$%&'*+^`|~9" })).statusCode, 202, 'every tchar accepted');
  const refused = [
    'http://[::127.0.0.1]/', 'http://[::ffff:127.0.0.1]/', 'http://[64:ff9b::a00:1]/', 'http://[2002:a00:1::]/', 'http://[::1]/',
    'http://127.0.0.1:9/x', 'http://0x7f.1/', 'http://10.1.2.3/', 'http://169.254.169.254/latest/meta-data', 'http://localhost/',
    'http://exa mple.com/', 'http://[::1/', 'https://user:pw@example.com/',
  ];
  for (const url of refused) {
    const res = await post({ ...hook, url });
    t.match(expectError(t, res, 400, 'VALIDATION_ERROR').message, /body\.data\.url/, `${url} → 400`);
  }
  t.equal((await post({ ...hook, url: 'http://[64:ff9b::808:808]/' })).statusCode, 202, 'NAT64 form of a public address accepted');
  for (const n of ['9007199254740993', '1e308', '-1e400']) {
    const res = await post(hook, `{"data":{"url":"https://example.com/h","event":"e","payload":{"n":${n}}}}`);
    t.match(expectError(t, res, 400, 'VALIDATION_ERROR').message, /body\.data\.payload\.n/, `payload number ${n} → 400`);
  }
  t.equal((await post({ ...hook, payload: { n: 0.1, big: 9007199254740991 } })).statusCode, 202, 'exact numbers accepted');
  t.equal((await app.queues.webhooks.getJobCounts()).prioritized, 4, 'only the 4 good webhooks stored');

  const open = await buildTestApp(t, { WEBHOOK_ALLOW_PRIVATE: 'true' });
  const local = await open.app.inject({ method: 'POST', url: '/v1/queues/webhooks/jobs', headers: open.auth, payload: { data: { ...hook, url: 'http://127.0.0.1:9/x' } } });
  t.equal(local.statusCode, 202, 'WEBHOOK_ALLOW_PRIVATE=true: private targets accepted');
  const broken = await open.app.inject({ method: 'POST', url: '/v1/queues/webhooks/jobs', headers: open.auth, payload: { data: { ...hook, url: 'http://exa mple.com/' } } });
  expectError(t, broken, 400, 'VALIDATION_ERROR');
});

t.test('Redis out of memory → 503 REDIS_FULL with Retry-After; /readyz 503 naming memory; nothing half-stored', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  const { app, auth } = await buildTestApp(t, { REDIS_URL: redis.url });
  const admin = new Redis(redis.url);
  t.teardown(() => admin.disconnect());
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200);

  await admin.config('SET', 'maxmemory', '1'); // below what is used: every write is refused (noeviction)
  const res = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': 'oom-1' }, payload: { data: payment } });
  t.match(expectError(t, res, 503, 'REDIS_FULL').message, /maxmemory/);
  t.equal(res.headers['retry-after'], '5', 'Retry-After');
  const ready = await app.inject({ method: 'GET', url: '/readyz' });
  t.match(expectError(t, ready, 503, 'REDIS_FULL').message, /out of memory.*used_memory .*maxmemory/);
  t.ok(ready.headers['retry-after']);

  await admin.config('SET', 'maxmemory', '0');
  t.equal((await app.inject({ method: 'GET', url: '/readyz' })).statusCode, 200, 'ready again once memory is freed');
  const retry = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...auth, 'idempotency-key': 'oom-1' }, payload: { data: payment } });
  t.equal(retry.statusCode, 202, 'the retry with the same key is accepted');
  t.notOk(retry.headers['idempotent-replayed'], 'as a new job: the refused request stored nothing');
});

/** Sends raw bytes on a fresh connection; resolves with the raw response once the server closes it. */
function rawExchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let raw = '';
    sock.on('data', (c: Buffer) => (raw += c.toString()));
    sock.on('error', () => undefined);
    sock.on('close', () => resolve(raw));
    sock.setTimeout(10_000, () => sock.destroy());
    sock.write(bytes);
  });
}

t.test('Node-level client errors (400, 408, 414, 431) carry the documented error shape', async (t) => {
  const { app } = await buildTestApp(t, { API_REQUEST_TIMEOUT_MS: '500' });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const port = (app.server.address() as net.AddressInfo).port;
  const cases: [string, string, number, string][] = [
    ['garbage request line', 'NOT HTTP AT ALL\r\n\r\n', 400, 'BAD_REQUEST'],
    ['URL past the header limit', `GET /${'a'.repeat(20_000)} HTTP/1.1\r\nhost: x\r\n\r\n`, 414, 'URI_TOO_LONG'],
    ['headers past the limit', `GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ${'b'.repeat(20_000)}\r\n\r\n`, 431, 'HEADERS_TOO_LARGE'],
    ['request never finished', 'GET /healthz HTTP/1.1\r\nhost: x\r\n', 408, 'REQUEST_TIMEOUT'],
  ];
  for (const [what, bytes, status, code] of cases) {
    const raw = await rawExchange(port, bytes);
    t.match(raw, new RegExp(`^HTTP/1\\.1 ${status} `), `${what} → ${status}`);
    const body = JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4));
    t.same(Object.keys(body).sort(), ['code', 'error', 'message', 'statusCode'], `${what}: error shape`);
    t.match(body, { statusCode: status, code });
  }
});

t.test('the guide endpoints read Redis at most once per second, whatever the call rate', async (t) => {
  const redis = await startRedisServer();
  t.teardown(() => redis.stop());
  // No per-key limiter here: its own Redis calls would blur the count.
  const { app } = await buildTestApp(t, { REDIS_URL: redis.url, API_RATE_LIMIT_MAX: '0' });
  const probe = new Redis(redis.url);
  t.teardown(() => probe.disconnect());
  const commands = async () => Number(/total_commands_processed:(\d+)/.exec(await probe.info('stats'))![1]);

  const before = await commands();
  t.equal((await app.inject({ method: 'GET', url: '/queue/metrics' })).statusCode, 200);
  const perSnapshot = (await commands()) - before - 1; // minus the INFO itself
  const started = Date.now();
  const from = await commands();
  const urls = ['/queue/metrics', '/queue/status', '/queue/payments/metrics'];
  let calls = 0;
  while (Date.now() - started < 2_500) {
    const batch = await Promise.all(Array.from({ length: 30 }, (_, i) => app.inject({ method: 'GET', url: urls[i % 3]! })));
    const failed = batch.filter((r) => r.statusCode !== 200);
    if (failed.length) t.fail(`a call failed: ${failed[0]!.statusCode} ${failed[0]!.body}`);
    calls += batch.length;
  }
  const elapsedS = (Date.now() - started) / 1000;
  const used = (await commands()) - from - 1;
  const snapshots = used / perSnapshot;
  t.ok(snapshots <= Math.ceil(elapsedS) + 1, `${calls} calls in ${elapsedS.toFixed(1)} s cost ${used} Redis commands ≈ ${snapshots.toFixed(1)} snapshots of ${perSnapshot} (≤ ${Math.ceil(elapsedS) + 1})`);
  t.ok(calls > 10 * (Math.ceil(elapsedS) + 1), 'far more calls than snapshots');
  t.comment(`${calls} anonymous calls in ${elapsedS.toFixed(1)} s → ${used} Redis commands (one snapshot = ${perSnapshot}); uncached they would cost ~${calls * Math.round(perSnapshot / 3)}+`);
});
