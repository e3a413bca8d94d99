/**
 * Per-key rate limit (@fastify/rate-limit) with its counters in Redis, so the limit holds across every API
 * replica. Keyed by the key id the guard set (request.keyId, plugins/app/auth.ts); client IP on routes without a
 * guard. The limiter's hook is added to each route after the route's scope guard, so the key was checked (and
 * hashed, once) before the limiter reads its id, and a wrong key is answered 401 without counting here.
 * Answers 429 with Retry-After and the x-ratelimit-* headers; each refusal is counted in
 * api_requests_rejected_total{reason="rate_limited"}.
 * If Redis is unreachable the limiter steps aside (skipOnError) — the enqueue itself then answers 503.
 */
import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance } from 'fastify';
import { errorBody } from '../../errors';
import { createProducerConnection } from '../../../common/redis';

export default fp(
  async function rateLimitPlugin(app: FastifyInstance) {
    const { max, windowMs } = app.config.api.rateLimit;
    if (max === 0) return;
    const limiterRedis = createProducerConnection(app.config.redis, { commandTimeout: 200 });
    limiterRedis.on('error', () => undefined); // reported by the main producer connection
    app.addHook('onClose', async () => limiterRedis.disconnect());
    await app.register(rateLimit, {
      global: true,
      max,
      timeWindow: windowMs,
      // Its own connection with a shorter command timeout: a frozen Redis costs the limiter 200 ms (then it
      // steps aside) and the enqueue 400 ms, so the client still gets its 503 within a second.
      redis: limiterRedis,
      nameSpace: `${app.config.queuePrefix}:api-rate-limit:`,
      skipOnError: true,
      // Probes are not client traffic; the guide's anonymous endpoints (/queue/…) are limited per address.
      allowList: (request) => request.url === '/healthz' || request.url === '/readyz',
      keyGenerator: (request) => (request.keyId ? `key:${request.keyId}` : `ip:${request.ip}`),
      onExceeded: () => app.apiMetrics.rejected('rate_limited'),
      errorResponseBuilder: (_request, ctx) => ({
        ...errorBody(429, 'RATE_LIMITED', `rate limit of ${ctx.max} requests per ${ctx.after} exceeded for this key`),
      }),
    });
  },
  { name: 'rate-limit', dependencies: ['config', 'queues', 'telemetry', 'auth'] },
);
