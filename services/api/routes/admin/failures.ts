/**
 * Failed jobs by cause, and their replay (guarded by the admin scope, ./index.ts):
 *   GET  /v1/admin/queues/:queue/failures        → groups by fingerprint (../../failures/group.ts)
 *   POST /v1/admin/queues/:queue/failures/retry  → 202, retries a bounded selection (../../failures/replay.ts)
 * Replays are counted in bullmq_jobs_replayed_total{queue} and audited with the admin key id.
 */
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { FAILURE_REASONS, type FailureReason } from '../../../common/failure-reason';
import { groupFailures, MAX_SAMPLES } from '../../failures/group';
import { DEFAULT_REPLAY_LIMIT, MAX_REPLAY_LIMIT, type ReplaySelection, replayFailures } from '../../failures/replay';
import { catalogQueue, errorSchema } from '../../errors';

const Params = Type.Object({ queue: Type.String() });
const Ids = Type.Array(Type.String());
const Samples = Type.Array(Type.String(), { maxItems: MAX_SAMPLES });

const Groups = Type.Object({
  queue: Type.String(),
  scanned: Type.Integer(),
  groups: Type.Array(
    Type.Object({
      fingerprint: Type.String(),
      reason: Type.String(),
      message: Type.String(),
      count: Type.Integer(),
      firstSeen: Type.String(),
      lastSeen: Type.String(),
      sampleJobIds: Samples,
      sampleTraceIds: Samples,
    }),
  ),
});

const RetryBody = Type.Object(
  {
    fingerprint: Type.Optional(Type.String({ pattern: '^[0-9a-f]{16}$' })),
    // An enum keyword (not a union of literals) so a wrong reason gets one error naming the allowed ones.
    reason: Type.Optional(Type.Unsafe<FailureReason>({ type: 'string', enum: [...FAILURE_REASONS] })),
    jobIds: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 256 }), { minItems: 1, maxItems: MAX_REPLAY_LIMIT })),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_REPLAY_LIMIT, default: DEFAULT_REPLAY_LIMIT })),
  },
  { additionalProperties: false },
);

const Retried = Type.Object({ retried: Type.Integer(), jobIds: Ids, skipped: Ids });
const errors = { '4xx': errorSchema, '5xx': errorSchema };

const failureRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/v1/admin/queues/:queue/failures', {
    schema: { params: Params, response: { 200: Groups, ...errors } },
    handler: async (request) => {
      const queue = catalogQueue(request.params.queue);
      return app.withRedis(() => groupFailures(app.queues[queue]));
    },
  });

  app.post('/v1/admin/queues/:queue/failures/retry', {
    schema: { params: Params, body: RetryBody, response: { 202: Retried, ...errors } },
    handler: async (request, reply) => {
      const queue = catalogQueue(request.params.queue);
      const selection: ReplaySelection = request.body ?? {};
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
};

export default failureRoutes;
