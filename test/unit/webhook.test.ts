import t from 'tap';
import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhook } from '../../services/worker/webhook/signature';
import { isPublicAddress } from '../../services/worker/webhook/ssrf-guard';
import { isForbiddenAddress, webhookTargetProblem } from '../../services/common/webhook-target';
import { WebhookClient } from '../../services/worker/webhook/client';

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
  const c = new WebhookClient({ signingSecret: 'x'.repeat(16), allowPrivate: false, maxRetryAfterMs: 60_000 });
  t.equal(c.retryAfterMs('3'), 3000);
  t.equal(c.retryAfterMs('0'), 1000, 'lower bound');
  t.equal(c.retryAfterMs('86400'), 60_000, 'upper bound');
  t.equal(c.retryAfterMs(undefined), 5000, 'default when absent');
  const inTen = new Date(Date.now() + 10_000).toUTCString();
  t.ok(Math.abs(c.retryAfterMs(inTen) - 10_000) < 1500, 'HTTP date');
  await c.close();
});
