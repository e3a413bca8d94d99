/**
 * The operator console: bull-board (@bull-board/fastify + its BullMQ adapter) at /admin/queues, showing every
 * catalog queue. Everything bull-board registers — the page, its JSON API and its static assets — lives in this
 * one encapsulated scope whose onRequest hook is the admin guard (plugins/app/auth.ts): Bearer or HTTP Basic
 * (user "admin", password an admin key); none → 401 with `WWW-Authenticate: Basic realm="bullmq-console"` so a
 * browser asks for the login; a client key → 403. test/console/console.test.ts checks every route it registers.
 *
 * The same hook keeps the console honest with the rest of the system:
 * - Browsers send Basic credentials on their own, so a change (any method but GET/HEAD) must come from the
 *   console's own origin: a cross-site page cannot make an operator's browser retry or delete jobs.
 * - Changes that would bypass what the API guarantees are refused (403 CONSOLE_ACTION_REFUSED): adding a job or
 *   editing its data (no schema validation, no Idempotency-Key, no client scoping — for payments, a way to move
 *   money), and emptying or obliterating a queue (accepted jobs would be lost).
 * - Retry of a failed job works as in the failures API (same id, a fresh set of attempts) and counts in
 *   bullmq_jobs_replayed_total{queue}; every change is audited with the admin key id
 *   (api_admin_actions_total{action="console_change"}).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { createBullBoard } from '@bull-board/api';
import { FastifyAdapter } from '@bull-board/fastify';
import { QUEUE_NAMES, isQueueName } from '../../common/queue-catalog';
import { CircuitAwareAdapter, ConsoleCircuits } from '../console-circuits';
import { CONSOLE_CHALLENGE } from '../plugins/app/auth';
import { retryFailedJob } from '../failures/replay';
import { ApiError, errorBody } from '../errors';

export const CONSOLE_PATH = '/admin/queues';

/** bull-board API routes (relative to CONSOLE_PATH) that would bypass the API's guarantees. */
const REFUSED: Record<string, string> = {
  'POST /api/queues/:queueName/add': 'add jobs through POST /v1/queues/<queue>/jobs, where the payload is validated and idempotent',
  'PATCH /api/queues/:queueName/:jobId/update-data': "a job's data is its client's request; retry it as it is or enqueue a new one",
  'PUT /api/queues/:queueName/empty': 'emptying a queue drops accepted jobs; remove or clean jobs one state at a time',
  'PUT /api/queues/:queueName/obliterate': 'obliterating a queue drops accepted jobs and its history',
};
/** The one bull-board route that reads the queues' descriptions and display names (its list of queues). */
const QUEUES_LIST = '/api/queues';
const RETRY_ONE = '/api/queues/:queueName/:jobId/retry';
const RETRY_ALL = '/api/queues/:queueName/retry/:queueStatus';

declare module 'fastify' {
  interface FastifyRequest {
    /** Failed jobs a console retry is about to send back (counted once the retry succeeded). */
    consoleReplay?: { queue: string; count: number };
  }
}

function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  return reply.status(err.statusCode).headers(err.headers).send(errorBody(err.statusCode, err.code, err.message));
}

/** A change must come from the console's own page: same host in Origin (if sent) and Sec-Fetch-Site (if sent). */
function crossSite(request: FastifyRequest): boolean {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  const origin = request.headers.origin;
  if (origin === undefined) return false;
  try {
    return new URL(origin).host !== request.host;
  } catch {
    return true;
  }
}

export default async function consoleRoutes(app: FastifyInstance) {
  const serverAdapter = new FastifyAdapter().setBasePath(CONSOLE_PATH);
  const circuits = new ConsoleCircuits(() => app.queueSnapshot.get());
  createBullBoard({
    queues: QUEUE_NAMES.map((name) => new CircuitAwareAdapter(() => app.queues[name], name, circuits)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Job console' } },
  });

  app.decorateRequest('consoleReplay', undefined);
  app.addHook('onRequest', async (request, reply) => {
    try {
      await app.requireAdmin(request, CONSOLE_CHALLENGE);
      if (request.method === 'GET' || request.method === 'HEAD') return;
      if (crossSite(request)) {
        throw new ApiError(403, 'CROSS_SITE_REQUEST', 'console changes must come from the console page itself (Origin / Sec-Fetch-Site mismatch)');
      }
      const route = (request.routeOptions.url ?? '').slice(CONSOLE_PATH.length);
      const refused = REFUSED[`${request.method} ${route}`];
      if (refused) throw new ApiError(403, 'CONSOLE_ACTION_REFUSED', `refused in the console: ${refused}`);
      const { queueName, jobId, queueStatus } = request.params as Record<string, string | undefined>;
      if (!queueName || !isQueueName(queueName)) return;
      const queue = app.queues[queueName];
      if (route === RETRY_ONE && jobId) {
        // A failed job is retried here, the way the failures API does it (same id, a fresh set of attempts);
        // bull-board's own handler would keep the used-up attempt count. Anything else (a completed job) is its.
        if (await app.withRedis(async () => retryFailedJob(queue, jobId))) {
          request.consoleReplay = { queue: queueName, count: 1 };
          // eslint-disable-next-line @typescript-eslint/return-await -- an async hook answers early by returning the reply (Fastify's documented form)
          return reply.status(204).send();
        }
      } else if (route === RETRY_ALL && queueStatus === 'failed') {
        request.consoleReplay = { queue: queueName, count: await app.withRedis(() => queue.getFailedCount()) };
      }
    } catch (err) {
      // Answered here, not thrown: bull-board's scope has its own error handler, which knows no challenge header.
      if (err instanceof ApiError) return sendError(reply, err);
      throw err;
    }
  });

  // After the guard (a preHandler runs only for requests it let through): the queue list shows each queue's open
  // circuits, read from the API's 1 s queue snapshot; a failed read shows the queues without them.
  app.addHook('preHandler', async (request) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') return;
    if ((request.routeOptions.url ?? '').slice(CONSOLE_PATH.length) === QUEUES_LIST) await circuits.refresh(request.log);
  });

  app.addHook('onResponse', async (request, reply) => {
    if (request.method === 'GET' || request.method === 'HEAD' || reply.statusCode >= 400) return;
    if (request.consoleReplay) app.replayMetrics.replayed(request.consoleReplay.queue, request.consoleReplay.count);
    app.recordAdminAction(request, 'console_change', {
      method: request.method,
      route: request.routeOptions.url,
      params: request.params,
      statusCode: reply.statusCode,
      replayed: request.consoleReplay?.count,
    });
  });

  await app.register(serverAdapter.registerPlugin(), { prefix: CONSOLE_PATH });
}
