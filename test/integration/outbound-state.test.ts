/**
 * The Lua decisions of the outbound boundary on real Redis (on a Redis Cluster too: test/cluster/outbound-suite):
 * the circuit script (services/common/outbound-circuits.ts: rolling window, open, one probe, doubling, reset) and
 * the quota script (services/worker/outbound/quota.ts: sliding window with leases across "replicas", AIMD).
 * Short policy times keep the cases fast; the decisions are the catalog's.
 */
import t from 'tap';
import { setTimeout as sleep } from 'node:timers/promises';
import { CircuitStore } from '../../services/common/outbound-circuits';
import { OUTBOUND_POLICY, type BreakerPolicy, type OutboundDependency } from '../../services/common/queue-catalog';
import { LEASE_VALIDITY_MS, OutboundQuotas } from '../../services/worker/outbound/quota';
import { CircuitBreakers } from '../../services/worker/outbound/circuit';
import { verdictOf } from '../../services/worker/outbound/call';
import { ProviderError, RateLimitedError, UnrecoverableError, JobTimeoutError } from '../../services/worker/errors';
import calculateSlot from 'cluster-key-slot';
import { assertionClient, deletePrefix, SHARED_REDIS_URL, testClusterSeeds, uniquePrefix } from '../helpers/redis';
import { waitFor } from '../helpers/wait';

const policy: BreakerPolicy = { windowMs: 2_000, minCalls: 5, failureRatio: 0.5, openMs: 300, maxOpenMs: 1_000, probeLeaseMs: 400 };

const DEPENDENCIES: OutboundDependency[] = ['payment_provider', 'notification_provider', 'webhook_host'];

/**
 * On a cluster (test/cluster/outbound-suite.test.ts) a prefix whose three dependency hash tags fall in the three
 * masters' slot ranges of a fresh 3-master cluster (0-5460, 5461-10922, 10923-16383), so every master runs scripts.
 */
function testPrefix(): string {
  for (;;) {
    const prefix = uniquePrefix('outbound');
    if (!testClusterSeeds()) return prefix;
    const thirds = new Set(DEPENDENCIES.map((d) => Math.floor(calculateSlot(`{${prefix}:outbound:${d}}`) / 5461.34)));
    if (thirds.size === 3) return prefix;
  }
}

function setup(t: { teardown(fn: () => unknown): void }) {
  const prefix = testPrefix();
  const redis = assertionClient(SHARED_REDIS_URL, null);
  redis.on('error', () => undefined);
  t.teardown(async () => {
    await deletePrefix(SHARED_REDIS_URL, prefix);
    redis.disconnect();
  });
  return { prefix, redis, store: new CircuitStore(redis, prefix, policy) };
}

t.test('a dependency failure is a 5xx, 408, timeout or network error; a 4xx is the caller\'s, a 429 is rate_limited', async (t) => {
  t.equal(verdictOf(new ProviderError('503', 503)), 'failure');
  t.equal(verdictOf(new JobTimeoutError(10)), 'failure');
  t.equal(verdictOf(new TypeError('fetch failed')), 'failure');
  t.equal(verdictOf(new UnrecoverableError('400 bad request')), 'success');
  t.equal(verdictOf(new RateLimitedError(1000)), 'rate_limited');
});

for (const dependency of DEPENDENCIES) {
  t.test(`${dependency}: the circuit opens at ≥ 5 calls and ≥ 50 % failed within the window, not before`, async (t) => {
    const { store } = setup(t);
    let r = await store.record(dependency, 'a', 0, 4);
    t.equal(r.state, 'closed', '4 failures: below the minimum of 5 calls');
    r = await store.record(dependency, 'b', 3, 2);
    t.equal(r.state, 'closed', '2 of 5 failed (40 %): stays closed');
    r = await store.record(dependency, 'c', 2, 3);
    t.equal(r.state, 'open', '3 of 5 failed (60 %): opens');
    t.equal(r.transition, 'open', 'the transition is reported once, to the caller that made it');
    t.ok(r.nextProbeAt - r.now >= policy.openMs - 5 && r.nextProbeAt - r.now <= policy.openMs, `next probe after the open time (${r.nextProbeAt - r.now} ms)`);
    r = await store.record(dependency, 'c', 0, 5);
    t.equal(r.transition, undefined, 'outcomes reaching an open circuit decide nothing');
    const open = await store.list(dependency);
    t.same(open.map((c) => [c.target, c.state, c.recentFailures]), [['c', 'open', 3]], 'listed while not closed, with its failures');
    r = await store.record(dependency, 'a', 0, 1);
    t.equal(r.state, 'open', "'a' reaches 5 failed calls within the window: opens too");
  });
}

t.test('failures older than the rolling window do not count', async (t) => {
  const { store } = setup(t);
  await store.record('payment_provider', 'x', 0, 4);
  await sleep(policy.windowMs + 1_100);
  const r = await store.record('payment_provider', 'x', 0, 1);
  t.equal(r.state, 'closed', 'one failure in the window: closed');
});

t.test('half-open: exactly one probe at a time; a failed probe doubles the open time up to the maximum; success closes', async (t) => {
  const { store } = setup(t);
  await store.record('payment_provider', 'payment_provider', 0, 5);
  let r = await store.probe('payment_provider', 'payment_provider', 'early');
  t.notOk(r.granted, 'no probe before the open time is over');
  await sleep(policy.openMs + 20);
  const probes = await Promise.all(Array.from({ length: 8 }, (_, i) => store.probe('payment_provider', 'payment_provider', `p${i}`)));
  t.equal(probes.filter((p) => p.granted).length, 1, 'eight concurrent asks: one probe granted');
  t.equal(probes.filter((p) => p.transition === 'half_open').length, 1, 'one half_open transition');
  const winner = `p${probes.findIndex((p) => p.granted)}`;
  t.ok(probes.every((p) => p.state === 'half_open'), 'half-open while the probe is in flight');

  r = await store.probeResult('payment_provider', 'payment_provider', 'not-the-probe', true);
  t.equal(r.state, 'half_open', 'only the probe holder decides');
  r = await store.probeResult('payment_provider', 'payment_provider', winner, false);
  t.equal(r.state, 'open', 'failed probe: open again');
  t.equal(r.openMs, policy.openMs * 2, 'open time doubled');
  t.equal(r.transition, 'open');

  const openTimes: number[] = [];
  for (let i = 0; i < 3; i++) {
    const reply = await waitFor(async () => {
      const p = await store.probe('payment_provider', 'payment_provider', `q${i}`);
      return p.granted ? p : undefined;
    }, { what: 'probe granted', timeoutMs: 5_000, intervalMs: 20 });
    t.ok(reply.granted);
    openTimes.push((await store.probeResult('payment_provider', 'payment_provider', `q${i}`, false)).openMs);
  }
  t.same(openTimes, [1_000, 1_000, 1_000], 'doubling stops at the maximum open time');

  const last = await waitFor(async () => {
    const p = await store.probe('payment_provider', 'payment_provider', 'final');
    return p.granted ? p : undefined;
  }, { what: 'probe granted', timeoutMs: 5_000, intervalMs: 20 });
  t.ok(last.granted);
  r = await store.probeResult('payment_provider', 'payment_provider', 'final', true);
  t.equal(r.state, 'closed', 'successful probe closes the circuit');
  t.equal(r.transition, 'closed');
  t.same(await store.list('payment_provider'), [], 'no longer listed');
  r = await store.record('payment_provider', 'payment_provider', 0, 4);
  t.equal(r.state, 'closed', 'closed with a fresh window: 4 failures do not re-open it');
});

t.test('a probe whose holder vanished: its lease expires and another call may probe', async (t) => {
  const { store } = setup(t);
  await store.record('webhook_host', 'h:1', 0, 5);
  await sleep(policy.openMs + 20);
  t.ok((await store.probe('webhook_host', 'h:1', 'lost')).granted, 'first probe granted');
  t.notOk((await store.probe('webhook_host', 'h:1', 'second')).granted, 'no second probe while the lease holds');
  await sleep(policy.probeLeaseMs + 50);
  t.ok((await store.probe('webhook_host', 'h:1', 'second')).granted, 'granted once the lease expired');
  const released = await store.release('webhook_host', 'h:1', 'second');
  t.equal(released.state, 'half_open', 'a probe not sent hands its lease back');
  t.ok((await store.probe('webhook_host', 'h:1', 'third')).granted, 'and the next call probes at once');
});

t.test('reset closes a circuit by hand', async (t) => {
  const { store } = setup(t);
  await store.record('webhook_host', 'dead.example:443', 0, 6);
  t.equal((await store.list('webhook_host')).length, 1);
  const r = await store.reset('webhook_host', 'dead.example:443');
  t.equal(r.state, 'closed');
  t.equal(r.transition, 'closed');
  t.same(await store.list('webhook_host'), []);
});

t.test('breakers with a local cache (two replicas): one opens the circuit, the other short-circuits within the refresh time', async (t) => {
  const { store } = setup(t);
  const transitions: string[] = [];
  const events = { transition: (_d: string, to: string) => transitions.push(to) };
  const a = new CircuitBreakers(store, policy, events);
  const b = new CircuitBreakers(store, policy, events);
  t.same(await b.admit('notification_provider', 'notification_provider'), { kind: 'pass' }, 'closed: replica b passes');
  for (let i = 0; i < 5; i++) {
    const adm = await a.admit('notification_provider', 'notification_provider');
    await a.record('notification_provider', 'notification_provider', adm, false);
  }
  t.same(transitions, ['open'], 'replica a opened it');
  const seen = await waitFor(async () => {
    const adm = await b.admit('notification_provider', 'notification_provider');
    return adm.kind === 'open' ? adm : undefined;
  }, { what: 'replica b short-circuits', timeoutMs: 2_000, intervalMs: 50 });
  t.ok(seen.retryAt > Date.now() - 50, 'with the next probe time');
});

t.test('quota: at most N starts in any window across replicas, the quota used', async (t) => {
  const { prefix, redis } = setup(t);
  const quotas = { ...OUTBOUND_POLICY.quotas, webhook_host: { limit: 10, windowMs: 500 } };
  const rates: number[] = [];
  const replicas = [0, 1].map(() => new OutboundQuotas(redis, prefix, quotas, OUTBOUND_POLICY.aimd, { rate: (_d, _t, r) => rates.push(r) }));
  const starts: number[] = [];
  await Promise.all(
    Array.from({ length: 40 }, async (_, i) => {
      const d = await replicas[i % 2]!.take('webhook_host', 'one:80', 10_000);
      if (d.ok) starts.push(Date.now());
    }),
  );
  starts.sort((x, y) => x - y);
  t.equal(starts.length, 40, 'every call started (waited in the worker)');
  let worst = 0;
  for (let i = 0; i < starts.length; i++) worst = Math.max(worst, starts.filter((s) => s >= starts[i]! && s < starts[i]! + 500).length);
  t.ok(worst <= 10, `at most 10 starts in any 500 ms (worst ${worst})`);
  const took = starts[starts.length - 1]! - starts[0]!;
  t.ok(took < 4 * 500, `40 starts at 10 per 500 ms took ${took} ms (≥ 1.5 s by the quota, far from starved)`);
  t.ok(rates.every((r) => r === 20), 'allowed rate reported: 20/s');

  const refused = await replicas[0]!.take('webhook_host', 'one:80', 0);
  t.equal(refused.ok, false, 'no wait allowed and the window is full: refused');
  if (!refused.ok) t.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 600, `with the time until a token frees up (${refused.retryAfterMs} ms)`);
  const other = await replicas[0]!.take('webhook_host', 'other:80', 0);
  t.equal(other.ok, true, 'the webhook quota is per host');
});

t.test('quota: leases follow the pace, and the log counts starts — a lease\'s unstarted tokens go back with the next', async (t) => {
  const { prefix, redis } = setup(t);
  const quotas = { ...OUTBOUND_POLICY.quotas, notification_provider: { limit: 1_000, windowMs: 2_000 } };
  const q = new OutboundQuotas(redis, prefix, quotas, OUTBOUND_POLICY.aimd, { rate: () => undefined });
  const log = `{${prefix}:outbound:notification_provider}:quota:notification_provider`;
  const total = `{${prefix}:outbound:notification_provider}:quota-used:notification_provider`;
  const leased = () => (q as unknown as { buckets: Map<string, { tokens: number }> }).buckets.get('notification_provider\u0000notification_provider')?.tokens ?? 0;
  let started = 0;
  for (let i = 0; i < 120; i++) if ((await q.take('notification_provider', 'notification_provider', 1_000)).ok) started++;
  t.equal(started, 120, '120 calls started');
  const leases = await redis.zcard(log);
  t.ok(leases <= 10, `a fast caller asks for batches, not one token per call (${leases} leases for 120 starts)`);
  t.equal(Number(await redis.get(total)), started + leased(), 'the log holds the starts and the tokens still leased');
  await sleep(LEASE_VALIDITY_MS + 30);
  const unstarted = leased();
  t.ok(unstarted > 0, `the last lease expired with ${unstarted} tokens not started`);
  if ((await q.take('notification_provider', 'notification_provider', 1_000)).ok) started++;
  t.equal(Number(await redis.get(total)), started + leased(), 'after the next lease the expired tokens are gone: only starts (and the new lease) are counted');
  const members = await redis.zrange(log, 0, -1);
  const sum = members.reduce((n, m) => n + Number(m.slice(m.lastIndexOf(':') + 1)), 0);
  t.equal(sum, Number(await redis.get(total)), 'the running total is the sum of the lease members');
});

t.test('AIMD: a burst of 429s cuts the shared rate, clean windows raise it back to the quota; 429s to everything ask for a pause', async (t) => {
  const { prefix, redis } = setup(t);
  const quotas = { ...OUTBOUND_POLICY.quotas, payment_provider: { limit: 40, windowMs: 500 } };
  const rates: number[] = [];
  const q = new OutboundQuotas(redis, prefix, quotas, OUTBOUND_POLICY.aimd, { rate: (_d, _t, r) => rates.push(r) });
  let started = 0;
  for (let i = 0; i < 20; i++) if ((await q.take('payment_provider', 'payment_provider', 1_000)).ok) started++;
  t.equal(started, 20, '20 calls started within the quota');

  const one = await q.rateLimited('payment_provider', 'payment_provider', 100);
  t.same(one, { pause: false, cut: false }, 'one 429 among 20 calls: no cut, no pause (only that job waits)');
  await q.rateLimited('payment_provider', 'payment_provider', 100);
  t.equal((await q.rateLimited('payment_provider', 'payment_provider', 100)).cut, false, 'three 429s among 20 calls (15 %): no cut yet');
  const burst = await q.rateLimited('payment_provider', 'payment_provider', 100);
  t.equal(burst.cut, true, 'four 429s (20 % of the 20 started, ≥ 3): the rate is cut');
  t.equal(rates[rates.length - 1], 20, 'to half of what was really started (20 → 10 per 500 ms = 20/s)');
  const again = await q.rateLimited('payment_provider', 'payment_provider', 100);
  t.equal(again.cut, false, 'one cut per window');

  // Clean windows: each adds 10 % of the quota (4 per 500 ms) back.
  await sleep(600);
  await q.take('payment_provider', 'payment_provider', 1_000);
  t.equal(rates[rates.length - 1], 28, 'raised by one step after a clean window (10 + 4 → 28/s)');
  const final = await waitFor(async () => {
    await q.take('payment_provider', 'payment_provider', 1_000);
    return rates[rates.length - 1] === 80 ? 80 : undefined;
  }, { what: 'rate back to the quota', timeoutMs: 10_000, intervalMs: 100 });
  t.equal(final, 80, 'back to the quota (40 per 500 ms = 80/s)');

  const other = new OutboundQuotas(redis, `${prefix}x`, quotas, OUTBOUND_POLICY.aimd, { rate: () => undefined });
  t.teardown(() => deletePrefix(SHARED_REDIS_URL, `${prefix}x`));
  for (let i = 0; i < 6; i++) await other.take('notification_provider', 'notification_provider', 1_000);
  let last = { pause: false, cut: false };
  for (let i = 0; i < 6; i++) last = await other.rateLimited('notification_provider', 'notification_provider', 1_000);
  t.equal(last.pause, true, '429 to every call: pause the queue');
});
