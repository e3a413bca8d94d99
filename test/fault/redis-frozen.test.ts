/**
 * Redis frozen (SIGSTOP 20 s, then SIGCONT). The TCP connection stays open and nothing answers —
 * the case an offline queue or a missing command timeout turns into hung requests.
 */
import t from 'tap';
import { assertOutage, redisOutage } from './outage';

t.test('Redis frozen 20 s (SIGSTOP/SIGCONT): POST answers 503 in < 1 s; afterwards jobs are processed with no restart', async (t) => {
  const r = await redisOutage(
    t,
    20_000,
    async (redis) => redis.signal('SIGSTOP'),
    async (redis) => redis.signal('SIGCONT'),
  );
  assertOutage(t, r, 'Redis frozen 20 s');
});
