/**
 * Failures grouped by cause and their replay, against real Redis and real worker processes:
 * GET /v1/admin/queues/:queue/failures and POST /v1/admin/queues/:queue/failures/retry.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { propagation } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { startPipeline } from '../helpers/pipeline';
import { captureLogs } from '../helpers/log-capture';
import { startReceiver } from '../helpers/receiver';
import { parseMetrics, valueOf } from '../helpers/http';
import { providerCharges } from '../helpers/charges';
import { assertionClient, SHARED_REDIS_URL } from '../helpers/redis';
import { waitFor } from '../helpers/wait';

// As services/common/telemetry/tracing.ts does in the real API: the W3C propagator carries the client's
// traceparent into the job, so the failures API can sample trace ids.
propagation.setGlobalPropagator(new W3CTraceContextPropagator());

const notification = { channel: 'email', to: 'ops@example.com', template: 'welcome' };
const payment = (n: number) => ({ amount: 1000 + n, currency: 'EUR', account: `acct_${n}` });
const traceparent = () => {
  const traceId = randomBytes(16).toString('hex');
  return { traceId, header: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
};

t.test('two causes → two groups with their counts, reasons, samples and trace ids', async (t) => {
  const p = await startPipeline(t);
  // These cases need jobs that fail for good: with a breaker, a dependency failing every call opens its circuit
  // and the jobs wait for it instead (test/fault/circuit-outage.test.ts covers that).
  await p.startWorker({ WORKER_QUEUES: 'notifications', WORKER_TIMEOUT_MS_NOTIFICATIONS: '300', OUTBOUND_CIRCUIT_BREAKERS: 'false' });

  await p.setFaults('notifications', { failureRate: 1 });
  const traces: string[] = [];
  const providerFailed: string[] = [];
  for (let i = 0; i < 3; i++) {
    const tp = traceparent();
    traces.push(tp.traceId);
    providerFailed.push(await p.enqueue('notifications', { data: notification }, { traceparent: tp.header }));
  }
  await Promise.all(providerFailed.map((id) => p.waitForState('notifications', id, 'failed', 20_000)));

  await p.setFaults('notifications', { failureRate: 0, timeoutRate: 1 });
  const timedOut = [await p.enqueue('notifications', { data: notification }), await p.enqueue('notifications', { data: notification })];
  await Promise.all(timedOut.map((id) => p.waitForState('notifications', id, 'failed', 20_000)));

  const res = await p.app.inject({ method: 'GET', url: '/v1/admin/queues/notifications/failures', headers: p.adminAuth });
  t.equal(res.statusCode, 200);
  const body = res.json();
  t.equal(body.queue, 'notifications');
  t.equal(body.scanned, 5, 'every failed job read');
  t.equal(body.groups.length, 2, 'two causes, two groups');
  const [first, second] = body.groups;
  t.match(first, { reason: 'provider_error', count: 3, message: 'simulated provider: <n> Service Unavailable', fingerprint: /^[0-9a-f]{16}$/ });
  t.match(second, { reason: 'timeout', count: 2, message: 'attempt timed out after <n> ms' });
  t.same([...first.sampleJobIds].sort(), [...providerFailed].sort(), 'samples are the failed jobs');
  t.same([...first.sampleTraceIds].sort(), [...traces].sort(), "samples carry the jobs' trace ids");
  t.same([...second.sampleJobIds].sort(), [...timedOut].sort());
  t.ok(Date.parse(first.firstSeen) <= Date.parse(first.lastSeen), 'firstSeen ≤ lastSeen');
  t.ok(Date.parse(second.lastSeen) > Date.parse(first.lastSeen) - 60_000, 'ISO timestamps');

  // The same reason as the worker's metric: one classification for both.
  const replay = await p.app.inject({
    method: 'POST', url: '/v1/admin/queues/notifications/failures/retry', headers: p.adminAuth, payload: { reason: 'timeout', limit: 1 },
  });
  t.equal(replay.statusCode, 202);
  t.equal(replay.json().retried, 1, 'reason filter + limit');
  t.ok(timedOut.includes(replay.json().jobIds[0]));
});

t.test('messages that differ only in numbers are one group', async (t) => {
  const p = await startPipeline(t, { WEBHOOK_ALLOW_PRIVATE: 'true' });
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  await p.startWorker({ WORKER_QUEUES: 'webhooks' });
  const ids: string[] = [];
  for (const status of [404, 410, 422, 400]) {
    receiver.script.push({ status });
    const id = await p.enqueue('webhooks', { data: { url: receiver.url, event: 'invoice.paid', payload: { status } } });
    await p.waitForState('webhooks', id, 'failed');
    ids.push(id);
  }
  const body = (await p.app.inject({ method: 'GET', url: '/v1/admin/queues/webhooks/failures', headers: p.adminAuth })).json();
  t.equal(body.groups.length, 1, '"target answered 404/410/422/400; not retried" → one group');
  t.match(body.groups[0], { reason: 'rejected', count: 4, message: 'target answered <n>; not retried' });
  t.same(body.groups[0].sampleJobIds, [...ids].reverse(), 'newest failure first');
});

t.test('replay: limits, skipped jobs, fresh attempts, counted and audited, payments charged once', async (t) => {
  const { logger, lines } = captureLogs();
  const p = await startPipeline(t, {}, { logger });
  const { app, adminAuth, auth } = p;
  await p.startWorker({ WORKER_QUEUES: 'payments', OUTBOUND_CIRCUIT_BREAKERS: 'false' });

  await p.setFaults('payments', { failureRate: 1 });
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push(await p.enqueue('payments', { data: payment(i) }));
  await Promise.all(ids.map((id) => p.waitForState('payments', id, 'failed', 30_000)));
  // The shared Redis, or the cluster when run by test/cluster/console-suite.test.ts.
  const redis = assertionClient(SHARED_REDIS_URL);
  t.teardown(() => redis.disconnect());
  t.equal(Object.keys(await providerCharges(redis, p.prefix)).length, 0, 'nothing charged while failing');
  await p.setFaults('payments', { failureRate: 0 });

  const retry = (payload: object, headers = adminAuth) =>
    app.inject({ method: 'POST', url: '/v1/admin/queues/payments/failures/retry', headers, payload });

  // Bad input loses nothing.
  for (const payload of [{ limit: 0 }, { limit: 1001 }, { jobIds: [] }, { reason: 'bogus' }, { fingerprint: 'xyz' }, { extra: 1 }]) {
    const res = await retry(payload);
    t.equal(res.statusCode, 400, `400 for ${JSON.stringify(payload)}`);
    t.equal(res.json().code, 'VALIDATION_ERROR');
  }
  t.equal((await retry({}, auth)).statusCode, 403, 'client key: 403');
  t.equal((await app.inject({ method: 'POST', url: '/v1/admin/queues/payments/failures/retry', payload: {} })).statusCode, 401, 'no key: 401');
  const unknown = await app.inject({ method: 'POST', url: '/v1/admin/queues/nosuch/failures/retry', headers: adminAuth, payload: {} });
  t.equal(unknown.statusCode, 404);
  t.equal(unknown.json().code, 'QUEUE_NOT_FOUND');
  t.equal((await app.inject({ method: 'GET', url: '/v1/admin/queues/payments/failures', headers: adminAuth })).json().groups[0].count, 5, 'still 5 failed');

  // Limit: by fingerprint, two of five.
  const groups = (await app.inject({ method: 'GET', url: '/v1/admin/queues/payments/failures', headers: adminAuth })).json();
  const fingerprint = groups.groups[0].fingerprint as string;
  const two = await retry({ fingerprint, limit: 2 });
  t.equal(two.statusCode, 202);
  t.equal(two.json().retried, 2);
  t.same(two.json().jobIds, groups.groups[0].sampleJobIds.slice(0, 2), 'newest failures first, ids kept');
  const replayed = two.json().jobIds as string[];
  const stillFailed = ids.filter((id) => !replayed.includes(id));
  for (const id of two.json().jobIds) {
    const done = await p.waitForState('payments', id, 'completed', 20_000);
    t.equal(done.attemptsMade, 1, `${id}: a fresh set of attempts (attemptsMade restarted)`);
  }
  const left = (await app.inject({ method: 'GET', url: '/v1/admin/queues/payments/failures', headers: adminAuth })).json();
  t.equal(left.groups[0].count, 3, 'three still failed');

  // Explicit ids: a completed job and an unknown id are skipped, the failed one retried.
  const mixed = await retry({ jobIds: [replayed[0]!, stillFailed[0]!, 'no-such-job'] });
  t.equal(mixed.statusCode, 202);
  t.same(mixed.json(), { retried: 1, jobIds: [stillFailed[0]], skipped: [replayed[0], 'no-such-job'] });
  await p.waitForState('payments', stillFailed[0]!, 'completed', 20_000);

  // Two replicas (or two operators) replaying the same jobs at once: each job runs once more, never twice.
  const rest = stillFailed.slice(1);
  const [a, b] = await Promise.all([retry({ jobIds: rest }), retry({ jobIds: rest })]);
  t.equal(a.json().retried + b.json().retried, rest.length, 'each job retried by exactly one request');
  t.same([...a.json().skipped, ...b.json().skipped].sort(), [...rest].sort(), 'the other request skipped them');
  await Promise.all(rest.map((id) => p.waitForState('payments', id, 'completed', 20_000)));

  // Replaying again finds nothing failed.
  t.same((await retry({})).json(), { retried: 0, jobIds: [], skipped: [] });
  // The console's own Retry on a completed payment runs the job again: the ledger answers, nothing is charged twice.
  const consoleRetry = await app.inject({ method: 'PUT', url: `/admin/queues/api/queues/payments/${replayed[0]}/retry`, headers: adminAuth });
  t.equal(consoleRetry.statusCode, 204, 'console retry of a completed job');
  const rerun = await waitFor(async () => {
    const j = await p.job('payments', replayed[0]!);
    return j.state === 'completed' && j.returnValue?.replayed === true ? j : undefined;
  }, { what: 'console re-run answered by the ledger' });
  t.equal(rerun.returnValue.replayed, true);

  const charges = await providerCharges(redis, p.prefix);
  t.equal(Object.keys(charges).length, 5, 'five payments, five charges: none applied twice');

  const m = parseMetrics(await p.registry.metrics());
  t.equal(valueOf(m, 'bullmq_jobs_replayed_total', { queue: 'payments' }), 5, 'every replay counted once (the completed re-run is not a replay)');
  t.equal(valueOf(m, 'bullmq_jobs_replayed_total', { queue: 'notifications' }), 0, 'series pre-created');
  const audit = lines.filter((l) => l.audit === true && l.action === 'failures_retry');
  t.ok(audit.length >= 4, 'each replay request audited');
  t.ok(audit.every((l) => typeof l.keyId === 'string' && (l.keyId).length === 16), 'with the admin key id');
  t.notOk(JSON.stringify(lines).includes('test-admin-key'), 'never the key');
});
