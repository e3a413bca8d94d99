/**
 * Fault injection for the simulated providers: PUT /v1/admin/faults/:queue, GET /v1/admin/faults.
 * Stored in Redis, so every worker replica applies them within a second. How demos and alert drills make
 * things go wrong on purpose.
 */
import type { FastifyInstance } from 'fastify';
import { QUEUE_NAMES, QueueName, isQueueName } from '../../common/queue-catalog';
import { FaultSettings, faultSettingsSchema } from '../../common/faults';
import { ApiError, errorSchema } from '../errors';

const settingsResponse = {
  type: 'object',
  properties: {
    failureRate: { type: 'number' },
    timeoutRate: { type: 'number' },
    rateLimitRate: { type: 'number' },
    latencyMs: { type: 'number' },
  },
} as const;

export default async function adminFaultRoutes(app: FastifyInstance) {
  app.get('/v1/admin/faults', {
    schema: {
      response: {
        200: { type: 'object', additionalProperties: settingsResponse },
        '4xx': errorSchema,
        '5xx': errorSchema,
      },
    },
    // Before the body is read or parsed: anonymous clients get 401, never parse errors.
      onRequest: (request) => app.authenticate(request),
    handler: async () => app.withRedis(() => app.faultStore.getAll(QUEUE_NAMES)),
  });

  app.put<{ Params: { queue: string }; Body: Partial<FaultSettings> }>('/v1/admin/faults/:queue', {
    schema: {
      params: { type: 'object', properties: { queue: { type: 'string' } } },
      body: faultSettingsSchema,
      response: { 200: settingsResponse, '4xx': errorSchema, '5xx': errorSchema },
    },
    // Before the body is read or parsed: anonymous clients get 401, never parse errors.
      onRequest: (request) => app.authenticate(request),
    handler: async (request) => {
      const { queue } = request.params;
      if (!isQueueName(queue)) {
        throw new ApiError(404, 'QUEUE_NOT_FOUND', `unknown queue "${queue}"; known queues: ${QUEUE_NAMES.join(', ')}`);
      }
      const settings = await app.withRedis(() => app.faultStore.update(queue as QueueName, request.body ?? {}));
      request.log.info({ queue, settings }, 'fault settings changed');
      return settings;
    },
  });
}
