/**
 * Probes: /healthz = the process answers; /readyz = Redis reachable, with a safe eviction policy, and accepting
 * writes, and every queue's BullMQ Queue set up (503 says which is wrong). The write check is a real write — a
 * short-lived key — because that is what Redis refuses at maxmemory under noeviction; the message carries used/max
 * memory from INFO to name the cause. A queue whose set-up failed (plugins/app/queues.ts rebuilds it) answers its
 * adds with 503 REDIS_UNAVAILABLE, so /readyz says REDIS_UNAVAILABLE too, naming the queue.
 */
import type { FastifyInstance } from 'fastify';
import { assertNoEviction, EvictionPolicyError, isCluster } from '../../common/redis';
import { QUEUE_NAMES } from '../../common/queue-catalog';
import { errorBody, isRedisOom } from '../errors';

function memoryFigures(info: string): string {
  const field = (name: string) => new RegExp(`^${name}:(\\S+)`, 'm').exec(info)?.[1];
  return `used_memory ${field('used_memory_human') ?? '?'}, maxmemory ${field('maxmemory_human') ?? '?'}`;
}

export default async function healthRoutes(app: FastifyInstance) {
  // On a cluster each master refuses writes on its own: one probe per queue, in that queue's slot (its hash tag),
  // so every master holding a queue is checked.
  const probeKeys = isCluster(app.redis)
    ? QUEUE_NAMES.map((q) => app.queues[q].toKey('api-readyz-probe'))
    : [`${app.config.queuePrefix}:api-readyz-probe`];

  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    try {
      await app.redis.ping();
      // Bounded: a probe must answer, and while a cluster is down ioredis never reports it ready (no limit = a hang).
      await assertNoEviction(app.redis, { readyTimeoutMs: 1_000 });
      for (const key of probeKeys) await app.redis.set(key, '1', 'PX', 10_000);
    } catch (err) {
      if (isRedisOom(err)) {
        const info = await app.redis.info('memory').catch(() => '');
        const message = `Redis is out of memory and refuses writes (${memoryFigures(info)}): free memory or raise maxmemory`;
        return reply.status(503).header('retry-after', '5').send(errorBody(503, 'REDIS_FULL', message));
      }
      const code = err instanceof EvictionPolicyError ? 'REDIS_EVICTION_POLICY_UNSAFE' : 'REDIS_UNAVAILABLE';
      return reply.status(503).header('retry-after', '1').send(errorBody(503, code, (err as Error).message));
    }
    const unusable = app.unusableQueues();
    if (unusable.length > 0) return reply.status(503).header('retry-after', '1').send(errorBody(503, 'REDIS_UNAVAILABLE', unusable.join('; ')));
    return { status: 'ready' };
  });
}
