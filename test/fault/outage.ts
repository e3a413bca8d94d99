/**
 * The Redis-outage scenario shared by fault tests 5 (Redis down) and 6 (Redis frozen): a real API and worker on
 * a private Redis; during the outage a client POSTs every 250 ms and every answer must be a 503 in under a
 * second; afterwards new jobs are accepted and processed by the same two processes (no restart).
 */
import { baseEnv, startApi, startWorker } from '../helpers/services';
import { type RedisServer, startRedisServer, uniquePrefix } from '../helpers/redis';
import { call } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { ms, payment, paymentKey } from './lib';

export interface OutageResult {
  requests: number;
  statuses: Record<number, number>;
  shapeOk: boolean;
  retryAfterOk: boolean;
  maxMs: number;
  p50Ms: number;
  acceptedAfterMs: number;
  processedAfterMs: number;
  apiPid: number;
  workerPid: number;
  apiAlive: boolean;
  workerAlive: boolean;
}

export async function redisOutage(
  t: { teardown(fn: () => unknown): void },
  outageMs: number,
  begin: (redis: RedisServer) => Promise<void>,
  end: (redis: RedisServer) => Promise<void>,
): Promise<OutageResult> {
  const redis = await startRedisServer({ appendonly: true });
  t.teardown(() => redis.stop());
  // Rate limit left on (the production path): a request makes two Redis calls, the limiter's and the enqueue.
  const env = baseEnv(redis.url, uniquePrefix('outage'), { LOG_LEVEL: 'warn' });
  const api = await startApi({ ...env, LOG_LEVEL: 'info' });
  t.teardown(() => api.stop('SIGKILL'));
  const worker = await startWorker({ ...env, WORKER_QUEUES: 'payments', LOG_LEVEL: 'info' });
  t.teardown(() => worker.stop('SIGKILL'));

  const processed = async (i: number) => {
    const res = await call('POST', `${api.url}/v1/queues/payments/jobs`, payment(i, 'outage'), paymentKey(i, 'outage'));
    if (res.status !== 202) return undefined;
    const id = res.body.id as string;
    await waitFor(async () => (await call('GET', `${api.url}/v1/queues/payments/jobs/${id}`)).body.state === 'completed', {
      what: `job ${id} completed`,
      timeoutMs: 15_000,
    });
    return id;
  };
  if (!(await processed(0))) throw new Error('baseline job not accepted');

  await begin(redis);
  const started = performance.now();
  const latencies: number[] = [];
  const statuses: Record<number, number> = {};
  let shapeOk = true;
  let retryAfterOk = true;
  let i = 1;
  while (performance.now() - started < outageMs) {
    const at = performance.now();
    const res = await call('POST', `${api.url}/v1/queues/payments/jobs`, payment(i, 'outage'), paymentKey(i++, 'outage'));
    latencies.push(ms(at));
    statuses[res.status] = (statuses[res.status] ?? 0) + 1;
    if (res.status === 503) {
      shapeOk &&= res.body?.statusCode === 503 && res.body?.code === 'REDIS_UNAVAILABLE' && typeof res.body?.message === 'string';
      retryAfterOk &&= res.headers['retry-after'] !== undefined;
    }
    const left = outageMs - (performance.now() - started);
    if (left > 0) await new Promise((r) => setTimeout(r, Math.min(250, left)));
  }
  await end(redis);
  const backAt = performance.now();

  // First accepted job after the outage, then processed by the same worker process.
  const res = await waitFor(
    async () => {
      const r = await call('POST', `${api.url}/v1/queues/payments/jobs`, payment(100_000, 'after'), paymentKey(100_000, 'after'));
      return r.status === 202 ? r : undefined;
    },
    { what: 'API accepting jobs after the outage', timeoutMs: 15_000, intervalMs: 100 },
  );
  const acceptedAfterMs = ms(backAt);
  const id = res.body.id as string;
  await waitFor(async () => (await call('GET', `${api.url}/v1/queues/payments/jobs/${id}`)).body.state === 'completed', {
    what: 'job after the outage completed',
    timeoutMs: 20_000,
    intervalMs: 100,
  });
  const processedAfterMs = ms(backAt);
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    requests: latencies.length,
    statuses,
    shapeOk,
    retryAfterOk,
    maxMs: sorted[sorted.length - 1] ?? 0,
    p50Ms: sorted[Math.floor(sorted.length / 2)] ?? 0,
    acceptedAfterMs,
    processedAfterMs,
    apiPid: api.process.pid!,
    workerPid: worker.process.pid!,
    apiAlive: api.process.exitCode === null && api.process.signalCode === null,
    workerAlive: worker.process.exitCode === null && worker.process.signalCode === null,
  };
}

export function assertOutage(t: { ok(v: unknown, m: string): unknown; same(a: unknown, b: unknown, m: string): unknown; comment(...m: unknown[]): unknown }, r: OutageResult, label: string): void {
  t.ok(r.requests >= 10, `${r.requests} POSTs during the outage`);
  t.same(Object.keys(r.statuses), ['503'], `every POST during the outage answered 503 (${JSON.stringify(r.statuses)})`);
  t.ok(r.shapeOk, '503 bodies have the error shape with code REDIS_UNAVAILABLE');
  t.ok(r.retryAfterOk, '503s carry Retry-After');
  t.ok(r.maxMs < 1000, `max POST latency during the outage ${r.maxMs} ms < 1000 ms`);
  t.ok(r.apiAlive && r.workerAlive, 'API and worker processes never restarted');
  t.comment(
    `${label}: ${r.requests} POSTs during the outage, all 503, p50 ${r.p50Ms} ms, max ${r.maxMs} ms; ` +
      `after recovery first job accepted in ${r.acceptedAfterMs} ms, processed in ${r.processedAfterMs} ms, same API/worker processes`,
  );
}
