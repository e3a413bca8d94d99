/**
 * The failed-auth limit (services/api/failed-auth.ts) never refuses a valid key, and it counts the client, not the
 * proxy: TRUST_PROXY (services/common/config/api.ts) names the hops that may tell the client address in
 * X-Forwarded-For; without it the socket address counts and the header is ignored.
 */
import t, { type Test } from 'tap';
import { buildTestApp } from '../helpers/app';
import { captureLogs } from '../helpers/log-capture';
import { ADMIN_KEY, API_KEY, baseEnv, startApi } from '../helpers/services';
import { SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { parseMetrics, valueOf } from '../helpers/http';

const PROXY = '10.0.0.5';
const notification = { data: { channel: 'sms', to: '+33', template: 't' } };

function expectError(t: Test, res: { statusCode: number; json(): any }, status: number, code: string) {
  t.equal(res.statusCode, status, `status ${status} ${code}`);
  t.equal(res.json().code, code);
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'], 'error shape');
  return res.json();
}

t.test('behind a trusted proxy: 30 wrong keys lock out only that client\'s wrong keys; valid keys are served', async (t) => {
  const { logger, lines } = captureLogs();
  const { app, registry } = await buildTestApp(t, { TRUST_PROXY: PROXY }, { logger });
  // Every request arrives from the proxy's socket; the client is the X-Forwarded-For entry the proxy appended.
  const via = (client: string, key: string) =>
    app.inject({
      method: 'POST', url: '/v1/queues/notifications/jobs', remoteAddress: PROXY,
      headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': client }, payload: notification,
    });
  const statuses: number[] = [];
  let last: Awaited<ReturnType<typeof via>> | undefined;
  for (let i = 0; i < 30; i++) {
    last = await via('203.0.113.9', `guess-${i}`);
    statuses.push(last.statusCode);
  }
  t.same(statuses, [...Array(10).fill(401), ...Array(20).fill(429)], 'the default limit: 10 wrong keys → 401, the next 20 → 429');
  const body = expectError(t, last!, 429, 'AUTH_RATE_LIMITED');
  t.match(body.message, /wrong keys/);
  t.ok(Number(last!.headers['retry-after']) > 0 && Number(last!.headers['retry-after']) <= 60, `Retry-After ${last!.headers['retry-after']}`);

  t.equal((await via('203.0.113.10', API_KEY)).statusCode, 202, 'another client behind the same proxy: its valid key → 202');
  expectError(t, await via('203.0.113.10', 'a-typo'), 401, 'UNAUTHORIZED');
  t.equal((await via('203.0.113.9', API_KEY)).statusCode, 202, 'the locked-out client itself: its valid key → 202');
  const admin = await app.inject({
    method: 'PUT', url: '/v1/admin/faults/payments', remoteAddress: PROXY,
    headers: { authorization: `Bearer ${ADMIN_KEY}`, 'x-forwarded-for': '203.0.113.9' }, payload: { failureRate: 0 },
  });
  t.equal(admin.statusCode, 200, 'and an admin key from that client reaches the admin plane');
  expectError(t, await via('203.0.113.9', 'guess-again'), 429, 'AUTH_RATE_LIMITED');

  const samples = parseMetrics(await registry.metrics());
  t.equal(valueOf(samples, 'api_requests_rejected_total', { reason: 'auth_rate_limited' }), 21, 'each 429 counted');
  t.equal((await app.queues.notifications.getJobCounts()).prioritized, 2, 'both valid requests enqueued');
  const limited = lines.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('client address over the failed-auth limit'));
  t.equal(limited.length, 1, 'one log line when the address crossed the limit, not one per guess');
  t.equal(limited[0]?.clientAddress, '203.0.113.9', 'the log names the client address, not the proxy');
  const audit = lines.find((l) => l.audit === true && l.action === 'faults_update');
  t.equal(audit?.clientAddress, '203.0.113.9', 'the admin audit line names the client address');
});

t.test('a hop count trusts that many proxies: the address before them counts', async (t) => {
  const { app } = await buildTestApp(t, { TRUST_PROXY: '1', API_AUTH_FAILURE_LIMIT_MAX: '2' });
  // The client forged the first entry; the one proxy appended the real client address last.
  const via = (client: string, key: string) =>
    app.inject({
      method: 'POST', url: '/v1/queues/notifications/jobs', remoteAddress: PROXY,
      headers: { authorization: `Bearer ${key}`, 'x-forwarded-for': `192.0.2.${Math.floor(Math.random() * 250)}, ${client}` }, payload: notification,
    });
  const statuses = [];
  for (let i = 0; i < 4; i++) statuses.push((await via('203.0.113.20', `guess-${i}`)).statusCode);
  t.same(statuses, [401, 401, 429, 429], 'a forged leading entry buys no fresh budget');
  t.equal((await via('203.0.113.21', `guess-x`)).statusCode, 401, 'another client has its own budget');
});

t.test('without TRUST_PROXY: X-Forwarded-For is ignored, rotating it gives no fresh budget', async (t) => {
  const { app } = await buildTestApp(t, { API_AUTH_FAILURE_LIMIT_MAX: '3' });
  const statuses = [];
  for (let i = 0; i < 8; i++) {
    const res = await app.inject({
      method: 'POST', url: '/v1/queues/notifications/jobs', remoteAddress: '198.51.100.7',
      headers: { authorization: `Bearer guess-${i}`, 'x-forwarded-for': `203.0.113.${100 + i}` }, payload: notification,
    });
    statuses.push(res.statusCode);
  }
  t.same(statuses, [401, 401, 401, 429, 429, 429, 429, 429], 'counted against the socket address');
  const valid = await app.inject({
    method: 'POST', url: '/v1/queues/notifications/jobs', remoteAddress: '198.51.100.7',
    headers: { authorization: `Bearer ${API_KEY}` }, payload: notification,
  });
  t.equal(valid.statusCode, 202, 'a valid key from that address is still served');
});

t.test('a bad TRUST_PROXY stops the API at boot (exit 1) naming the variable', async (t) => {
  const env = baseEnv(SHARED_REDIS_URL, uniquePrefix('trust-proxy'), { TRUST_PROXY: '10.0.0.0/33' });
  const err = await startApi(env).then(() => undefined, (e: Error) => e);
  t.match(err?.message, /^api exited \(1\)/, 'api exits 1');
  t.match(err?.message, /TRUST_PROXY/, 'the message names TRUST_PROXY');
});
