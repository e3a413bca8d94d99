/**
 * Producer side of BullMQ: one Queue per catalog entry on a fail-fast Redis connection (see common/redis.ts),
 * the fault store, and their shutdown. Job options (attempts, backoff, retention) come from the catalog through
 * common/job-options.ts.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { Queue } from 'bullmq';
import { QUEUE_NAMES, type QueueName } from '../../../common/queue-catalog';
import { jobOptionsFor } from '../../../common/job-options';
import { createProducerConnection, type RedisClient, ReplicationTimeoutError } from '../../../common/redis';
import { queueKeyPrefix } from '../../../common/queue-keys';
import { FaultStore } from '../../../common/faults';
import { CircuitStore } from '../../../common/outbound-circuits';
import { OUTBOUND_POLICY } from '../../../common/queue-catalog';
import { IdempotencyStore } from '../../idempotency';
import { CachedQueueSnapshot } from '../../queue-snapshot';
import { ReplicationGate } from '../../replication-gate';
import { isRedisError, isRedisOom, notReplicated, redisFull, redisUnavailable } from '../../errors';

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisClient;
    /**
     * Runs a Redis-backed operation: 503 REDIS_UNAVAILABLE at once when the connection is not up (BullMQ would
     * wait for it), and when the operation fails because Redis is unreachable or frozen; 503 REDIS_FULL when
     * Redis refuses the write for memory.
     */
    withRedis<T>(operation: () => Promise<T>): Promise<T>;
    queues: Record<QueueName, Queue>;
    /**
     * After an add: waits (Redis WAIT on the queue's node) until the replicas the queue's durability asks for hold
     * the write, else throws (→ 503 REDIS_NOT_REPLICATED); a no-op for a queue that asks none, or for the
     * catalog default on a node without replicas (../../replication-gate.ts). Resolves to the replicas waited for.
     */
    confirmReplicated(queue: QueueName): Promise<number>;
    faultStore: FaultStore;
    /** The workers' shared circuit state (admin API, /queue/status). */
    circuitStore: CircuitStore;
    idempotency: IdempotencyStore;
    /** Queue counts and latencies for the guide's JSON endpoints, read from Redis at most once per second. */
    queueSnapshot: CachedQueueSnapshot;
  }
}

/**
 * One request's Redis work ends within this, whatever it is made of: each command has its own 400 ms timeout,
 * but several in a row (add, then WAIT; or commands queued behind a WAIT on the same node connection) could add
 * up past the API's 1 s promise. Rate limiter (200 ms) + this stay under a second.
 */
const OPERATION_DEADLINE_MS = 600;

export default fp(
  async function queues(app: FastifyInstance) {
    const redis = createProducerConnection(app.config.redis);
    redis.on('error', (err: Error) => app.log.warn({ err: err.message }, 'redis connection error'));
    const queues = Object.fromEntries(
      QUEUE_NAMES.map((name) => [
        name,
        new Queue(name, {
          connection: redis,
          prefix: queueKeyPrefix(app.config, name),
          defaultJobOptions: jobOptionsFor(name, app.config.failedRetention),
        }),
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
    // Each Queue's own set-up (an INFO through the 400 ms command timeout) finishes here too, before the routes'
    // schema compilation can block the event loop long enough to time it out: a Queue whose set-up failed stays
    // failed. Bounded and not fatal, like the wait above.
    if (redis.status === 'ready') {
      await Promise.race([
        Promise.all(Object.values(queues).map((q) => q.waitUntilReady().catch(() => undefined))),
        new Promise((resolve) => setTimeout(resolve, 3_000).unref()),
      ]);
    }

    app.decorate<RedisClient>('redis', redis);
    app.decorate('withRedis', async <T>(operation: () => Promise<T>): Promise<T> => {
      if (redis.status !== 'ready') throw redisUnavailable(new Error(`connection is ${redis.status}`));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`Command timed out: no answer within ${OPERATION_DEADLINE_MS} ms`)), OPERATION_DEADLINE_MS);
      });
      try {
        return await Promise.race([operation(), deadline]);
      } catch (err) {
        if (err instanceof ReplicationTimeoutError) throw notReplicated(err);
        if (isRedisOom(err)) throw redisFull();
        throw isRedisError(err) ? redisUnavailable(err) : err;
      } finally {
        clearTimeout(timer);
      }
    });
    app.decorate('queues', queues);
    const replication = new ReplicationGate(redis, app.config.redis.replicaAcks, app.config.redis.waitTimeoutMs);
    // Any key of the queue names its slot, hence the node (and connection) that ran the add.
    app.decorate('confirmReplicated', (queue: QueueName) => replication.confirm(queue, queues[queue].toKey('id')));
    app.decorate('faultStore', new FaultStore(redis, app.config.queuePrefix));
    const circuitStore = new CircuitStore(redis, app.config.queuePrefix, OUTBOUND_POLICY.breaker);
    app.decorate('circuitStore', circuitStore);
    app.decorate('queueSnapshot', new CachedQueueSnapshot(queues, (op) => app.withRedis(op), circuitStore));
    app.decorate('idempotency', new IdempotencyStore(redis, (queue) => queueKeyPrefix(app.config, queue), app.config.api.idempotencyTtlS));

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
