/**
 * Bearer-key authentication for writes and job reads. Keys come from API_KEYS; comparison is constant-time
 * (digests of equal length) so response timing reveals nothing about a key. With no key configured the API
 * refuses protected routes and says how to configure one, rather than running open.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from '../../errors';

declare module 'fastify' {
  interface FastifyInstance {
    authenticate(request: FastifyRequest): Promise<void>;
  }
}

const digest = (value: string) => createHash('sha256').update(value).digest();

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

export default fp(
  async function auth(app: FastifyInstance) {
    const keys = app.config.api.keys.map(digest);
    app.decorate('authenticate', async (request: FastifyRequest) => {
      if (keys.length === 0) {
        throw new ApiError(401, 'AUTH_NOT_CONFIGURED', 'no API key is configured: set API_KEYS (comma-separated bearer keys) and restart the API');
      }
      const token = bearerToken(request);
      if (!token) throw new ApiError(401, 'UNAUTHORIZED', 'missing "Authorization: Bearer <key>" header', { 'www-authenticate': 'Bearer' });
      const given = digest(token);
      let ok = false;
      for (const key of keys) ok = timingSafeEqual(given, key) || ok; // no early exit: same work for every key
      if (!ok) throw new ApiError(401, 'UNAUTHORIZED', 'invalid API key', { 'www-authenticate': 'Bearer' });
    });
  },
  { name: 'auth', dependencies: ['config'] },
);
