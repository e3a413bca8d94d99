/**
 * The API process: the only place that listens. Refuses to start on an evicting Redis; serves metrics on
 * METRICS_PORT; on SIGTERM/SIGINT closes gracefully (close-with-grace): in-flight requests finish, new ones get
 * 503 (return503OnClosing), then Redis connections and the trace exporter are flushed.
 */
import closeWithGrace from 'close-with-grace';
import { loadConfig } from '../common/config';
import { createLogger } from '../common/logger';
import { assertNoEviction } from '../common/redis';
import { createRegistry } from '../common/telemetry/registry';
import { startMetricsServer, type MetricsServer } from '../common/telemetry/metrics-server';
import { shutdownTracing } from '../common/telemetry/tracing';
import { buildApp } from './app';

const DEFAULT_METRICS_PORT = 9464;

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger({ name: 'api', level: config.logLevel });
  const registry = createRegistry();
  const app = await buildApp({ config, registry, logger });

  try {
    await app.redis.ping().catch(() => {
      const where = config.redis.clusterNodes.length
        ? `Redis Cluster ${config.redis.clusterNodes.map((n) => `${n.host}:${n.port}`).join(',')}`
        : `Redis at ${config.redis.url.replace(/\/\/[^@]*@/, '//***@')}`;
      throw new Error(`cannot reach ${where}`);
    });
    await assertNoEviction(app.redis);
  } catch (err) {
    logger.fatal({ err }, (err as Error).message);
    await app.close().catch(() => undefined);
    process.exit(1);
  }

  let metricsServer: MetricsServer | undefined;
  if (config.metrics.enabled) {
    metricsServer = await startMetricsServer(registry, config.metrics.host, config.metrics.port ?? DEFAULT_METRICS_PORT);
  }

  closeWithGrace({ delay: config.shutdownGraceMs, logger: false }, async ({ signal, err }) => {
    if (err) logger.error({ err }, 'fatal error, shutting down');
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    await app.close();
    await metricsServer?.close();
    await shutdownTracing();
  });

  await app.listen({ host: config.api.host, port: config.api.port });
  logger.info({ host: config.api.host, port: config.api.port, metricsPort: metricsServer?.port }, 'api listening');
}

void main();
