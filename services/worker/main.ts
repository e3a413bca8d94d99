/**
 * Worker process: one BullMQ Worker per queue in WORKER_QUEUES (default all), a metrics listener, memory limits,
 * and graceful shutdown on SIGTERM/SIGINT: stop taking jobs, let active ones finish within SHUTDOWN_GRACE_MS,
 * exit 0. Past the grace period it exits 1; BullMQ's stalled-job check then hands the unfinished jobs to
 * another worker.
 *
 * Start-up does not give up on a Redis (or Redis Cluster) that is not usable yet: the metrics listener (/livez,
 * /readyz 503 with the reason) comes first, then each step that needs Redis is retried with a backoff (./startup.ts;
 * docs/reliability.md, finding 5). Only an evicting Redis or a bad configuration stops it (exit 1).
 */
import closeWithGrace from 'close-with-grace';
import { Queue, type Worker } from 'bullmq';
import { Counter } from 'prom-client';
import { loadConfig } from '../common/config';
import { createLogger } from '../common/logger';
import { QUEUE_NAMES } from '../common/queue-catalog';
import { queueKeyPrefix } from '../common/queue-keys';
import { assertNoEviction, createWorkerConnection, EvictionPolicyError, isCluster, keyPlacement } from '../common/redis';
import { CachedFaults, FaultStore, NO_FAULTS } from '../common/faults';
import type { FaultSource } from './providers/simulated';
import { createRegistry } from '../common/telemetry/registry';
import { createJobMetrics, noopJobMetrics } from '../common/telemetry/job-metrics';
import { createWebhookMetrics, noopWebhookMetrics } from '../common/telemetry/webhook-metrics';
import { registerQueueStateMetrics } from '../common/telemetry/queue-state-metrics';
import { registerWorkerConcurrency } from '../common/telemetry/worker-capacity-metrics';
import { startMetricsServer, type MetricsServer } from '../common/telemetry/metrics-server';
import { redisReadiness } from '../common/telemetry/health';
import { shutdownTracing } from '../common/telemetry/tracing';
import { createQueueWorker } from './queue-worker';
import { retryStep, setUp, StartupAborted, StartupState } from './startup';
import { PaymentLedger } from './payment-ledger';
import { SimulatedNotificationProvider, SimulatedPaymentProvider } from './providers/simulated';
import { WebhookClient } from './webhook/client';
import { startMemoryGuard } from './memory-guard';
import { OUTBOUND_POLICY } from '../common/queue-catalog';
import { CircuitStore } from '../common/outbound-circuits';
import { createOutboundMetrics, noopOutboundMetrics } from '../common/telemetry/outbound-metrics';
import { createTelemetryGuard } from '../common/telemetry/guard';
import { CircuitBreakers } from './outbound/circuit';
import { OutboundQuotas } from './outbound/quota';
import { OutboundBoundary } from './outbound/call';
import { GuardedNotificationProvider, GuardedPaymentProvider } from './providers/guarded';

const DEFAULT_METRICS_PORT = 9465;

/** How long one eviction check waits for a Redis Cluster to be ready before it is logged and tried again. */
const CLUSTER_READY_WAIT_MS = 5_000;

async function main(): Promise<void> {
  const config = loadConfig();
  const log = createLogger({ name: 'worker', level: config.logLevel });
  const connection = createWorkerConnection(config.redis);
  connection.on('error', (err: Error) => log.warn({ err: err.message }, 'redis connection error'));

  if (config.worker.queues.includes('webhooks') && !config.webhooks.signingSecret) {
    log.fatal('WEBHOOK_SIGNING_SECRET is required to run the webhooks queue (receivers verify it); set it or leave webhooks out of WORKER_QUEUES');
    process.exit(1);
  }

  const registry = createRegistry();
  const metrics = config.metrics.enabled ? createJobMetrics(registry, config.worker.queues) : noopJobMetrics;
  const memoryEvents = new Counter({
    name: 'worker_memory_limit_events_total',
    help: 'Worker memory limit crossings (soft: warned; hard: worker drains and exits for a restart).',
    labelNames: ['level'] as const,
    registers: [registry],
  });
  for (const level of ['soft', 'hard']) memoryEvents.inc({ level }, 0);

  // Everything below that needs Redis is built during start-up (./startup.ts), which may last as long as Redis or
  // the cluster is unusable: these are filled in as it goes, and drain() closes whatever exists by then.
  let shuttingDown = false;
  const startup = new StartupState();
  const startupDeps = { log, state: startup, stopping: () => shuttingDown };
  let workers: Worker[] = [];
  let stateQueues: Queue[] = [];
  let cachedFaults: CachedFaults | undefined;
  let webhookClient: WebhookClient | undefined;

  // /livez and /readyz on the metrics port (telemetry/health.ts): ready once started, while Redis answers and not
  // draining. Served from the start, so a worker waiting for Redis says so (503 with the reason) instead of not
  // answering at all. `connection` carries every command of this process (each Worker and Queue is given it, as are
  // the ledger, providers and faults); a Worker's blocking connection is BullMQ's duplicate of it, parked in a
  // blocking pop for seconds by design, where a PING would wait behind the pop.
  const redisHealth = redisReadiness({
    shuttingDown: () => shuttingDown,
    connections: async () => [{ name: 'commands', client: connection }],
  });
  const health = {
    readiness: async () => (startup.started || shuttingDown ? redisHealth.readiness() : { ready: false as const, reason: startup.reason }),
  };
  let metricsServer: MetricsServer | undefined;
  if (config.metrics.enabled) {
    metricsServer = await startMetricsServer(registry, config.metrics.host, config.metrics.port ?? DEFAULT_METRICS_PORT, health);
  }

  const drain = async (reason: string) => {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info({ reason, graceMs: config.shutdownGraceMs }, 'shutting down: no new jobs, finishing active ones');
    await Promise.all(workers.map((w) => w.close()));
    cachedFaults?.stop();
    stopMemoryGuard();
    await webhookClient?.close();
    await metricsServer?.close();
    await Promise.all(stateQueues.map((q) => q.close()));
    await shutdownTracing();
    await connection.quit().catch(() => undefined);
    log.info('shutdown complete');
  };

  const stopMemoryGuard = startMemoryGuard({
    softLimitBytes: config.worker.memorySoftLimitBytes,
    hardLimitBytes: config.worker.memoryHardLimitBytes,
    events: memoryEvents,
    onSoft: (rss) => log.warn({ rss, limit: config.worker.memorySoftLimitBytes }, 'worker memory above soft limit'),
    onHard: (rss) => {
      log.error({ rss, limit: config.worker.memoryHardLimitBytes }, 'worker memory above hard limit: draining and exiting for restart');
      void drain('memory hard limit').then(() => process.exit(0));
    },
  });

  closeWithGrace({ delay: config.shutdownGraceMs, logger: false }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'fatal error, shutting down');
    await drain(signal ?? 'error');
  });

  try {
    // Redis reachable and not evicting. Unreachable (a master down, the cluster not ready, a freeze): retried,
    // logged, /readyz 503. Evicting: fatal, the operator must fix the configuration.
    await retryStep('the eviction-policy check', () => assertNoEviction(connection, { readyTimeoutMs: CLUSTER_READY_WAIT_MS }), startupDeps, (err) => {
      if (!(err instanceof EvictionPolicyError)) return false;
      log.fatal({ err }, err.message);
      process.exit(1);
    });

    // Queue state for every queue (not only the ones consumed here), read from Redis at scrape time.
    stateQueues = await Promise.all(
      QUEUE_NAMES.map((name) => setUp(`state queue ${name}`, () => new Queue(name, { connection, prefix: queueKeyPrefix(config, name) }), startupDeps)),
    );
    if (config.metrics.enabled) registerQueueStateMetrics(registry, stateQueues);
    if (config.metrics.enabled) registerWorkerConcurrency(registry, config.worker.queues, Object.fromEntries(config.worker.queues.map((q) => [q, config.worker.policies[q].concurrency])));
    // Where each queue lives on a cluster (docs/scaling.md: two busy queues on one master is worth a reshard).
    if (isCluster(connection)) {
      log.info({ placement: Object.fromEntries(stateQueues.map((q) => [q.name, keyPlacement(connection, q.toKey('id'))])) }, 'queue placement on the Redis Cluster');
    }

    // FAULTS_ENABLED=false (the default): stored fault settings are never read, so whatever sits in Redis — left by
    // a drill, or written by anyone — cannot slow, fail or rate-limit real jobs.
    cachedFaults = config.faultsEnabled ? new CachedFaults(new FaultStore(connection, config.queuePrefix), QUEUE_NAMES) : undefined;
    await cachedFaults?.start();
    const faults: FaultSource = cachedFaults ?? { get: () => NO_FAULTS };
    // The outbound boundary (outbound/call.ts): quotas and circuits shared by every replica through Redis.
    const circuitStore = new CircuitStore(connection, config.queuePrefix, OUTBOUND_POLICY.breaker);
    const outboundMetrics = config.metrics.enabled
      ? createOutboundMetrics(registry, { quotas: config.outboundQuotas, openCircuits: async (d) => (await circuitStore.list(d)).length })
      : noopOutboundMetrics;
    const outboundGuard = createTelemetryGuard((what, err) => log.error({ err, what }, 'telemetry call failed; ignored'));
    const outboundError = (err: unknown) => log.warn({ err: (err as Error).message }, 'outbound state unavailable in Redis; calls let through');
    const boundary = new OutboundBoundary(
      new CircuitBreakers(circuitStore, OUTBOUND_POLICY.breaker, outboundMetrics, outboundError, config.circuitBreakers),
      new OutboundQuotas(connection, config.queuePrefix, config.outboundQuotas, OUTBOUND_POLICY.aimd, outboundMetrics, outboundError),
      outboundMetrics,
      outboundGuard,
    );
    webhookClient = config.webhooks.signingSecret
      ? new WebhookClient({
          signingSecret: config.webhooks.signingSecret,
          allowPrivate: config.webhooks.allowPrivate,
          maxRetryAfterMs: config.webhooks.maxRetryAfterMs,
          maxPerHost: config.webhooks.maxPerHost,
          boundary,
        })
      : undefined;
    const processorDeps = {
      paymentProvider: new GuardedPaymentProvider(new SimulatedPaymentProvider(connection, config.queuePrefix, faults), boundary),
      notificationProvider: new GuardedNotificationProvider(new SimulatedNotificationProvider(faults), boundary),
      ledger: new PaymentLedger(connection, config.queuePrefix),
      webhookClient: webhookClient as WebhookClient,
      webhookMetrics: config.metrics.enabled && config.worker.queues.includes('webhooks') ? createWebhookMetrics(registry) : noopWebhookMetrics,
    };

    // Each Worker's own connections (BullMQ duplicates `connection` twice: commands and the blocking pop) set
    // themselves up once; one whose set-up failed is built again rather than left to reject every fetch.
    workers = await Promise.all(
      config.worker.queues.map((queue) => setUp(`worker ${queue}`, () => createQueueWorker(queue, { connection, config, metrics, log, processorDeps }), startupDeps)),
    );
  } catch (err) {
    if (err instanceof StartupAborted) return;
    throw err;
  }
  if (shuttingDown) return;

  for (const w of workers) void w.run().catch((err) => log.error({ err }, 'worker run loop failed'));
  startup.started = true;
  log.info(
    {
      queues: config.worker.queues,
      concurrency: Object.fromEntries(config.worker.queues.map((q) => [q, config.worker.policies[q].concurrency])),
      metricsPort: metricsServer?.port,
      faultInjection: config.faultsEnabled,
    },
    'worker started',
  );
}

void main();
