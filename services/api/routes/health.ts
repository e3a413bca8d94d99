/** Probes: /healthz = the process answers; /readyz = Redis reachable with a safe eviction policy (503 says why). */
import type { FastifyInstance } from 'fastify';
import { assertNoEviction, EvictionPolicyError } from '../../common/redis';
import { errorBody } from '../errors';

export default async function healthRoutes(app: FastifyInstance) {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    try {
      await app.redis.ping();
      await assertNoEviction(app.redis);
      return { status: 'ready' };
    } catch (err) {
      const code = err instanceof EvictionPolicyError ? 'REDIS_EVICTION_POLICY_UNSAFE' : 'REDIS_UNAVAILABLE';
      return reply.status(503).header('retry-after', '1').send(errorBody(503, code, (err as Error).message));
    }
  });
}
