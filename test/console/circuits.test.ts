/**
 * The console shows open outbound circuits (services/api/console-circuits.ts): circuits opened in Redis the way
 * the workers' breaker does (CircuitStore.record / probe, real Redis) appear in the description and display name
 * of the queue whose catalog dependency they belong to, in bull-board's own queue list
 * (GET /admin/queues/api/queues), and are gone once reset. A failed circuit read leaves the console working.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildTestApp } from '../helpers/app';
import { captureLogs } from '../helpers/log-capture';
import { assertionClient, SHARED_REDIS_URL } from '../helpers/redis';
import { waitFor } from '../helpers/wait';
import { CircuitStore } from '../../services/common/outbound-circuits';
import { QUEUE_CATALOG, type BreakerPolicy } from '../../services/common/queue-catalog';
import { SNAPSHOT_TTL_MS } from '../../services/api/queue-snapshot';
import type { FastifyInstance } from 'fastify';

interface ListedQueue { name: string; displayName?: string; description?: string }

async function listed(app: FastifyInstance, headers: Record<string, string>): Promise<Record<string, ListedQueue>> {
  const res = await app.inject({ url: '/admin/queues/api/queues', headers });
  if (res.statusCode !== 200) throw new Error(`GET /admin/queues/api/queues: ${res.statusCode} ${res.body}`);
  return Object.fromEntries((res.json().queues as ListedQueue[]).map((q) => [q.name, q]));
}

const CLOCK = String.raw`\d\d:\d\d:\d\d UTC`;
/** A policy with a short open time, to reach half-open in the test; the stored state is what the API lists. */
const SHORT: BreakerPolicy = { windowMs: 2_000, minCalls: 5, failureRatio: 0.5, openMs: 300, maxOpenMs: 1_000, probeLeaseMs: 5_000 };

function shortStore(t: { teardown(fn: () => unknown): void }, prefix: string): CircuitStore {
  const redis = assertionClient(SHARED_REDIS_URL, null);
  redis.on('error', () => undefined);
  t.teardown(() => redis.disconnect());
  return new CircuitStore(redis, prefix, SHORT);
}

t.test('payments shows its open payment_provider circuit, notifications does not; gone after a reset', async (t) => {
  const { app, adminAuth } = await buildTestApp(t);
  const before = await listed(app, adminAuth);
  t.equal(before.payments!.description, QUEUE_CATALOG.payments.description, 'all closed: the catalog description');
  t.equal(before.payments!.displayName, undefined, 'and no display name (bull-board shows the queue name)');

  // What the worker's breaker does on 5 failed provider calls in the window (services/worker/outbound/circuit.ts).
  const opened = await app.circuitStore.record('payment_provider', 'payment_provider', 0, 5);
  t.equal(opened.state, 'open');
  const probeAt = new Date(opened.nextProbeAt).toISOString().slice(11, 19);
  await sleep(SNAPSHOT_TTL_MS + 50); // the console reads the 1 s queue snapshot

  const open = await listed(app, adminAuth);
  t.equal(
    open.payments!.description,
    `⚠ circuit open: payment_provider (since ${new Date(opened.openedAt).toISOString().slice(11, 19)} UTC, ` +
      `half-open probe at ${probeAt} UTC, 5 recent failures) — ${QUEUE_CATALOG.payments.description}`,
    'payments: target, state, next probe, recent failures — first, as bull-board cuts the subtitle to one line',
  );
  t.equal(open.payments!.displayName, '⚠ payments · circuit open', 'payments: marked at a glance (overview card, page heading)');
  t.equal(open.notifications!.description, QUEUE_CATALOG.notifications.description, 'notifications: its dependency is closed');
  t.equal(open.notifications!.displayName, undefined);
  t.equal(open.webhooks!.description, QUEUE_CATALOG.webhooks.description);
  const health = (await app.inject({ url: '/queue/health' })).json();
  t.match(health.data.queues, { payments: { status: 'degraded', openCircuits: 1 } }, '/queue/health agrees: payments degraded');

  const page = await app.inject({ url: '/admin/queues/api/queues?activeQueue=payments&status=latest&page=1&jobsPerPage=10', headers: adminAuth });
  t.match(page.json().queues.find((q: ListedQueue) => q.name === 'payments').description, /⚠ circuit open/, 'also with the queue page\'s query');

  const reset = await app.inject({ method: 'POST', url: '/v1/admin/circuits/payment_provider/reset', headers: adminAuth });
  t.equal(reset.json().wasOpen, true);
  await waitFor(async () => (await listed(app, adminAuth)).payments!.description === QUEUE_CATALOG.payments.description, {
    what: 'the circuit gone from the console after the reset',
    timeoutMs: 5_000,
  });
  t.equal((await listed(app, adminAuth)).payments!.displayName, undefined, 'and the marker too');
});

t.test('half-open and several webhook hosts: each target named with its state; the rest counted', async (t) => {
  const { app, prefix, adminAuth } = await buildTestApp(t);
  const store = shortStore(t, prefix);
  await store.record('notification_provider', 'notification_provider', 0, 6);
  await sleep(SHORT.openMs + 50);
  const probe = await store.probe('notification_provider', 'notification_provider', 'probe-token');
  t.equal(probe.state, 'half_open', 'the one probe is under way');
  const hosts = ['a.example:443', 'b.example:443', 'c.example:8443', 'd.example:443'];
  for (const host of hosts) {
    await store.record('webhook_host', host, 1, 4);
    await sleep(5); // distinct openedAt: listed oldest first
  }

  const queues = await listed(app, adminAuth);
  t.match(
    queues.notifications!.description,
    new RegExp(String.raw`^⚠ circuit half-open: notification_provider \(since ${CLOCK}, probe under way, 6 recent failures\) — `),
  );
  t.equal(queues.notifications!.displayName, '⚠ notifications · circuit half-open');
  const webhooks = queues.webhooks!.description!;
  t.ok(webhooks.startsWith('⚠ 4 circuits open: a.example:443 (open since '), webhooks);
  t.ok(webhooks.endsWith(`; and 1 more — ${QUEUE_CATALOG.webhooks.description}`), '…the others counted (GET /v1/admin/circuits lists them all)');
  for (const host of hosts.slice(0, 3)) {
    t.match(webhooks, new RegExp(String.raw`${host.replace('.', '\\.')} \(open since ${CLOCK}, half-open probe at ${CLOCK}, 4 recent failures\)`), `${host} named`);
  }
  t.notMatch(webhooks, /d\.example/, 'at most three hosts named…');
  t.equal(queues.webhooks!.displayName, '⚠ webhooks · 4 circuits open');
  t.equal(queues.payments!.description, QUEUE_CATALOG.payments.description, 'payments: its dependency is closed');
});

t.test('a failed circuit read: the console still answers, without circuit info, and logs one warning', async (t) => {
  const { logger, lines } = captureLogs();
  const { app, adminAuth } = await buildTestApp(t, {}, { logger });
  await app.circuitStore.record('payment_provider', 'payment_provider', 0, 5);
  const list = app.circuitStore.list.bind(app.circuitStore);
  app.circuitStore.list = async () => {
    throw Object.assign(new Error('Connection is closed.'), { name: 'ReplyError' });
  };
  t.teardown(() => {
    app.circuitStore.list = list;
  });

  for (let i = 0; i < 2; i++) {
    const queues = await listed(app, adminAuth);
    t.equal(queues.payments!.description, QUEUE_CATALOG.payments.description, `request ${i + 1}: the catalog description`);
    t.equal(queues.payments!.displayName, undefined);
  }
  const warnings = lines.filter((l) => l.msg === 'console: circuit state unavailable; queues shown without it');
  t.equal(warnings.length, 1, 'one warning for the one failed snapshot read (remembered for its 1 s TTL)');
  t.equal(warnings[0]!.level, 40, 'at warn level');

  app.circuitStore.list = list;
  await waitFor(async () => /⚠ circuit open/.test((await listed(app, adminAuth)).payments!.description ?? ''), {
    what: 'the open circuit shown again once the read works',
    timeoutMs: 5_000,
  });
});
