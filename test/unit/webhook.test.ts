import t from 'tap';
import { createHmac } from 'node:crypto';
import { signWebhook, verifyWebhook } from '../../services/worker/webhook/signature';
import { isPublicAddress } from '../../services/worker/webhook/ssrf-guard';
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
