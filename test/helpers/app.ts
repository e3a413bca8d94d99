/** An in-process API (buildApp) on the shared Redis with its own prefix, for app.inject() tests. */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { buildApp } from '../../services/api/app';
import { parseConfig } from '../../services/common/config';
import { createLogger } from '../../services/common/logger';
import { createRegistry, type MetricsRegistry } from '../../services/common/telemetry/registry';
import { deletePrefix, redisEnv, SHARED_REDIS_URL, uniquePrefix } from './redis';
import { ADMIN_KEY, API_KEY, SIGNING_SECRET } from './services';

export interface TestApp {
  app: FastifyInstance;
  prefix: string;
  registry: MetricsRegistry;
  auth: { authorization: string };
  adminAuth: { authorization: string };
}

export async function buildTestApp(
  t: { teardown(fn: () => unknown): void },
  env: Record<string, string> = {},
  opts: { logger?: Logger } = {},
): Promise<TestApp> {
  const prefix = uniquePrefix('api');
  const config = parseConfig({
    ...redisEnv(SHARED_REDIS_URL),
    QUEUE_PREFIX: prefix,
    API_KEYS: API_KEY,
    ADMIN_API_KEYS: ADMIN_KEY,
    FAULTS_ENABLED: 'true',
    WEBHOOK_SIGNING_SECRET: SIGNING_SECRET,
    LOG_LEVEL: 'silent',
    API_MAX_EVENT_LOOP_DELAY_MS: '0',
    ...env,
  });
  const registry = createRegistry({ defaultMetrics: false });
  const app = await buildApp({ config, registry, logger: opts.logger ?? createLogger({ name: 'api', level: 'silent' }) });
  t.teardown(async () => {
    await app.close();
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });
  return { app, prefix, registry, auth: { authorization: `Bearer ${API_KEY}` }, adminAuth: { authorization: `Bearer ${ADMIN_KEY}` } };
}
