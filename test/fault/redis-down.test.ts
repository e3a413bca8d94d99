/** Redis down (process killed) for 20 s — fast 503s during, processing resumes after, no restarts. */
import t from 'tap';
import { assertOutage, redisOutage } from './outage';

t.test('Redis down 20 s: POST answers 503 in < 1 s; afterwards jobs are processed with no restart', async (t) => {
  const r = await redisOutage(
    t,
    20_000,
    async (redis) => {
      const exited = new Promise((resolve) => redis.process.once('exit', resolve));
      redis.signal('SIGKILL');
      await exited;
    },
    (redis) => redis.restart(),
  );
  assertOutage(t, r, 'Redis down 20 s');
});
