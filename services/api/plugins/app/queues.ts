/**
 * Producer side of BullMQ: one Queue per catalog entry on a fail-fast Redis connection (see common/redis.ts),
 * the fault store, and their shutdown. Job options (attempts, backoff, retention) come from the catalog through
 * common/job-options.ts.
 *
 * A BullMQ Queue sets itself up once, at construction: its RedisConnection runs init() — wait for the connection,
 * then one INFO (the version check) — and keeps that promise as the client every later command awaits. If that
 * INFO fails (it times out after the producer's 400 ms when Redis freezes or the CPU starves while the API boots;
 * "Connection is closed" when the socket drops in between), the rejection is kept for the life of the Queue:
 * every add rejects with it at once, Redis healthy or not. So each queue's set-up is watched here: a Queue whose
 * set-up rejected is built again (backing off while it keeps failing) and the broken one closed; until its
 * replacement is ready the queue is reported by `unusableQueues()` (→ /readyz 503), and an operation that meets the
 * stored set-up error is answered 503 REDIS_UNAVAILABLE naming the queue (withRedis), whatever that error is.
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
import { isRedisError, isRedisOom, notReplicated, queueNotSetUp, redisFull, redisUnavailable } from '../../errors';

declare module 'fastify' {
  interface FastifyInstance {
    redis: RedisClient;
    /**
     * Runs a Redis-backed operation: 503 REDIS_UNAVAILABLE at once when the connection is not up (BullMQ would
     * wait for it), when the operation fails because Redis is unreachable or frozen, and when it used a Queue
     * whose set-up failed (whatever the error: a NOPERM too); 503 REDIS_FULL when Redis refuses the write for memory.
     */
    withRedis<T>(operation: () => Promise<T>): Promise<T>;
    /**
     * The current Queue of each catalog queue: read it at use, never keep it — a Queue whose set-up failed is
     * replaced (see the top of this file).
     */
    queues: Record<QueueName, Queue>;
    /** Why each queue that cannot take jobs right now cannot (its Queue not set up yet, or being rebuilt); [] when all can. */
    unusableQueues(): string[];
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

/** Delay before building again a Queue whose set-up failed: doubled per consecutive failure, up to the maximum. */
const REBUILD_MIN_MS = 250;
const REBUILD_MAX_MS = 5_000;

/** One catalog queue's current Queue and the state of its set-up. */
interface QueueSlot {
  queue: Queue;
  state: 'initializing' | 'ready' | 'failed';
  /** The last set-up failure's message. */
  error?: string;
  /** Consecutive set-up failures (0 once a Queue is ready). */
  failures: number;
  rebuildTimer?: NodeJS.Timeout;
  /** Resolves the first time a Queue of this slot is ready (the bounded wait at boot). */
  firstReady: Promise<void>;
  markFirstReady: () => void;
}

export default fp(
  async function queues(app: FastifyInstance) {
    const redis = createProducerConnection(app.config.redis);
    redis.on('error', (err: Error) => app.log.warn({ err: err.message }, 'redis connection error'));
    let closing = false;
    const newQueue = (name: QueueName): Queue => {
      const q = new Queue(name, {
        connection: redis,
        prefix: queueKeyPrefix(app.config, name),
        defaultJobOptions: jobOptionsFor(name, app.config.failedRetention),
      });
      q.on('error', (err) => app.log.warn({ err: err.message, queue: name }, 'queue error'));
      return q;
    };
    /** The record handed out as app.queues: its entries are replaced in place when a Queue is rebuilt. */
    const queues = {} as Record<QueueName, Queue>;
    const slots = {} as Record<QueueName, QueueSlot>;
    // A failed Queue rejects every operation with the very error its set-up failed with: withRedis knows it by that.
    const setUpErrors = new WeakMap<Error, QueueName>();

    // Follows one Queue's set-up: ready, or failed → a new Queue after a delay (only while it is still the slot's).
    const watch = (name: QueueName, q: Queue) => {
      const slot = slots[name];
      q.waitUntilReady().then(
        () => {
          if (slot.queue !== q) return;
          if (slot.failures > 0) app.log.info({ queue: name, failures: slot.failures }, 'queue set up again: accepting jobs');
          Object.assign(slot, { state: 'ready', error: undefined, failures: 0 });
          slot.markFirstReady();
        },
        (err: Error) => {
          // Registered as the Queue is built, so this runs before any operation's rejection reaches withRedis.
          if (err instanceof Error) setUpErrors.set(err, name);
          if (slot.queue !== q || closing) return;
          slot.failures += 1;
          Object.assign(slot, { state: 'failed', error: err.message });
          const delayMs = Math.min(REBUILD_MIN_MS * 2 ** (slot.failures - 1), REBUILD_MAX_MS);
          app.log.warn({ queue: name, err: err.message, failures: slot.failures, rebuildInMs: delayMs }, 'queue set-up failed: building the queue again');
          slot.rebuildTimer = setTimeout(() => rebuild(name), delayMs);
          slot.rebuildTimer.unref();
        },
      );
    };
    const rebuild = (name: QueueName) => {
      if (closing) return;
      const slot = slots[name];
      const broken = slot.queue;
      const q = newQueue(name);
      Object.assign(slot, { queue: q, state: 'initializing', rebuildTimer: undefined });
      queues[name] = q;
      watch(name, q);
      // Its set-up has already failed, so closing it sends nothing and drops its listeners from the shared connection.
      broken.close().catch(() => undefined);
    };
    for (const name of QUEUE_NAMES) {
      let markFirstReady!: () => void;
      const firstReady = new Promise<void>((resolve) => (markFirstReady = resolve));
      const q = newQueue(name);
      queues[name] = q;
      slots[name] = { queue: q, state: 'initializing', failures: 0, firstReady, markFirstReady };
      watch(name, q);
    }

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
    // schema compilation can block the event loop long enough to time it out (a failed one is built again, above).
    // Bounded and not fatal, like the wait above.
    if (redis.status === 'ready') {
      await Promise.race([
        Promise.all(Object.values(slots).map((slot) => slot.firstReady)),
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
        const failedQueue = err instanceof Error ? setUpErrors.get(err) : undefined;
        if (failedQueue) throw queueNotSetUp(failedQueue, err as Error);
        if (err instanceof ReplicationTimeoutError) throw notReplicated(err);
        if (isRedisOom(err)) throw redisFull();
        throw isRedisError(err) ? redisUnavailable(err) : err;
      } finally {
        clearTimeout(timer);
      }
    });
    app.decorate('queues', queues);
    app.decorate('unusableQueues', () =>
      QUEUE_NAMES.flatMap((name) => {
        const slot = slots[name];
        if (slot.state === 'ready') return [];
        if (slot.failures === 0) return [`queue "${name}" is not set up yet (its BullMQ Queue is waiting for Redis)`];
        const failed = `its BullMQ set-up failed ${slot.failures} time(s) in a row (last: ${slot.error})`;
        return [`queue "${name}" cannot take jobs: ${failed}; ${slot.state === 'failed' ? 'building it again' : 'being set up again'}`];
      }),
    );
    const replication = new ReplicationGate(redis, app.config.redis.replicaAcks, app.config.redis.waitTimeoutMs);
    // Any key of the queue names its slot, hence the node (and connection) that ran the add.
    app.decorate('confirmReplicated', (queue: QueueName) => replication.confirm(queue, queues[queue].toKey('id')));
    app.decorate('faultStore', new FaultStore(redis, app.config.queuePrefix));
    const circuitStore = new CircuitStore(redis, app.config.queuePrefix, OUTBOUND_POLICY.breaker);
    app.decorate('circuitStore', circuitStore);
    app.decorate('queueSnapshot', new CachedQueueSnapshot(queues, (op) => app.withRedis(op), circuitStore));
    app.decorate('idempotency', new IdempotencyStore(redis, (queue) => queueKeyPrefix(app.config, queue), app.config.api.idempotencyTtlS, app.config.queuePrefix));

    app.addHook('onClose', async () => {
      closing = true;
      for (const slot of Object.values(slots)) clearTimeout(slot.rebuildTimer);
      // With Redis down, Queue#close would wait for a connection that never comes: just drop the socket.
      if (redis.status !== 'ready') {
        redis.disconnect();
        return;
      }
      // Close each queue only once its connection wrapper has finished initialising: BullMQ drops its listeners on
      // close, so an init command failing afterwards (a timeout on a loaded host) would be an unhandled 'error'.
      const closed = Promise.all(
        Object.values(queues).map((q) =>
          q.waitUntilReady().then(() => q.close(), () => q.close()).catch(() => undefined),
        ),
      );
      await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 2_000).unref())]);
      await redis.quit().catch(() => redis.disconnect());
    });
  },
  { name: 'queues', dependencies: ['config'] },
);
