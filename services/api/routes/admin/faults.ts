/**
 * Fault injection for the simulated providers: PUT /v1/admin/faults/:queue, GET /v1/admin/faults.
 * Stored in Redis, so every worker replica applies them within a second. How demos and alert drills make
 * things go wrong on purpose — and so off unless FAULTS_ENABLED=true: then PUT answers 403 FAULTS_DISABLED and
 * workers ignore whatever is stored. Guarded by the admin scope (./index.ts).
 */
import type { FastifyInstance } from 'fastify';
import { QUEUE_NAMES } from '../../../common/queue-catalog';
import { type FaultSettings, faultSettingsSchema } from '../../../common/faults';
import { ApiError, catalogQueue, errorSchema } from '../../errors';

const settingsResponse = {
  type: 'object',
  properties: {
    failureRate: { type: 'number' },
    timeoutRate: { type: 'number' },
    rateLimitRate: { type: 'number' },
    latencyMs: { type: 'number' },
  },
} as const;

export default async function faultRoutes(app: FastifyInstance) {
  app.get('/v1/admin/faults', {
    schema: {
      response: {
        200: { type: 'object', additionalProperties: settingsResponse },
        '4xx': errorSchema,
        '5xx': errorSchema,
      },
    },
    handler: async () => app.withRedis(() => app.faultStore.getAll(QUEUE_NAMES)),
  });

  app.put<{ Params: { queue: string }; Body: Partial<FaultSettings> }>('/v1/admin/faults/:queue', {
    schema: {
      params: { type: 'object', properties: { queue: { type: 'string' } } },
      body: faultSettingsSchema,
      response: { 200: settingsResponse, '4xx': errorSchema, '5xx': errorSchema },
    },
    // After the scope's admin guard, before the body is parsed: with faults off, no payload changes the answer.
    onRequest: async (request) => {
      if (!app.config.faultsEnabled) {
        request.log.warn({ audit: true, action: 'faults_update', keyId: request.keyId, clientAddress: request.ip, refused: 'FAULTS_DISABLED' }, 'fault injection refused');
        throw new ApiError(403, 'FAULTS_DISABLED', 'fault injection is disabled on this deployment; set FAULTS_ENABLED=true to allow it');
      }
    },
    handler: async (request) => {
      const queue = catalogQueue(request.params.queue);
      const settings = await app.withRedis(() => app.faultStore.update(queue, request.body ?? {}));
      app.recordAdminAction(request, 'faults_update', { queue, settings });
      return settings;
    },
  });
}
