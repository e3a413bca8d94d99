/**
 * POST /v1/queues/:queue/jobs — one route per catalog queue, each with that queue's payload schema, so Fastify
 * validates (and names the failing field) before any handler runs; a parametric fallback answers unknown
 * queues with 404. GET /v1/queues/:queue/jobs/:id returns the job's state and result. Every route here is a
 * client route: this plugin is one encapsulated scope whose onRequest hook is the client guard (app.authenticate,
 * plugins/app/auth.ts), so no client route can be added without it.
 */
import { Type, type TSchema } from 'typebox';
import type { FastifyPluginAsyncTypebox, TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { FastifyInstance } from 'fastify';
import { Job } from 'bullmq';
import { PRIORITIES, type PriorityName, QUEUE_CATALOG, QUEUE_NAMES, type QueueName } from '../../common/queue-catalog';
import { payloadOf } from '../../common/job-envelope';
import { ApiError, catalogQueue, errorSchema, queueNotFound } from '../errors';
import { enqueueJob } from '../enqueue';
import { idempotencyKeyRequired } from '../idempotency';
import { webhookTargetProblem } from '../../common/webhook-target';
import { contextWith } from '../../common/telemetry/trace-context';

const MAX_DELAY_MS = 7 * 24 * 3600 * 1000;
const errors = { '4xx': errorSchema, '5xx': errorSchema };

const Accepted = Type.Object({ id: Type.String(), queue: Type.String(), state: Type.String() });

const JobView = Type.Object({
  id: Type.String(),
  queue: Type.String(),
  state: Type.String(),
  attemptsMade: Type.Integer(),
  data: Type.Record(Type.String(), Type.Unknown()),
  returnValue: Type.Unknown(),
  failedReason: Type.Union([Type.String(), Type.Null()]),
  createdAt: Type.Union([Type.String(), Type.Null()]),
  processedAt: Type.Union([Type.String(), Type.Null()]),
  finishedAt: Type.Union([Type.String(), Type.Null()]),
});

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7E]+$' })),
});

/** The body of POST /v1/queues/<queue>/jobs: the queue's payload schema (catalog) plus scheduling options. */
function enqueueBody<S extends TSchema>(payload: S) {
  return Type.Object(
    {
      data: payload,
      // An enum keyword (not a union of literals) so a wrong priority gets one error naming the allowed ones.
      priority: Type.Optional(Type.Unsafe<PriorityName>({ type: 'string', enum: Object.keys(PRIORITIES) })),
      delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: MAX_DELAY_MS })),
    },
    { additionalProperties: false },
  );
}

/** Rules JSON Schema cannot say: a webhook URL must be one the worker can parse and is allowed to reach. */
function checkBeyondSchema(data: object, allowPrivate: boolean): string | undefined {
  if (!('url' in data) || typeof data.url !== 'string') return undefined;
  const problem = webhookTargetProblem(data.url, allowPrivate);
  return problem ? `body.data.url: ${problem}` : undefined;
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);

function registerEnqueueRoute(app: FastifyInstance, name: QueueName) {
  const def = QUEUE_CATALOG[name];
  app.withTypeProvider<TypeBoxTypeProvider>().post(`/v1/queues/${name}/jobs`, {
    schema: {
      headers: IdempotencyHeaders,
      body: enqueueBody(def.payloadSchema),
      response: { 202: Accepted, ...errors },
    },
    // Before the schema: a payment without its key is refused whatever its body.
    preValidation: async (request) => {
      if (def.idempotencyKey === 'required' && request.headers['idempotency-key'] === undefined) throw idempotencyKeyRequired(name);
    },
    handler: async (request, reply) => {
      const problem = name === 'webhooks' ? checkBeyondSchema(request.body.data, app.config.webhooks.allowPrivate) : undefined;
      if (problem) throw new ApiError(400, 'VALIDATION_ERROR', problem);
      const key = request.headers['idempotency-key'];
      const parent = contextWith(request.otelSpan);
      const deps = { queue: app.queues[name], idempotency: app.idempotency, metrics: app.apiMetrics, log: request.log };
      // One deadline (withRedis) for the whole Redis part: the add, then the replication check.
      const result = await app.withRedis(async () => {
        const enqueued = await enqueueJob(deps, name, request.body, { clientId: request.keyId!, idempotencyKey: key }, parent);
        await app.confirmReplicated(name);
        return enqueued;
      });
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      reply.header('location', `/v1/queues/${name}/jobs/${encodeURIComponent(result.id)}`);
      return reply.status(202).send({ id: result.id, queue: name, state: result.state });
    },
  });
}

const jobRoutes: FastifyPluginAsyncTypebox = async (app) => {
  // The one guard of every client route, in this encapsulated scope: it runs before the body is read or parsed,
  // so anonymous clients get 401, never parse or validation errors, and learn nothing about queues or schemas.
  app.addHook('onRequest', (request) => app.authenticate(request));
  for (const name of QUEUE_NAMES) registerEnqueueRoute(app, name);

  app.post('/v1/queues/:queue/jobs', {
    schema: { params: Type.Object({ queue: Type.String() }), response: errors },
  }, async (request) => {
    throw queueNotFound(request.params.queue);
  });

  app.get('/v1/queues/:queue/jobs/:id', {
    schema: {
      params: Type.Object({ queue: Type.String(), id: Type.String({ minLength: 1, maxLength: 200 }) }),
      response: { 200: JobView, ...errors },
    },
    handler: async (request) => {
      const { id } = request.params;
      const queue = catalogQueue(request.params.queue);
      const { job, state } = await app.withRedis(async () => {
        const q = app.queues[queue];
        const notFound = () =>
          new ApiError(404, 'JOB_NOT_FOUND', `no job "${id}" in queue "${queue}" (it may have expired after its retention period)`);
        // The job hash and its state are two reads; a worker can finish the job in between. Reading the state
        // first, then the hash, means the hash is never older than the state ("completed" with no return value).
        // If the hash shows a finish the state has not caught up with, the state is read once more.
        let jobState = await q.getJobState(id);
        if (jobState === 'unknown') throw notFound();
        const found = await Job.fromId(q, id);
        if (!found) throw notFound();
        if (found.finishedOn && jobState !== 'completed' && jobState !== 'failed') jobState = await found.getState();
        return { job: found, state: jobState };
      });
      return {
        id: String(job.id),
        queue,
        state,
        attemptsMade: job.attemptsMade,
        data: payloadOf(job.data),
        returnValue: job.returnvalue ?? null,
        failedReason: job.failedReason || null,
        createdAt: iso(job.timestamp),
        processedAt: iso(job.processedOn),
        finishedAt: iso(job.finishedOn),
      };
    },
  });
};

export default jobRoutes;
