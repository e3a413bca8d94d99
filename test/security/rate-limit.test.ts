/**
 * The per-key rate limit is shared by API replicas through Redis. Two API processes, limit N per
 * window: N requests spread across both are accepted, request N+1 gets 429 on either replica, with Retry-After,
 * the x-ratelimit-* headers and the error shape, counted as api_requests_rejected_total{reason="rate_limited"}.
 * Another key is not affected (the limit is per key), and nothing past the limit was enqueued.
 */
import t from 'tap';
import { baseEnv, startApi, API_KEY } from '../helpers/services';
import { deletePrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { call, scrape, valueOf } from '../helpers/http';
import { payment, paymentKey, queueHandle } from '../fault/lib';

const N = 20;
const OTHER_KEY = 'second-key-abcdefghijklmnop';

t.test('rate limit shared by two API processes: request N+1 across both gets 429', async (t) => {
  const prefix = uniquePrefix('ratelimit');
  t.teardown(() => deletePrefix(SHARED_REDIS_URL, prefix));
  const env = baseEnv(SHARED_REDIS_URL, prefix, {
    API_KEYS: `${API_KEY},${OTHER_KEY}`,
    API_RATE_LIMIT_MAX: String(N),
    API_RATE_LIMIT_WINDOW_MS: '60000',
  });
  const [a, b] = await Promise.all([startApi(env), startApi(env)]);
  t.teardown(() => Promise.all([a.stop('SIGKILL'), b.stop('SIGKILL')]));
  const queue = queueHandle(t, SHARED_REDIS_URL, prefix);
  const post = (url: string, i: number, headers: Record<string, string> = {}) =>
    call('POST', `${url}/v1/queues/payments/jobs`, payment(i, 'rl'), { ...paymentKey(i, 'rl'), ...headers });

  const within = [];
  for (let i = 0; i < N; i++) within.push(await post(i % 2 === 0 ? a.url! : b.url!, i));
  t.same(within.map((r) => r.status), Array(N).fill(202), `${N} requests alternating across both replicas accepted`);
  t.equal(within[N - 1]!.headers['x-ratelimit-remaining'], '0', 'last one leaves 0 remaining');

  const overA = await post(a.url!, N);
  const overB = await post(b.url!, N + 1);
  for (const [name, r] of [['A', overA], ['B', overB]] as const) {
    t.equal(r.status, 429, `request over the limit on replica ${name}: 429`);
    t.match(r.body, { statusCode: 429, code: 'RATE_LIMITED', error: 'Too Many Requests', message: /rate limit of 20 requests/ }, 'error shape');
    t.ok(Number(r.headers['retry-after']) > 0, `Retry-After ${String(r.headers['retry-after'])} s`);
    t.equal(r.headers['x-ratelimit-limit'], String(N), 'x-ratelimit-limit');
    t.equal(r.headers['x-ratelimit-remaining'], '0', 'x-ratelimit-remaining');
    t.ok(r.headers['x-ratelimit-reset'] !== undefined, 'x-ratelimit-reset');
  }
  const other = await post(a.url!, 1000, { authorization: `Bearer ${OTHER_KEY}` });
  t.equal(other.status, 202, 'another key is not limited by the first one');

  const countedA = valueOf(await scrape(a.metricsUrl), 'api_requests_rejected_total', { reason: 'rate_limited' });
  const countedB = valueOf(await scrape(b.metricsUrl), 'api_requests_rejected_total', { reason: 'rate_limited' });
  t.equal(countedA + countedB, 2, `each 429 counted once (A ${countedA}, B ${countedB})`);
  const counts = await queue.getJobCounts('waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed');
  const enqueued = Object.values(counts).reduce((x, y) => x + y, 0);
  t.equal(enqueued, N + 1, `${N} + 1 (other key) jobs enqueued, none past the limit`);
  t.comment(`limit ${N}/min per key across 2 API processes: requests 1-${N} alternating → 202, request ${N + 1} → 429 on A and on B (Retry-After ${String(overA.headers['retry-after'])} s), ${countedA + countedB} counted rate_limited; other key 202`);
});
