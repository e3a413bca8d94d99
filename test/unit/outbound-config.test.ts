/** OUTBOUND_RATE_LIMITS parsing (services/common/config/outbound.ts): overrides over the catalog's quotas, bad values named. */
import t from 'tap';
import { parseConfig } from '../../services/common/config';
import { OUTBOUND_POLICY } from '../../services/common/queue-catalog';

const base = { REDIS_URL: 'redis://127.0.0.1:6379', API_KEYS: 'k'.repeat(20) };

t.test('defaults are the catalog quotas', async (t) => {
  t.same(parseConfig(base).outboundQuotas, OUTBOUND_POLICY.quotas);
});

t.test('entries override their dependency only, with s/m/h units', async (t) => {
  const q = parseConfig({ ...base, OUTBOUND_RATE_LIMITS: 'webhook_host=20/s, notification_provider=600/m,payment_provider=10000/h' }).outboundQuotas;
  t.same(q.webhook_host, { limit: 20, windowMs: 1_000 });
  t.same(q.notification_provider, { limit: 600, windowMs: 60_000 });
  t.same(q.payment_provider, { limit: 10_000, windowMs: 3_600_000 });
  t.same(parseConfig({ ...base, OUTBOUND_RATE_LIMITS: 'webhook_host=5/m' }).outboundQuotas.payment_provider, OUTBOUND_POLICY.quotas.payment_provider);
});

t.test('a bad value is a configuration error naming the variable and the entry', async (t) => {
  for (const [value, why] of [
    ['webhook_host=20/d', /malformed/],
    ['webhook_host=20', /malformed/],
    ['stripe=5/s', /unknown dependency "stripe"/],
    ['payment_provider=0/s', /between 1 and 1000000/],
    ['payment_provider=5/s,payment_provider=6/s', /repeats/],
  ] as const) {
    t.throws(() => parseConfig({ ...base, OUTBOUND_RATE_LIMITS: value }), { name: 'ConfigError', message: /OUTBOUND_RATE_LIMITS/ }, value);
    t.throws(() => parseConfig({ ...base, OUTBOUND_RATE_LIMITS: value }), { message: why }, `${value}: says why`);
  }
});
