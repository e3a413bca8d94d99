'use strict';
// The typical instrumented reference API of `npm run bench`: ../bare/api.js plus what teams usually add —
// OpenTelemetry auto-instrumentation (tracing.js, --require'd), bullmq-otel on the Queue, fastify-metrics
// (prom-client request histograms and default metrics) on /metrics, Fastify's request logging.
//   REDIS_URL, PORT, API_KEY, QUEUE_PREFIX, JOB_OPTIONS (JSON), OTEL_*
const Fastify = require('fastify');
const metrics = require('fastify-metrics');
const { Queue } = require('bullmq');
const { BullMQOtel } = require('bullmq-otel');
const { Redis } = require('ioredis');

const jobOptions = JSON.parse(process.env.JOB_OPTIONS ?? '{}');
const queue = new Queue('notifications', {
  connection: new Redis(process.env.REDIS_URL),
  prefix: process.env.QUEUE_PREFIX ?? 'bull',
  defaultJobOptions: jobOptions,
  telemetry: new BullMQOtel({ tracerName: 'api' }),
});

const body = {
  type: 'object',
  required: ['data'],
  additionalProperties: false,
  properties: {
    data: {
      type: 'object',
      required: ['channel', 'to', 'template'],
      additionalProperties: false,
      properties: {
        channel: { enum: ['email', 'sms', 'push'] },
        to: { type: 'string', minLength: 1, maxLength: 320 },
        template: { type: 'string', minLength: 1, maxLength: 128 },
        variables: { type: 'object' },
      },
    },
  },
};
const accepted = { type: 'object', properties: { id: { type: 'string' }, queue: { type: 'string' }, state: { type: 'string' } } };

const app = Fastify({ logger: { level: process.env.LOG_LEVEL ?? 'info' } });
app.register(metrics, { endpoint: '/metrics' });
app.register(async (jobs) => {
  jobs.addHook('onRequest', async (request, reply) => {
    if (request.headers.authorization !== `Bearer ${process.env.API_KEY}`) return reply.code(401).send({ error: 'Unauthorized' });
  });
  jobs.post('/v1/queues/notifications/jobs', { schema: { body, response: { 202: accepted } } }, async (request, reply) => {
    const job = await queue.add('notification', { payload: request.body.data });
    return reply.code(202).send({ id: job.id, queue: 'notifications', state: 'waiting' });
  });
});

app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 3000) }).then((address) => console.log(`api listening on ${address}`));
process.on('SIGTERM', () => app.close().then(() => queue.close()).then(() => process.exit(0)));
