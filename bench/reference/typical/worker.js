'use strict';
// The typical instrumented reference worker of `npm run bench`: ../bare/worker.js plus bullmq-otel on the
// Worker, OpenTelemetry auto-instrumentation (tracing.js, --require'd) and prom-client job metrics (processing
// and end-to-end histograms, completed / failed counters, default Node metrics) served on METRICS_PORT.
//   REDIS_URL, QUEUE_PREFIX, CONCURRENCY (default 10), METRICS_PORT (default 9464), OTEL_*
const http = require('node:http');
const { randomUUID } = require('node:crypto');
const { Worker } = require('bullmq');
const { BullMQOtel } = require('bullmq-otel');
const { Redis } = require('ioredis');
const client = require('prom-client');

client.collectDefaultMetrics();
const buckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const processing = new client.Histogram({ name: 'bullmq_job_processing_seconds', help: 'Time a job spent in its processor.', labelNames: ['queue', 'status'], buckets });
const e2e = new client.Histogram({ name: 'bullmq_job_e2e_seconds', help: 'Time from adding a job to its completion.', labelNames: ['queue', 'status'], buckets });
const completed = new client.Counter({ name: 'bullmq_jobs_completed_total', help: 'Jobs completed.', labelNames: ['queue'] });
const failed = new client.Counter({ name: 'bullmq_jobs_failed_total', help: 'Jobs failed.', labelNames: ['queue'] });

const worker = new Worker(
  'notifications',
  async (job) => ({ messageId: randomUUID(), channel: job.data.payload.channel }),
  {
    connection: new Redis(process.env.REDIS_URL, { maxRetriesPerRequest: null }),
    prefix: process.env.QUEUE_PREFIX ?? 'bull',
    concurrency: Number(process.env.CONCURRENCY ?? 10),
    telemetry: new BullMQOtel({ tracerName: 'worker' }),
  },
);
worker.on('completed', (job) => {
  completed.inc({ queue: job.queueName });
  processing.observe({ queue: job.queueName, status: 'completed' }, (job.finishedOn - job.processedOn) / 1000);
  e2e.observe({ queue: job.queueName, status: 'completed' }, (job.finishedOn - job.timestamp) / 1000);
});
worker.on('failed', (job) => {
  failed.inc({ queue: job?.queueName ?? 'notifications' });
  if (job?.processedOn) processing.observe({ queue: job.queueName, status: 'failed' }, ((job.finishedOn ?? Date.now()) - job.processedOn) / 1000);
});
worker.on('error', (err) => console.error(err));

const metricsServer = http.createServer(async (_req, res) => {
  res.setHeader('content-type', client.register.contentType);
  res.end(await client.register.metrics());
});
const metricsListening = new Promise((resolve) => metricsServer.listen(Number(process.env.METRICS_PORT ?? 9464), '127.0.0.1', resolve));

Promise.all([worker.waitUntilReady(), metricsListening]).then(() => console.log(`worker started, metrics on port ${metricsServer.address().port}`));
process.on('SIGTERM', () => worker.close().then(() => process.exit(0)));
