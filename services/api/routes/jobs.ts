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
      handler: async (request, reply) => {
        const key = request.headers['idempotency-key'];
        const parent = contextWith(request.otelSpan);
        // One deadline for the whole Redis part (add, replication check, state read): see withRedis.
        const { job, state } = await app.withRedis(async () => {
          const added = await enqueueJob(app.queues[name], name, request.body, key, parent);
          await app.confirmReplicated(name);
          // A replayed Idempotency-Key may point at a job that has moved on: report its real state then.
          const current = key
            ? await added.getState().catch(() => 'unknown')
            : request.body.delayMs
              ? 'delayed'
              : 'prioritized';
          return { job: added, state: current };
        });
        app.apiMetrics.enqueued(name);
        const id = String(job.id);
        reply.header('location', `/v1/queues/${name}/jobs/${encodeURIComponent(id)}`);
        return reply.status(202).send({ id, queue: name, state });
      },
    });
  }

  app.post('/v1/queues/:queue/jobs', async (request) => {
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
