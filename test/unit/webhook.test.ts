import t from 'tap';
import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhook } from '../../services/worker/webhook/signature';
import { isPublicAddress } from '../../services/worker/webhook/ssrf-guard';
import { isForbiddenAddress, webhookTargetProblem } from '../../services/common/webhook-target';
import { WebhookClient, parseDeliveryTarget } from '../../services/worker/webhook/client';
import { HostSlots } from '../../services/worker/webhook/host-slots';
import { MAX_RATE_LIMIT_DEFERRALS, MAX_RATE_LIMIT_DEFERRAL_WINDOW_MS, deferAfterRateLimit } from '../../services/worker/deferral';
import { JobDeferredError, RateLimitExhaustedError, UnrecoverableError } from '../../services/worker/errors';
import { failureReasonOf } from '../../services/common/failure-reason';
import type { JobEnvelope } from '../../services/common/job-envelope';

t.test('signature is HMAC-SHA256(secret, t + "." + body) in hex', async (t) => {
  const header = signWebhook('s3cret-s3cret-s3cret', '{"a":1}', 1700000000);
  const expected = createHmac('sha256', 's3cret-s3cret-s3cret').update('1700000000.{"a":1}').digest('hex');
  t.equal(header, `t=1700000000,v1=${expected}`);
  t.ok(verifyWebhook('s3cret-s3cret-s3cret', '{"a":1}', header, 1700000010));
  t.notOk(verifyWebhook('s3cret-s3cret-s3cret', '{"a":2}', header, 1700000010), 'tampered body');
  t.notOk(verifyWebhook('other-secret-other', '{"a":1}', header, 1700000010), 'wrong secret');
  t.notOk(verifyWebhook('s3cret-s3cret-s3cret', '{"a":1}', header, 1700009999), 'replayed too late');
  t.notOk(verifyWebhook('s3cret-s3cret-s3cret', '{"a":1}', undefined), 'missing header');
});

t.test('SSRF guard: only public unicast addresses', async (t) => {
  for (const a of ['127.0.0.1', '10.1.2.3', '172.16.0.1', '192.168.1.1', '169.254.169.254', '0.0.0.0', '::1', 'fc00::1', 'fe80::1', '::ffff:127.0.0.1', '100.64.0.1']) {
    t.notOk(isPublicAddress(a), `${a} refused`);
  }
  for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700:4700::1111']) t.ok(isPublicAddress(a), `${a} allowed`);
});

t.test('SSRF guard: IPv6 forms embedding a private IPv4 are judged by that IPv4 (shared with the API)', async (t) => {
  const embedded = {
    'IPv4-compatible ::/96': ['::127.0.0.1', '::7f00:1', '::10.0.0.1', '::169.254.169.254'],
    'IPv4-mapped': ['::ffff:10.0.0.1', '::ffff:7f00:1'],
    'IPv4-translated': ['::ffff:0:127.0.0.1'],
    'NAT64 64:ff9b::/96': ['64:ff9b::127.0.0.1', '64:ff9b::a00:1', '64:ff9b::192.168.0.1'],
    'NAT64 local-use': ['64:ff9b:1::808:808'],
    '6to4 2002::/16': ['2002:7f00:1::', '2002:a00:1::1', '2002:c0a8:1::'],
    teredo: ['2001::1'],
  };
  for (const [form, list] of Object.entries(embedded)) for (const a of list) t.notOk(isPublicAddress(a), `${form} ${a} refused`);
  for (const a of ['64:ff9b::8.8.8.8', '2002:808:808::1', '::ffff:8.8.8.8']) t.ok(isPublicAddress(a), `${a} (public IPv4 inside) allowed`);
  t.equal(isForbiddenAddress('not-an-ip'), true, 'anything unparseable is forbidden');
  t.same(
    ['http://[::127.0.0.1]/', 'http://localhost/', 'http://exa mple.com/', 'ftp://example.com/', 'https://example.com/x'].map((u) => webhookTargetProblem(u, false) === undefined),
    [false, false, false, false, true],
  );
  t.equal(webhookTargetProblem('http://[::127.0.0.1]/', true), undefined, 'WEBHOOK_ALLOW_PRIVATE=true allows private targets');
  t.ok(webhookTargetProblem('http://exa mple.com/', true), 'but never an unparseable URL');
});

t.test('Retry-After is parsed and bounded', async (t) => {
  const c = new WebhookClient({ signingSecret: 'x'.repeat(16), allowPrivate: false, maxRetryAfterMs: 60_000, maxPerHost: 2 });
  t.equal(c.retryAfterMs('3'), 3000);
  t.equal(c.retryAfterMs('0'), 1000, 'lower bound');
  t.equal(c.retryAfterMs('86400'), 60_000, 'upper bound');
  t.equal(c.retryAfterMs(undefined), 5000, 'default when absent');
  const inTen = new Date(Date.now() + 10_000).toUTCString();
  t.ok(Math.abs(c.retryAfterMs(inTen) - 10_000) < 1500, 'HTTP date');
  await c.close();
});

t.test('host slots: at most maxPerHost per host, first come first served', async (t) => {
  const slots = new HostSlots(2);
  const a1 = await slots.acquire('a:80', 0);
  const a2 = await slots.acquire('a:80', 0);
  t.ok(a1 && a2, 'two slots for host a');
  t.equal(await slots.acquire('a:80', 0), undefined, 'a third without waiting: none');
  t.ok(await slots.acquire('b:80', 0), 'another host is not affected');
  const waiting = slots.acquire('a:80', 5_000);
  const late = slots.acquire('a:80', 5_000);
  a1!();
  a1!(); // releasing twice frees one slot only
  const handed = await waiting;
  t.ok(handed, 'a released slot goes to the first waiter');
  t.equal(slots.inUse('a:80'), 2, 'still 2 in use');
  a2!();
  t.ok(await late, 'the second waiter gets the next slot');
});

t.test('host slots: a waiter gives up only when its host finishes nothing for waitMs', async (t) => {
  const slots = new HostSlots(1);
  const busy = await slots.acquire('slow:80', 0);
  const started = performance.now();
  t.equal(await slots.acquire('slow:80', 30), undefined, 'no delivery finished in 30 ms: gave up');
  // Not before waitMs; 1 ms of slack: Node's timers round to whole milliseconds (CI saw a 29.x ms wait).
  t.ok(performance.now() - started >= 29, 'after waitMs');
  const abort = new AbortController();
  const aborted = slots.acquire('slow:80', 60_000, abort.signal);
  abort.abort();
  t.equal(await aborted, undefined, 'an aborted attempt stops waiting');
  busy!();
  t.equal(slots.inUse('slow:80'), 0, 'the aborted waiter took no slot');

  // A host finishing a delivery every 25 ms: the last of 12 waiters waits ~300 ms, past waitMs (200 ms).
  let current = (await slots.acquire('fast:80', 0))!;
  const queued = Array.from({ length: 12 }, () => slots.acquire('fast:80', 200));
  for (let i = 0; i < 12; i++) {
    await new Promise((r) => setTimeout(r, 25));
    const next = queued[i]!;
    current();
    current = (await next)!;
    t.ok(current, `waiter ${i + 1} served`);
  }
  current();
});

t.test('deferral bound: 10 deferrals or 1 h after the first, then rate_limited', async (t) => {
  let data = { payload: {}, meta: {} } as JobEnvelope<unknown>;
  const job = { get data() { return data; }, updateData: async (d: JobEnvelope<unknown>) => void (data = d) };
  const start = 1_700_000_000_000;
  for (let i = 1; i <= MAX_RATE_LIMIT_DEFERRALS; i++) {
    const next = await deferAfterRateLimit(job, 20_000, start + i);
    t.ok(next instanceof JobDeferredError && next.delayMs === 20_000 && next.kind === 'rate_limited', `deferral ${i}`);
  }
  t.same(data.meta.rateLimitDeferrals, { count: MAX_RATE_LIMIT_DEFERRALS, firstAt: start + 1 }, 'recorded in the job');
  const last = await deferAfterRateLimit(job, 20_000, start + 100);
  t.ok(last instanceof RateLimitExhaustedError, 'the 11th 429 fails the job');
  t.equal(failureReasonOf(last), 'rate_limited');

  data = { payload: {}, meta: { rateLimitDeferrals: { count: 2, firstAt: start } } };
  t.ok(await deferAfterRateLimit(job, 1_000, start + MAX_RATE_LIMIT_DEFERRAL_WINDOW_MS - 1) instanceof JobDeferredError, 'just under 1 h: deferred');
  t.ok(await deferAfterRateLimit(job, 1_000, start + MAX_RATE_LIMIT_DEFERRAL_WINDOW_MS) instanceof RateLimitExhaustedError, '1 h after the first: failed');
});

t.test('deliveries the worker cannot send are refused before any request', async (t) => {
  t.throws(() => parseDeliveryTarget({ url: 'http://x.test/', event: 'a\r\nb: c' }), UnrecoverableError);
  t.throws(() => parseDeliveryTarget({ url: 'http://x.test/', event: 'order paid' }), /not an HTTP token/);
  t.throws(() => parseDeliveryTarget({ url: '::not a url', event: 'e' }), /cannot be parsed/);
  t.throws(() => parseDeliveryTarget({ url: 'javascript:alert(1)', event: 'e' }), /not http or https/);
  t.equal(parseDeliveryTarget({ url: 'https://x.test:8443/h', event: "order.paid_v1!#$%&'*+-^`|~" }).host, 'x.test:8443');
});
