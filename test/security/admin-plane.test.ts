/**
 * The admin plane (services/api/routes/admin, plugins/app/auth.ts): only admin keys reach /v1/admin/*, client
 * keys are refused there with 403, admin keys are refused on client routes, fault injection is off unless
 * FAULTS_ENABLED=true, and every change is audited (log line with the key id, api_admin_actions_total).
 * Also: unknown queues answer 401 before 404. (The failed-auth limit per client address: failed-auth.test.ts.)
 */
import t, { type Test } from 'tap';
import { buildTestApp } from '../helpers/app';
import { captureLogs } from '../helpers/log-capture';
import { ADMIN_KEY, API_KEY } from '../helpers/services';
import { parseMetrics, valueOf } from '../helpers/http';

const payment = { amount: 1250, currency: 'EUR', account: 'acct_42' };

function expectError(t: Test, res: { statusCode: number; json(): any }, status: number, code: string) {
  t.equal(res.statusCode, status, `status ${status} ${code}`);
  t.equal(res.json().code, code);
  t.same(Object.keys(res.json()).sort(), ['code', 'error', 'message', 'statusCode'], 'error shape');
  return res.json();
}

const adminActions = async (registry: { metrics(): Promise<string> }) =>
  valueOf(parseMetrics(await registry.metrics()), 'api_admin_actions_total', { action: 'faults_update' });

t.test('a client key cannot touch the admin plane (403 FORBIDDEN); no key → 401; nothing stored', async (t) => {
  const { app, auth, registry } = await buildTestApp(t);
  const before = await app.faultStore.getAll(['payments']);
  const none = await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', payload: { failureRate: 1 } });
  expectError(t, none, 401, 'UNAUTHORIZED');
  t.match(none.headers['www-authenticate'], /Basic realm="admin"/, 'challenge names Basic for the console');
  expectError(t, await app.inject({ method: 'GET', url: '/v1/admin/faults' }), 401, 'UNAUTHORIZED');
  for (const payload of [{ failureRate: 1 }, { rateLimitRate: 1 }, { failureRate: 7 }]) {
    const res = await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', headers: auth, payload });
    expectError(t, res, 403, 'FORBIDDEN');
  }
  expectError(t, await app.inject({ method: 'GET', url: '/v1/admin/faults', headers: auth }), 403, 'FORBIDDEN');
  expectError(t, await app.inject({ method: 'PUT', url: '/v1/admin/faults/nosuch', headers: auth, payload: {} }), 403, 'FORBIDDEN');
  const wrong = await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', headers: { authorization: 'Bearer not-a-key' }, payload: {} });
  expectError(t, wrong, 401, 'UNAUTHORIZED');
  t.same(await app.faultStore.getAll(['payments']), before, 'fault settings unchanged');
  t.equal(await adminActions(registry), 0, 'no admin action counted');
});

t.test('admin keys: Bearer or Basic admin:<key> reach the admin plane; they are not client keys', async (t) => {
  const { logger, lines } = captureLogs();
  const { app, adminAuth, registry } = await buildTestApp(t, {}, { logger });

  const put = await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', headers: adminAuth, payload: { failureRate: 0.25 } });
  t.equal(put.statusCode, 200);
  t.equal(put.json().failureRate, 0.25);
  const basic = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}` };
  const viaBasic = await app.inject({ method: 'PUT', url: '/v1/admin/faults/webhooks', headers: basic, payload: { latencyMs: 5 } });
  t.equal(viaBasic.statusCode, 200, 'Basic admin:<admin key> accepted');
  const otherUser = { authorization: `Basic ${Buffer.from(`root:${ADMIN_KEY}`).toString('base64')}` };
  expectError(t, await app.inject({ method: 'GET', url: '/v1/admin/faults', headers: otherUser }), 401, 'UNAUTHORIZED');
  t.equal((await app.inject({ method: 'GET', url: '/v1/admin/faults', headers: adminAuth })).json().payments.failureRate, 0.25);

  t.equal(await adminActions(registry), 2, 'two changes counted in api_admin_actions_total{action="faults_update"}');
  const audit = lines.filter((l) => l.audit === true);
  t.equal(audit.length, 2, 'one audit line per change');
  t.match(audit[0], { action: 'faults_update', queue: 'payments', keyId: /^[0-9a-f]{16}$/ });
  t.notOk(JSON.stringify(lines).includes(ADMIN_KEY), 'the admin key itself is never logged');

  const asClient = await app.inject({ method: 'POST', url: '/v1/queues/payments/jobs', headers: { ...adminAuth, 'idempotency-key': 'k-1' }, payload: { data: payment } });
  expectError(t, asClient, 403, 'FORBIDDEN');
  t.equal((await app.queues.payments.getJobCounts()).prioritized, 0, 'an admin key enqueues nothing');
});

t.test('FAULTS_ENABLED=false: PUT /v1/admin/faults/:queue → 403 FAULTS_DISABLED, nothing stored', async (t) => {
  const { app, adminAuth, registry } = await buildTestApp(t, { FAULTS_ENABLED: 'false' });
  const res = await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', headers: adminAuth, payload: { failureRate: 1 } });
  expectError(t, res, 403, 'FAULTS_DISABLED');
  const invalid = await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', headers: adminAuth, payload: '{not json', });
  expectError(t, invalid, 403, 'FAULTS_DISABLED');
  const client = await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', headers: { authorization: `Bearer ${API_KEY}` }, payload: { failureRate: 1 } });
  expectError(t, client, 403, 'FORBIDDEN');
  const all = await app.inject({ method: 'GET', url: '/v1/admin/faults', headers: adminAuth });
  t.equal(all.statusCode, 200, 'reading the (inert) settings stays allowed');
  t.equal(all.json().payments.failureRate, 0, 'nothing stored');
  t.equal(await adminActions(registry), 0);
});

t.test('no ADMIN_API_KEYS: admin routes say how to configure one; client keys are still 403', async (t) => {
  const { app, auth } = await buildTestApp(t, { ADMIN_API_KEYS: '' });
  t.match(expectError(t, await app.inject({ method: 'GET', url: '/v1/admin/faults' }), 401, 'AUTH_NOT_CONFIGURED').message, /ADMIN_API_KEYS/);
  expectError(t, await app.inject({ method: 'PUT', url: '/v1/admin/faults/payments', headers: auth, payload: { failureRate: 1 } }), 403, 'FORBIDDEN');
  expectError(t, await app.inject({ method: 'GET', url: '/v1/admin/faults', headers: { authorization: 'Bearer guess' } }), 401, 'AUTH_NOT_CONFIGURED');
});

t.test('unknown queue: 401 without a key, 404 with one', async (t) => {
  const { app, auth } = await buildTestApp(t);
  const anonymous = await app.inject({ method: 'POST', url: '/v1/queues/nosuch/jobs', payload: { data: {} } });
  const body = expectError(t, anonymous, 401, 'UNAUTHORIZED');
  t.notMatch(body.message, /payments/, 'the queue list is not revealed');
  expectError(t, await app.inject({ method: 'POST', url: '/v1/queues/nosuch/jobs', headers: auth, payload: { data: {} } }), 404, 'QUEUE_NOT_FOUND');
  expectError(t, await app.inject({ method: 'GET', url: '/v1/queues/nosuch/jobs/1' }), 401, 'UNAUTHORIZED');
});

