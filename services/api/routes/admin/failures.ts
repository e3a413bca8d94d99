/**
 * Failed jobs by cause, and their replay (guarded by the admin scope, ./index.ts):
 *   GET  /v1/admin/queues/:queue/failures        → groups by fingerprint (../../failures/group.ts)
 *   POST /v1/admin/queues/:queue/failures/retry  → 202, retries a bounded selection (../../failures/replay.ts)
 * Replays are counted in bullmq_jobs_replayed_total{queue} and audited with the admin key id.
 */
import type { FastifyInstance } from 'fastify';
import { QUEUE_NAMES, type QueueName, isQueueName } from '../../../common/queue-catalog';
import { FAILURE_REASONS } from '../../../common/failure-reason';
import { groupFailures, MAX_SAMPLES } from '../../failures/group';
import { DEFAULT_REPLAY_LIMIT, MAX_REPLAY_LIMIT, type ReplaySelection, replayFailures } from '../../failures/replay';
import { ApiError, errorSchema } from '../../errors';

const params = {
  type: 'object',
  required: ['queue'],
  properties: { queue: { type: 'string' } },
} as const;

const groupsResponse = {
  type: 'object',
  required: ['queue', 'scanned', 'groups'],
  properties: {
    queue: { type: 'string' },
    scanned: { type: 'integer' },
    groups: {
      type: 'array',
      items: {
        type: 'object',
        required: ['fingerprint', 'reason', 'message', 'count', 'firstSeen', 'lastSeen', 'sampleJobIds', 'sampleTraceIds'],
        properties: {
          fingerprint: { type: 'string' },
          reason: { type: 'string' },
          message: { type: 'string' },
          count: { type: 'integer' },
          firstSeen: { type: 'string' },
          lastSeen: { type: 'string' },
          sampleJobIds: { type: 'array', maxItems: MAX_SAMPLES, items: { type: 'string' } },
          sampleTraceIds: { type: 'array', maxItems: MAX_SAMPLES, items: { type: 'string' } },
        },
      },
    },
  },
} as const;

const retryBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    fingerprint: { type: 'string', pattern: '^[0-9a-f]{16}$' },
    reason: { type: 'string', enum: [...FAILURE_REASONS] },
    jobIds: { type: 'array', minItems: 1, maxItems: MAX_REPLAY_LIMIT, items: { type: 'string', minLength: 1, maxLength: 256 } },
    limit: { type: 'integer', minimum: 1, maximum: MAX_REPLAY_LIMIT, default: DEFAULT_REPLAY_LIMIT },
  },
} as const;

const retryResponse = {
  type: 'object',
  required: ['retried', 'jobIds', 'skipped'],
  properties: {
    retried: { type: 'integer' },
    jobIds: { type: 'array', items: { type: 'string' } },
    skipped: { type: 'array', items: { type: 'string' } },
  },
} as const;

function queueOf(name: string): QueueName {
  if (!isQueueName(name)) {
    throw new ApiError(404, 'QUEUE_NOT_FOUND', `unknown queue "${name}"; known queues: ${QUEUE_NAMES.join(', ')}`);
  }
  return name;
}

export default async function failureRoutes(app: FastifyInstance) {
  app.get<{ Params: { queue: string } }>('/v1/admin/queues/:queue/failures', {
    schema: { params, response: { 200: groupsResponse, '4xx': errorSchema, '5xx': errorSchema } },
    handler: async (request) => {
      const queue = queueOf(request.params.queue);
      return app.withRedis(() => groupFailures(app.queues[queue]));
    },
  });

  app.post<{ Params: { queue: string }; Body: ReplaySelection }>('/v1/admin/queues/:queue/failures/retry', {
    schema: { params, body: retryBody, response: { 202: retryResponse, '4xx': errorSchema, '5xx': errorSchema } },
    handler: async (request, reply) => {
      const queue = queueOf(request.params.queue);
      const selection = request.body ?? {};
      const result = await app.withRedis(() => replayFailures(app.queues[queue], selection));
      app.replayMetrics.replayed(queue, result.jobIds.length);
      app.recordAdminAction(request, 'failures_retry', {
        queue,
        selection: { ...selection, jobIds: selection.jobIds?.length },
        retried: result.jobIds.length,
        skipped: result.skipped.length,
        jobIds: result.jobIds,
      });
      return reply.status(202).send({ retried: result.jobIds.length, jobIds: result.jobIds, skipped: result.skipped });
    },
  });
}
