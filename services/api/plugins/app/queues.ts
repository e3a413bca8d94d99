/**
 * Producer side of BullMQ: one Queue per catalog entry on a fail-fast Redis connection (see common/redis.ts),
 * the fault store, and their shutdown. Job options (attempts, backoff, retention) come from the catalog through
 * common/job-options.ts.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { QUEUE_NAMES, type QueueName } from '../../../common/queue-catalog';
import { jobOptionsFor } from '../../../common/job-options';
import { createProducerConnection } from '../../../common/redis';
import { FaultStore } from '../../../common/faults';
import { IdempotencyStore } from '../../idempotency';
import { CachedQueueSnapshot } from '../../queue-snapshot';
import { isRedisError, isRedisOom, redisFull, redisUnavailable } from '../../errors';

declare module 'fastify' {
  interface FastifyInstance {
    redis: Redis;
    /**
     * Runs a Redis-backed operation: 503 REDIS_UNAVAILABLE at once when the connection is not up (BullMQ would
     * wait for it), and when the operation fails because Redis is unreachable or frozen; 503 REDIS_FULL when
     * Redis refuses the write for memory.
     */
    withRedis<T>(operation: () => Promise<T>): Promise<T>;
    queues: Record<QueueName, Queue>;
    faultStore: FaultStore;
    idempotency: IdempotencyStore;
    /** Queue counts and latencies for the guide's JSON endpoints, read from Redis at most once per second. */
    queueSnapshot: CachedQueueSnapshot;
  }
}

export default fp(
  async function queues(app: FastifyInstance) {
    const redis = createProducerConnection(app.config.redisUrl);
    redis.on('error', (err) => app.log.warn({ err: err.message }, 'redis connection error'));
    const queues = Object.fromEntries(
      QUEUE_NAMES.map((name) => [
        name,
        new Queue(name, { connection: redis, prefix: app.config.queuePrefix, defaultJobOptions: jobOptionsFor(name, app.config.failedRetention) }),
      ]),
    ) as Record<QueueName, Queue>;
    for (const q of Object.values(queues)) q.on('error', (err) => app.log.warn({ err: err.message, queue: q.name }, 'queue error'));

    // The fail-fast connection refuses commands until connected: give it a moment at boot (without failing:
    // a Redis that is down now is reported by /readyz and answered with 503s until it is back).
    if (redis.status !== 'ready') {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 3_000);
        redis.once('ready', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }

    app.decorate('redis', redis);
    app.decorate('withRedis', async <T>(operation: () => Promise<T>): Promise<T> => {
      if (redis.status !== 'ready') throw redisUnavailable(new Error(`connection is ${redis.status}`));
      try {
        return await operation();
      } catch (err) {
        if (isRedisOom(err)) throw redisFull();
        throw isRedisError(err) ? redisUnavailable(err) : err;
      }
    });
    app.decorate('queues', queues);
    app.decorate('faultStore', new FaultStore(redis, app.config.queuePrefix));
    app.decorate('queueSnapshot', new CachedQueueSnapshot(queues, (op) => app.withRedis(op)));
    app.decorate('idempotency', new IdempotencyStore(redis, app.config.queuePrefix, app.config.api.idempotencyTtlS));

    app.addHook('onClose', async () => {
      // With Redis down, Queue#close would wait for a connection that never comes: just drop the socket.
      if (redis.status !== 'ready') {
        redis.disconnect();
        return;
      }
      // Close each queue only once its connection wrapper has finished initialising: BullMQ drops its listeners on
      // close, so an init command failing afterwards (a timeout on a loaded host) would be an unhandled 'error'.
      const closing = Promise.all(
        Object.values(queues).map((q) =>
          q.waitUntilReady().then(() => q.close(), () => q.close()).catch(() => undefined),
        ),
      );
      await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
      await redis.quit().catch(() => redis.disconnect());
    });
  },
  { name: 'queues', dependencies: ['config'] },
);
