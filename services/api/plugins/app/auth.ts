/**
 * Two key rings, two guards. Client keys (API_KEYS) enqueue and read jobs; admin keys (ADMIN_API_KEYS) reach
 * /v1/admin/* and the console, and nothing else:
 *   - `app.authenticate(request)`: client routes. No key or an unknown key → 401; an admin key → 403 FORBIDDEN
 *     (an operator's key is not a client identity: jobs and Idempotency-Keys are scoped per client key).
 *   - `app.requireAdmin(request)`: admin routes. No key or an unknown key → 401; a client key → 403 FORBIDDEN.
 * Both set `request.keyId` (first 16 hex of the key's sha256, never the key) for logs, audit lines and the
 * job envelope's clientId. Admin routes also take `Authorization: Basic` with user "admin" and the admin key as
 * password, so a browser can open the console.
 * Comparison is constant-time over digests of equal length, and every key of a ring is compared (no early exit),
 * so response timing reveals nothing about a key. Wrong keys are limited per client address (see
 * ../../failed-auth.ts): past the limit that address's wrong keys get 429 AUTH_RATE_LIMITED; valid keys are served.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { ApiError } from '../../errors';
import { FailedAuthLimiter } from '../../failed-auth';

declare module 'fastify' {
  interface FastifyInstance {
    /** Guard of client routes (onRequest of the client scope, routes/jobs.ts). */
    authenticate(request: FastifyRequest): Promise<void>;
    /**
     * Guard of admin routes (onRequest of the admin scope, routes/admin/index.ts, and of the console scope,
     * routes/console.ts, which passes CONSOLE_CHALLENGE so a browser asks for the admin login).
     */
    requireAdmin(request: FastifyRequest, challenge?: Record<string, string>): Promise<void>;
  }
  interface FastifyRequest {
    /** Key id of the authenticated key (digest prefix), set by either guard. */
    keyId?: string;
  }
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/** Stable, non-reversible id of a key: what logs, metrics-free audit lines and job envelopes carry. */
export function keyIdOf(key: string): string {
  return digest(key).toString('hex').slice(0, 16);
}

export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

/** User name expected with HTTP Basic on admin routes; the password is the admin key. */
export const BASIC_ADMIN_USER = 'admin';

/** The admin key sent as `Authorization: Basic base64("admin:<key>")`, if any. */
export function basicAdminPassword(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const match = header ? /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0 || decoded.slice(0, colon) !== BASIC_ADMIN_USER) return undefined;
  return decoded.slice(colon + 1) || undefined;
}

/** The credential a request presents, whichever scheme carried it (Basic only counts on admin routes). */
export function presentedKey(request: FastifyRequest, schemes: { basic: boolean }): string | undefined {
  return bearerToken(request) ?? (schemes.basic ? basicAdminPassword(request) : undefined);
}

class KeyRing {
  private readonly digests: Buffer[];
  /** keyIdOf each configured key, computed once: a request hashes its key once (in match), not twice. */
  private readonly ids: string[];
  constructor(keys: readonly string[]) {
    this.digests = keys.map(digest);
    this.ids = keys.map(keyIdOf);
  }
  get empty(): boolean {
    return this.digests.length === 0;
  }
  /** The key id of `key` when it is one of the ring's keys. */
  match(key: string): string | undefined {
    const given = digest(key);
    let found = -1;
    this.digests.forEach((d, i) => {
      if (timingSafeEqual(given, d)) found = i; // no early exit: same work for every key
    });
    return found >= 0 ? this.ids[found] : undefined;
  }
  has(key: string): boolean {
    return this.match(key) !== undefined;
  }
}

const CLIENT_CHALLENGE = { 'www-authenticate': 'Bearer' };
const ADMIN_CHALLENGE = { 'www-authenticate': `Bearer realm="admin", Basic realm="admin", charset="UTF-8"` };
/** The console's challenge: Basic only, so a browser shows its login dialog (user "admin", password an admin key). */
export const CONSOLE_CHALLENGE = { 'www-authenticate': 'Basic realm="bullmq-console"' };

export default fp(
  async function auth(app: FastifyInstance) {
    const clients = new KeyRing(app.config.api.keys);
    const admins = new KeyRing(app.config.api.adminKeys);
    const limiter = new FailedAuthLimiter(app.redis, app.config.queuePrefix, app.config.api.authFailureLimit);
    app.decorateRequest('keyId', undefined);

    /** Records a wrong key; from the attempt that crosses the limit on, wrong keys are answered 429 instead of 401. */
    const fail = async (request: FastifyRequest, error: ApiError): Promise<never> => {
      const { retryAfterS, justBlocked } = await limiter.recordFailure(request.ip);
      if (retryAfterS > 0) {
        app.apiMetrics.rejected('auth_rate_limited');
        if (justBlocked) request.log.warn({ clientAddress: request.ip, retryAfterS }, 'client address over the failed-auth limit: its wrong keys get 429');
        throw limiter.error(retryAfterS);
      }
      throw error;
    };

    app.decorate('authenticate', async (request: FastifyRequest) => {
      if (clients.empty) {
        throw new ApiError(401, 'AUTH_NOT_CONFIGURED', 'no API key is configured: set API_KEYS (comma-separated bearer keys) and restart the API');
      }
      const token = bearerToken(request);
      // No key is not a guess: only wrong keys count against the address.
      if (!token) throw new ApiError(401, 'UNAUTHORIZED', 'missing "Authorization: Bearer <key>" header', CLIENT_CHALLENGE);
      const clientKeyId = clients.match(token);
      if (clientKeyId) {
        request.keyId = clientKeyId;
        return;
      }
      if (admins.has(token)) {
        throw new ApiError(403, 'FORBIDDEN', 'admin keys are not client keys: use a key from API_KEYS on this route');
      }
      return fail(request, new ApiError(401, 'UNAUTHORIZED', 'invalid API key', CLIENT_CHALLENGE));
    });

    app.decorate('requireAdmin', async (request: FastifyRequest, challenge: Record<string, string> = ADMIN_CHALLENGE) => {
      const notConfigured = () =>
        new ApiError(401, 'AUTH_NOT_CONFIGURED', 'no admin key is configured: set ADMIN_API_KEYS (comma-separated) and restart the API');
      const token = presentedKey(request, { basic: true });
      if (!token) {
        if (admins.empty) throw notConfigured();
        throw new ApiError(401, 'UNAUTHORIZED', 'missing "Authorization: Bearer <admin key>" header', challenge);
      }
      const adminKeyId = admins.match(token);
      if (adminKeyId) {
        request.keyId = adminKeyId;
        return;
      }
      // A client key is refused as such whether or not admin keys exist: it is known, and it is not enough.
      if (clients.has(token)) {
        throw new ApiError(403, 'FORBIDDEN', 'this route needs an admin key (ADMIN_API_KEYS); client keys cannot use it');
      }
      if (admins.empty) throw notConfigured();
      return fail(request, new ApiError(401, 'UNAUTHORIZED', 'invalid admin key', challenge));
    });
  },
  { name: 'auth', dependencies: ['config', 'queues', 'telemetry'] },
);
