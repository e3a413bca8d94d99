/**
 * The outbound circuits, shared by every worker replica (common/outbound-circuits.ts), guarded by the admin scope
 * (./index.ts):
 *   GET  /v1/admin/circuits                     → every circuit not closed
 *   POST /v1/admin/circuits/:dependency/reset   → closes one by hand (webhook_host: `?host=<hostname:port>`);
 *                                                 audited, counted in api_admin_actions_total{action="circuit_reset"}
 * Workers see a reset within their refresh time (services/worker/outbound/circuit.ts, 0.5 s).
 */
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { OUTBOUND_DEPENDENCIES, type OutboundDependency } from '../../../common/queue-catalog';
import { ApiError, errorSchema } from '../../errors';

const Circuit = Type.Object({
  dependency: Type.String(),
  target: Type.String(),
  state: Type.String(),
  openedAt: Type.String(),
  nextProbeAt: Type.String(),
  recentFailures: Type.Integer(),
});
const Host = Type.Optional(Type.String({ minLength: 1, maxLength: 300 }));
const errors = { '4xx': errorSchema, '5xx': errorSchema };

function dependencyOf(name: string): OutboundDependency {
  if (!(OUTBOUND_DEPENDENCIES as readonly string[]).includes(name)) {
    throw new ApiError(404, 'DEPENDENCY_NOT_FOUND', `unknown dependency "${name}"; known: ${OUTBOUND_DEPENDENCIES.join(', ')}`);
  }
  return name as OutboundDependency;
}

const circuitRoutes: FastifyPluginAsyncTypebox = async (app) => {
  app.get('/v1/admin/circuits', {
    schema: { response: { 200: Type.Object({ circuits: Type.Array(Circuit) }), ...errors } },
    handler: async () => {
      const lists = await app.withRedis(() => Promise.all(OUTBOUND_DEPENDENCIES.map((d) => app.circuitStore.list(d))));
      return { circuits: lists.flat() };
    },
  });

  app.post('/v1/admin/circuits/:dependency/reset', {
    schema: {
      params: Type.Object({ dependency: Type.String() }),
      querystring: Type.Object({ host: Host }),
      response: { 200: Type.Object({ dependency: Type.String(), target: Type.String(), state: Type.String(), wasOpen: Type.Boolean() }), ...errors },
    },
    handler: async (request) => {
      const dependency = dependencyOf(request.params.dependency);
      const { host } = request.query;
      if (dependency === 'webhook_host' && !host) {
        throw new ApiError(400, 'HOST_REQUIRED', 'webhook_host has one circuit per target host: give it as ?host=<hostname:port>');
      }
      if (dependency !== 'webhook_host' && host) {
        throw new ApiError(400, 'HOST_NOT_APPLICABLE', `${dependency} has one circuit; host applies to webhook_host only`);
      }
      const target = dependency === 'webhook_host' ? host! : dependency;
      const reply = await app.withRedis(() => app.circuitStore.reset(dependency, target));
      const wasOpen = reply.transition === 'closed';
      app.recordAdminAction(request, 'circuit_reset', { dependency, target, wasOpen });
      return { dependency, target, state: reply.state, wasOpen };
    },
  });
};

export default circuitRoutes;
