/**
 * POST /v1/queues/:queue/jobs — one route per catalog queue, each with that queue's payload schema, so Fastify
 * validates (and names the failing field) before any handler runs; a parametric fallback answers unknown
 * queues with 404. GET /v1/queues/:queue/jobs/:id returns the job's state and result.
 */
import type { FastifyInstance } from 'fastify';
import { Job } from 'bullmq';
import { PRIORITIES, QUEUE_CATALOG, QUEUE_NAMES, QueueName, isQueueName } from '../../common/queue-catalog';
import { isEnvelope } from '../../common/job-envelope';
import { ApiError, errorSchema } from '../errors';
import { enqueueJob, EnqueueRequest } from '../enqueue';
import { idempotencyKeyRequired } from '../idempotency';
import { webhookTargetProblem } from '../../common/webhook-target';
import { contextWith } from '../../common/telemetry/trace-context';

const MAX_DELAY_MS = 7 * 24 * 3600 * 1000;

const acceptedSchema = {
  type: 'object',
  required: ['id', 'queue', 'state'],
  properties: { id: { type: 'string' }, queue: { type: 'string' }, state: { type: 'string' } },
} as const;

const jobSchema = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    queue: { type: 'string' },
    state: { type: 'string' },
    attemptsMade: { type: 'integer' },
    data: { type: 'object', additionalProperties: true },
    returnValue: {},
    failedReason: { type: ['string', 'null'] },
    createdAt: { type: ['string', 'null'] },
    processedAt: { type: ['string', 'null'] },
    finishedAt: { type: ['string', 'null'] },
  },
} as const;

const idempotencyHeaders = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7E]+$' } },
} as const;

/** Rules JSON Schema cannot say: a webhook URL must be one the worker can parse and is allowed to reach. */
function checkBeyondSchema(queue: QueueName, body: EnqueueRequest, allowPrivate: boolean): string | undefined {
  if (queue !== 'webhooks') return undefined;
  const problem = webhookTargetProblem(String(body.data.url), allowPrivate);
  return problem ? `body.data.url: ${problem}` : undefined;
}

const iso = (ms: number | undefined) => (ms ? new Date(ms).toISOString() : null);

export default async function jobRoutes(app: FastifyInstance) {
  for (const name of QUEUE_NAMES) {
    const def = QUEUE_CATALOG[name];
    app.post<{ Body: EnqueueRequest; Headers: { 'idempotency-key'?: string } }>(`/v1/queues/${name}/jobs`, {
      schema: {
        headers: idempotencyHeaders,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['data'],
          properties: {
            data: def.payloadSchema,
            priority: { type: 'string', enum: Object.keys(PRIORITIES) },
            delayMs: { type: 'integer', minimum: 0, maximum: MAX_DELAY_MS },
          },
        },
        response: { 202: acceptedSchema, '4xx': errorSchema, '5xx': errorSchema },
      },
      // Before the body is read or parsed: anonymous clients get 401, never parse errors.
      onRequest: (request) => app.authenticate(request),
      // Before the schema: a payment without its key is refused whatever its body.
      preValidation: async (request) => {
        if (def.idempotencyKey === 'required' && request.headers['idempotency-key'] === undefined) throw idempotencyKeyRequired(name);
      },
      handler: async (request, reply) => {
        const problem = checkBeyondSchema(name, request.body, app.config.webhooks.allowPrivate);
        if (problem) throw new ApiError(400, 'VALIDATION_ERROR', problem);
        const key = request.headers['idempotency-key'];
        const parent = contextWith(request.otelSpan);
        const deps = { queue: app.queues[name], idempotency: app.idempotency, metrics: app.apiMetrics };
        const result = await app.withRedis(() =>
          enqueueJob(deps, name, request.body, { clientId: request.keyId!, idempotencyKey: key }, parent),
        );
        if (result.replayed) reply.header('idempotent-replayed', 'true');
        reply.header('location', `/v1/queues/${name}/jobs/${encodeURIComponent(result.id)}`);
        return reply.status(202).send({ id: result.id, queue: name, state: result.state });
      },
    });
  }

  // Authenticated first, like every keyed route: without a key, the queue list is none of the caller's business.
  app.post('/v1/queues/:queue/jobs', { onRequest: (request) => app.authenticate(request) }, async (request) => {
    const { queue } = request.params as { queue: string };
    throw new ApiError(404, 'QUEUE_NOT_FOUND', `unknown queue "${queue}"; known queues: ${QUEUE_NAMES.join(', ')}`);
  });

  app.get<{ Params: { queue: string; id: string } }>('/v1/queues/:queue/jobs/:id', {
    schema: {
      params: {
        type: 'object',
        properties: { queue: { type: 'string' }, id: { type: 'string', minLength: 1, maxLength: 200 } },
      },
      response: { 200: jobSchema, '4xx': errorSchema, '5xx': errorSchema },
    },
    // Before the body is read or parsed: anonymous clients get 401, never parse errors.
    onRequest: (request) => app.authenticate(request),
    handler: async (request) => {
      const { queue, id } = request.params;
      if (!isQueueName(queue)) throw new ApiError(404, 'QUEUE_NOT_FOUND', `unknown queue "${queue}"`);
      const { job, state } = await app.withRedis(async () => {
        const q = app.queues[queue as QueueName];
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
        data: isEnvelope(job.data) ? job.data.payload : job.data,
        returnValue: job.returnvalue ?? null,
        failedReason: job.failedReason || null,
        createdAt: iso(job.timestamp),
        processedAt: iso(job.processedOn),
        finishedAt: iso(job.finishedOn),
      };
    },
  });
}
