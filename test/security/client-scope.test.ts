/**
 * The client scope (services/api/routes/jobs.ts): every route Fastify serves under /v1/queues — one POST per
 * catalog queue, the unknown-queue fallback, GET of a job — is behind the scope's one onRequest guard, before
 * its body is read, so a client route added without the guard fails here.
 */
import t from 'tap';
import { buildTestApp } from '../helpers/app';
import { routesUnder } from '../helpers/routes';
import { ADMIN_KEY } from '../helpers/services';

t.test('every /v1/queues route refuses no key (401) and an admin key (403) before reading the body', async (t) => {
  const { app } = await buildTestApp(t);
  const routes = routesUnder(app, '/v1/queues/').filter((r) => r.method !== 'HEAD');
  const found = routes.map((r) => `${r.method} ${r.url}`);
  for (const expected of ['POST /v1/queues/payments/jobs', 'POST /v1/queues/:queue/jobs', 'GET /v1/queues/:queue/jobs/:id']) {
    t.ok(found.includes(expected), `${expected} is among the ${routes.length} client routes`);
  }
  for (const { method, url } of routes) {
    const withBody = method !== 'GET';
    const send = (authorization?: string) =>
      app.inject({
        method: method as 'GET' | 'POST',
        url: url.replace(':queue', 'notifications').replace(':id', '1'),
        headers: { ...(authorization ? { authorization } : {}), ...(withBody ? { 'content-type': 'application/json' } : {}) },
        // Broken JSON: parsing it would answer 400, so a 401/403 proves the guard ran first.
        ...(withBody ? { payload: '{"data":' } : {}),
      });
    const anonymous = await send();
    t.equal(anonymous.statusCode, 401, `${method} ${url} without a key: 401`);
    t.equal(anonymous.json().code, 'UNAUTHORIZED');
    const admin = await send(`Bearer ${ADMIN_KEY}`);
    t.equal(admin.statusCode, 403, `${method} ${url} with an admin key: 403`);
    t.equal(admin.json().code, 'FORBIDDEN');
  }
});
