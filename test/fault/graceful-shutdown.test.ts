/**
 * SIGTERM with 20 active 2-second jobs. The worker stops taking jobs, finishes the 20 within the
 * grace period and exits 0; none of them runs again (attemptsStarted stays 1, one charge each, a later worker
 * finds nothing to recover). The API, SIGTERMed with a request in flight, finishes that request and answers
 * requests arriving while it closes with 503, then exits 0.
 */
import net from 'node:net';
import t from 'tap';
import { baseEnv, startApi, startWorker, type ServiceProcess, API_KEY, ADMIN_KEY, SIGNING_SECRET } from '../helpers/services';
import { deletePrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { call, scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { enqueueWithRetry, payment, queueHandle, redisClient, ms } from './lib';
import { providerCharges } from '../helpers/charges';

const GRACE_MS = 10_000;

async function started(_t: unknown, list: ServiceProcess[], p: Promise<ServiceProcess>): Promise<ServiceProcess> {
  const s = await p;
  list.push(s);
  return s;
}

t.test('SIGTERM with 20 active 2 s jobs: exit 0 within the grace period, none re-run; API answers 503 while closing', async (t) => {
  const prefix = uniquePrefix('graceful');
  const procs: ServiceProcess[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((s) => s.stop('SIGKILL')));
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });
  const env = baseEnv(SHARED_REDIS_URL, prefix, { API_RATE_LIMIT_MAX: '0', SHUTDOWN_GRACE_MS: String(GRACE_MS) });
  const api = await started(t, procs, startApi(env));
  const queue = queueHandle(t, SHARED_REDIS_URL, prefix);
  const redis = redisClient(t, SHARED_REDIS_URL);
  t.equal((await call('PUT', `${api.url}/v1/admin/faults/payments`, { latencyMs: 2000 }, { authorization: `Bearer ${ADMIN_KEY}` })).status, 200);

  const workerEnv = { ...env, WORKER_QUEUES: 'payments', WORKER_CONCURRENCY_PAYMENTS: '20' };
  const worker = await started(t, procs, startWorker(workerEnv));
  const post = (body: object) => (headers: Record<string, string>) => call('POST', `${api.url}/v1/queues/payments/jobs`, body, headers);
  const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => enqueueWithRetry(post(payment(i, 'grace')), `grace-${i}`)));
  t.equal(new Set(ids).size, 20, '20 payments accepted');
  await waitFor(async () => (await queue.getJobCounts('active')).active === 20, { what: '20 active jobs' });
  const extra = await enqueueWithRetry(post(payment(99, 'grace')), 'grace-99');

  const sigtermAt = performance.now();
  const code = await worker.stop('SIGTERM');
  const exitMs = ms(sigtermAt);
  t.equal(code, 0, 'worker exit code 0');
  t.ok(exitMs < GRACE_MS, `exited in ${exitMs} ms, within the ${GRACE_MS} ms grace period`);
  t.ok(worker.logs.some((l) => l.msg === 'shutdown complete'), 'shutdown complete logged');

  const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
  const states = await Promise.all(jobs.map((j) => j!.getState()));
  t.same(states.filter((s) => s !== 'completed'), [], 'all 20 completed during shutdown');
  t.same(jobs.filter((j) => j!.attemptsStarted !== 1).map((j) => j!.id), [], 'each started exactly once');
  t.not(await (await queue.getJob(extra))!.getState(), 'completed', 'the job enqueued after SIGTERM was not taken');

  // A new worker with a fast stalled check: takes the extra job, finds nothing of the 20 to recover.
  const next = await started(t, procs, startWorker({ ...workerEnv, WORKER_LOCK_DURATION_MS: '1000', WORKER_STALLED_INTERVAL_MS: '500' }));
  await waitFor(async () => (await queue.getJob(extra))!.getState().then((s) => s === 'completed'), { what: 'extra job completed', timeoutMs: 10_000 });
  const again = await Promise.all(ids.map((id) => queue.getJob(id)));
  const reRun = again.filter((j) => j!.attemptsStarted !== 1).length;
  t.equal(reRun, 0, 'none of the 20 re-run');
  t.equal(valueOf(await scrape(next.metricsUrl), 'bullmq_jobs_stalled_total', { queue: 'payments' }), 0, 'nothing stalled');
  t.equal(Object.keys(await providerCharges(redis, prefix)).length, 21, 'one charge per payment (20 + the extra)');

  // API: a request in flight when SIGTERM arrives is finished; one arriving while closing gets 503.
  const { first, second, apiExit } = await apiClosing(api, ids[0]!);
  t.equal(first, 202, 'in-flight POST finished with 202');
  t.equal(second, 503, 'request arriving while closing answered 503');
  t.equal(apiExit.code, 0, 'api exit code 0');

  // Never log secrets or payment data: neither process's log (info level) holds the key, the signing secret
  // or an account number, across 21 payments, a shutdown and a restart.
  const logText = [api, worker, next].map((s) => JSON.stringify(s.logs) + s.stderr.join('')).join('\n');
  for (const [what, needle] of [['API key', API_KEY], ['signing secret', SIGNING_SECRET], ['account number', 'acct_']] as const) {
    t.notOk(logText.includes(needle), `no ${what} in the logs`);
  }
  t.comment(`worker exit 0 after ${exitMs} ms (grace ${GRACE_MS} ms) with 20 active 2 s jobs; re-run ${reRun} of 20; API while closing: in-flight ${first}, new ${second}, exit ${apiExit.code} after ${apiExit.ms} ms`);
});

/**
 * One keep-alive connection: a POST whose body is half sent, then SIGTERM, then the rest of the body with a
 * second request pipelined behind it. Returns both status codes and the API's exit.
 */
async function apiClosing(api: ServiceProcess, jobId: string) {
  const body = JSON.stringify(payment(1000, 'closing'));
  const head = (method: string, path: string, extra = '') =>
    `${method} ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer ${API_KEY}\r\n${extra}\r\n`;
  const sock = net.connect(api.port!, '127.0.0.1');
  let raw = '';
  sock.on('data', (c: Buffer) => (raw += c.toString()));
  sock.on('error', () => undefined);
  await new Promise((resolve) => sock.once('connect', resolve));
  // Request 0 proves the connection is served; request 1 is then left with half its body.
  sock.write(head('GET', '/healthz'));
  await waitFor(() => /HTTP\/1\.1 200/.test(raw), { what: 'healthz on the connection' });
  sock.write(head('POST', '/v1/queues/payments/jobs', `content-type: application/json\r\nidempotency-key: closing-1000\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`) + body.slice(0, 10));
  // The server emits nothing when it has parsed request 1's headers; give it a moment on loopback.
  await new Promise((r) => setTimeout(r, 300));
  const termAt = performance.now();
  api.process.kill('SIGTERM');
  await waitFor(() => api.logs.some((l) => /shutting down/.test(String(l.msg))), { what: 'api shutting down' });
  sock.write(body.slice(10) + head('GET', `/v1/queues/payments/jobs/${jobId}`));
  await waitFor(() => (raw.match(/HTTP\/1\.1 \d{3}/g) ?? []).length >= 3 || sock.destroyed, { what: 'two responses', timeoutMs: 10_000 });
  const statuses = (raw.match(/HTTP\/1\.1 (\d{3})/g) ?? []).map((s) => Number(s.slice(9)));
  sock.destroy();
  const code = await api.exited;
  return { first: statuses[1], second: statuses[2], apiExit: { code, ms: ms(termAt) } };
}
