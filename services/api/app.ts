/**
 * buildApp(opts): the whole API as a Fastify instance, nothing listening. server.ts listens; tests use
 * app.inject(). Third-party plugins (plugins/external) are configured apart from ours (plugins/app).
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify';
import type { Logger } from 'pino';
import type { ApiConfig, Config } from '../common/config';
import type { MetricsRegistry } from '../common/telemetry/registry';
import { createLogger } from '../common/logger';
import { clientErrorHandler } from './client-errors';
import configPlugin from './plugins/app/config';
import telemetryPlugin from './plugins/app/telemetry';
import errorHandlerPlugin from './plugins/app/error-handler';
import jsonBodyPlugin from './plugins/app/json-body';
import queuesPlugin from './plugins/app/queues';
import authPlugin from './plugins/app/auth';
import adminAuditPlugin from './plugins/app/admin-audit';
import rateLimitPlugin from './plugins/external/rate-limit';
import underPressurePlugin from './plugins/external/under-pressure';
import healthRoutes from './routes/health';
import jobRoutes from './routes/jobs';
import adminRoutes from './routes/admin';
import queueCompatRoutes from './routes/queue-compat';
import consoleRoutes from './routes/console';

export interface BuildAppOptions {
  config: Config;
  /** Registry the API's metrics are registered on (served by server.ts on METRICS_PORT). */
  registry?: MetricsRegistry;
  logger?: Logger;
}

/**
 * TRUST_PROXY's value as Fastify's option. Fastify 5 trusts no hop for a bare number (it cannot check the
 * immediate peer), so a hop count becomes proxy-addr's hop function: the first `hops` hops (the socket's peer
 * first) are trusted. That is only sound when the API is reachable through those proxies alone — docs/security.md.
 */
function fastifyTrustProxy(trust: ApiConfig['trustProxy']): false | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trust !== 'number') return trust;
  return (_address, hop) => hop < trust;
}

export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  const { config } = opts;
  // Typed as Fastify's logger interface (which pino implements) so the instance is the plain FastifyInstance.
  const logger: FastifyBaseLogger = opts.logger ?? createLogger({ name: 'api', level: config.logLevel });
  const app = Fastify({
    loggerInstance: logger,
    // Access lines would be the API's biggest CPU cost at thousands of req/s; the same facts are in
    // http_request_duration_seconds and the request spans. Errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.api.bodyLimitBytes,
    requestTimeout: config.api.requestTimeoutMs,
    connectionTimeout: config.api.connectionTimeoutMs,
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    // request.ip is the client only through trusted hops (TRUST_PROXY): failed-auth counts and audit lines use it.
    trustProxy: fastifyTrustProxy(config.api.trustProxy),
    // Malformed requests Node rejects before routing (400, 408, 414, 431) still get the API's error shape.
    clientErrorHandler,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    // Node checks request timeouts only every connectionsCheckingInterval (30 s by default) and lets headers take
    // 60 s: without these, a slowloris client holds a socket far past API_REQUEST_TIMEOUT_MS.
    http: {
      headersTimeout: Math.min(config.api.requestTimeoutMs, 60_000),
      connectionsCheckingInterval: Math.min(1_000, Math.ceil(config.api.requestTimeoutMs / 2)),
    },
  });

  await app.register(configPlugin, { config });
  await app.register(telemetryPlugin, { registry: opts.registry });
  // In this order: each plugin's `dependencies` name plugins registered before it.
  const plugins = [errorHandlerPlugin, jsonBodyPlugin, underPressurePlugin, queuesPlugin, authPlugin, adminAuditPlugin, rateLimitPlugin];
  for (const plugin of plugins) await app.register(plugin);
  for (const routes of [healthRoutes, jobRoutes, adminRoutes, queueCompatRoutes, consoleRoutes]) await app.register(routes);
  return app;
}
