/**
 * The admin plane: every /v1/admin/* route lives in this one encapsulated scope behind ONE onRequest guard
 * (app.requireAdmin, plugins/app/auth.ts), so no admin route can be added without it. Runs before the body is
 * read or parsed: anonymous callers get 401 and client keys 403, never parse or validation errors.
 */
import type { FastifyInstance } from 'fastify';
import faultRoutes from './faults';
import failureRoutes from './failures';
import circuitRoutes from './circuits';

export default async function adminRoutes(app: FastifyInstance) {
  app.addHook('onRequest', (request) => app.requireAdmin(request));
  await app.register(faultRoutes);
  await app.register(failureRoutes);
  await app.register(circuitRoutes);
}
