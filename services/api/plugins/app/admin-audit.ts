/**
 * Audit of the admin plane: `app.recordAdminAction(request, action, details)` writes one log line naming the
 * admin key id (never the key) and the client address (request.ip: through TRUST_PROXY's trusted hops) and counts api_admin_actions_total{action}. Every route that changes something
 * on behalf of an admin key (routes/admin/*, the console) calls it once the change is applied.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AdminAction } from '../../../common/telemetry/admin-metrics';

declare module 'fastify' {
  interface FastifyInstance {
    recordAdminAction(request: FastifyRequest, action: AdminAction, details: Record<string, unknown>): void;
  }
}

export default fp(
  async function adminAudit(app: FastifyInstance) {
    app.decorate('recordAdminAction', (request: FastifyRequest, action: AdminAction, details: Record<string, unknown>) => {
      app.adminMetrics.action(action);
      request.log.info({ audit: true, action, keyId: request.keyId, clientAddress: request.ip, ...details }, `admin action ${action}`);
    });
  },
  { name: 'admin-audit', dependencies: ['telemetry', 'auth'] },
);
