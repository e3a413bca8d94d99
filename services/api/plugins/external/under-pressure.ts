/**
 * Load shedding (@fastify/under-pressure): when the event loop is delayed past API_MAX_EVENT_LOOP_DELAY_MS (or
 * RSS past API_MAX_RSS_BYTES) new requests get 503 + Retry-After at once, instead of queueing behind work the
 * process cannot finish in time. Counted as api_requests_rejected_total{reason="overloaded"} by the error handler.
 */
import fp from 'fastify-plugin';
import underPressure from '@fastify/under-pressure';
import type { FastifyInstance } from 'fastify';

export default fp(
  async function loadShedding(app: FastifyInstance) {
    const { maxEventLoopDelayMs, maxRssBytes } = app.config.api.loadShedding;
    if (maxEventLoopDelayMs === 0 && maxRssBytes === 0) return;
    if (maxEventLoopDelayMs > 0) {
      // under-pressure samples the loop every 250 ms; requests that queued up behind a block can run before its
      // next sample. A 50 ms heartbeat catches them: if it has not ticked for longer than the limit, the loop
      // was blocked just now, and those requests are shed too.
      const beatMs = 50;
      let lastBeat = performance.now();
      let heartbeat: NodeJS.Timeout | undefined;
      // Started once the app is ready: boot work (plugin loading) must not count as a blocked loop.
      app.addHook('onReady', async () => {
        lastBeat = performance.now();
        heartbeat = setInterval(() => (lastBeat = performance.now()), beatMs);
        heartbeat.unref();
      });
      app.addHook('onClose', async () => clearInterval(heartbeat));
      app.addHook('onRequest', async (_request, reply) => {
        if (performance.now() - lastBeat - beatMs > maxEventLoopDelayMs) {
          reply.header('retry-after', '1');
          throw Object.assign(new Error('event loop blocked'), { code: 'FST_UNDER_PRESSURE', statusCode: 503 });
        }
      });
    }
    await app.register(underPressure, {
      maxEventLoopDelay: maxEventLoopDelayMs,
      maxRssBytes,
      retryAfter: 1,
      sampleInterval: 250,
      exposeStatusRoute: false,
    });
  },
  { name: 'load-shedding', dependencies: ['config'] },
);
