/**
 * The console's guard, route by route: every route bull-board registers under /admin/queues (page, JSON API,
 * static assets) answers 401 + the Basic challenge without credentials and 403 to a client key; admin keys get
 * in by Bearer or Basic; changes must come from the console's origin; actions that would bypass the API's
 * guarantees are refused; changes are audited. Nothing of the console answers outside /admin/queues.
 */
import t from 'tap';
import { buildTestApp } from '../helpers/app';
import { captureLogs } from '../helpers/log-capture';
import { routesUnder } from '../helpers/routes';
import { ADMIN_KEY, API_KEY } from '../helpers/services';

const basic = (user: string, password: string) => ({ authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const SAMPLE: Record<string, string> = { queueName: 'payments', jobId: 'no-such-job', queueStatus: 'failed', schedulerId: 'none' };

const concrete = (url: string) =>
  url.replace(/:(\w+)/g, (_, name: string) => SAMPLE[name] ?? 'x').replace(/\*$/, 'static/js/main.js');

t.test('every console route: 401 + Basic challenge without credentials, 403 with a client key', async (t) => {
  // Dozens of wrong passwords from one address on purpose: the failed-auth limiter (429) is tested elsewhere.
  const { app } = await buildTestApp(t, { API_AUTH_FAILURE_LIMIT_MAX: '0' });
  const routes = routesUnder(app, '/admin/queues');
  t.ok(routes.length >= 40, `${routes.length} routes found under /admin/queues (page, API, static)`);
  t.ok(routes.some((r) => r.url.endsWith('*')), 'the static assets route is among them');
  for (const { method, url } of routes) {
    const target = concrete(url);
    const none = await app.inject({ method: method as 'GET', url: target });
    t.equal(none.statusCode, 401, `${method} ${url}: no credentials → 401`);
    t.equal(none.headers['www-authenticate'], 'Basic realm="bullmq-console"', `${method} ${url}: Basic challenge`);
    t.notMatch(none.body, /<html|bull-board/i, `${method} ${url}: nothing of the console leaks`);
    const client = await app.inject({ method: method as 'GET', url: target, headers: { authorization: `Bearer ${API_KEY}` } });
    t.equal(client.statusCode, 403, `${method} ${url}: client key → 403`);
    if (method !== 'HEAD') t.equal(client.json().code, 'FORBIDDEN');
    const wrong = await app.inject({ method: method as 'GET', url: target, headers: basic('admin', 'not-the-key') });
    t.equal(wrong.statusCode, 401, `${method} ${url}: wrong password → 401`);
  }
});

t.test('admin keys get in by Bearer or Basic admin:<key>; static assets are served by the same plugin', async (t) => {
  const { app, adminAuth } = await buildTestApp(t);
  for (const headers of [adminAuth, basic('admin', ADMIN_KEY)]) {
    const page = await app.inject({ url: '/admin/queues', headers });
    t.equal(page.statusCode, 200);
    t.match(page.headers['content-type'], /text\/html/);
    const script = /<script[^>]* src="(static\/js\/[^"]+\.js)"/.exec(page.body)?.[1];
    t.ok(script, 'the page loads its scripts from static/ (relative to /admin/queues/)');
    const asset = `/admin/queues/${script}`;
    const js = await app.inject({ url: asset, headers });
    t.equal(js.statusCode, 200, `${asset} served`);
    t.equal((await app.inject({ url: asset })).statusCode, 401, 'the same asset without credentials: 401');
    const api = await app.inject({ url: '/admin/queues/api/queues', headers });
    t.equal(api.statusCode, 200);
    t.same(api.json().queues.map((q: { name: string }) => q.name).sort(), ['notifications', 'payments', 'webhooks'], 'every catalog queue');
  }
  t.equal((await app.inject({ url: '/admin/queues', headers: basic('root', ADMIN_KEY) })).statusCode, 401, 'user must be "admin"');
  for (const url of ['/admin', '/admin/queue', '/admin/queuesx', '/static/js/main.js', '/api/queues']) {
    t.equal((await app.inject({ url, headers: adminAuth })).statusCode, 404, `${url}: not the console`);
  }
});

t.test('changes: same origin only, API-bypassing actions refused, every change audited', async (t) => {
  const { logger, lines } = captureLogs();
  const { app, adminAuth } = await buildTestApp(t, {}, { logger });
  const headers = { ...basic('admin', ADMIN_KEY), host: 'console.example:3000' };

  const crossSite = await app.inject({ method: 'PUT', url: '/admin/queues/api/queues/payments/pause', headers: { ...headers, origin: 'https://evil.example' } });
  t.equal(crossSite.statusCode, 403);
  t.equal(crossSite.json().code, 'CROSS_SITE_REQUEST');
  const fetchSite = await app.inject({ method: 'PUT', url: '/admin/queues/api/queues/payments/pause', headers: { ...headers, 'sec-fetch-site': 'cross-site' } });
  t.equal(fetchSite.json().code, 'CROSS_SITE_REQUEST');
  t.equal(await app.queues.payments.isPaused(), false, 'nothing changed');

  const sameOrigin = await app.inject({
    method: 'PUT', url: '/admin/queues/api/queues/payments/pause', headers: { ...headers, origin: 'http://console.example:3000', 'sec-fetch-site': 'same-origin' },
  });
  t.equal(sameOrigin.statusCode, 200, 'from the console page itself');
  t.equal(await app.queues.payments.isPaused(), true);
  t.equal((await app.inject({ method: 'PUT', url: '/admin/queues/api/queues/payments/resume', headers: adminAuth })).statusCode, 200, 'no Origin (curl, Bearer): allowed');
  t.equal(await app.queues.payments.isPaused(), false);

  const refused = [
    ['POST', '/admin/queues/api/queues/payments/add', { name: 'payments', data: { amount: 1 } }],
    ['PATCH', '/admin/queues/api/queues/payments/some-job/update-data', { data: {} }],
    ['PUT', '/admin/queues/api/queues/payments/empty', undefined],
    ['PUT', '/admin/queues/api/queues/payments/obliterate', undefined],
  ] as const;
  for (const [method, url, payload] of refused) {
    const res = await app.inject({ method, url, headers: adminAuth, ...(payload ? { payload } : {}) });
    t.equal(res.statusCode, 403, `${method} ${url} refused`);
    t.equal(res.json().code, 'CONSOLE_ACTION_REFUSED');
  }
  t.equal(await app.queues.payments.count(), 0, 'no job added');

  const audit = lines.filter((l) => l.audit === true && l.action === 'console_change');
  t.equal(audit.length, 2, 'pause and resume audited, refusals not counted as changes');
  t.ok(audit.every((l) => typeof l.keyId === 'string'), 'with the admin key id');
});
