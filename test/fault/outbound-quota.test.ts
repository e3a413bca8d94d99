/**
 * The outbound boundary across replicas, real worker processes, real HTTP targets:
 * - OUTBOUND_RATE_LIMITS=webhook_host=20/s, two replicas, 200 jobs to one host: the host never sees more than 20
 *   in any second, and every job is delivered (the time it took is printed: ≈ 10 s is the quota used, not starved);
 * - half-open with four replicas: after the circuit opened, one probe at a time reaches the dependency;
 * - a bad OUTBOUND_RATE_LIMITS stops the worker at boot (exit 1) naming the variable.
 */
import http from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import t from 'tap';
import { startPipeline } from '../helpers/pipeline';
import { serveOnLoopback } from '../helpers/receiver';
import { scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { baseEnv, startWorker } from '../helpers/services';
import { SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { queueHandle } from './lib';

interface Target {
  url: string;
  arrivals: number[];
  inFlight: number;
  maxInFlight: number;
}

async function startTarget(t: { teardown(fn: () => unknown): void }, answer: (res: http.ServerResponse) => void): Promise<Target & { resetMax(): void }> {
  const target = { url: '', arrivals: [] as number[], inFlight: 0, maxInFlight: 0, resetMax: () => (target.maxInFlight = target.inFlight) };
  const server = http.createServer((req, res) => {
    target.arrivals.push(Date.now());
    target.inFlight++;
    target.maxInFlight = Math.max(target.maxInFlight, target.inFlight);
    res.once('close', () => target.inFlight--);
    req.resume();
    req.once('end', () => answer(res));
  });
  const served = await serveOnLoopback(server);
  target.url = served.url;
  t.teardown(() => served.close());
  return target;
}

/** The most arrivals in any window of `ms` (sliding, from each arrival). */
function worstWindow(arrivals: number[], ms: number): number {
  const sorted = [...arrivals].sort((a, b) => a - b);
  let worst = 0;
  let j = 0;
  for (let i = 0; i < sorted.length; i++) {
    while (sorted[i]! - sorted[j]! >= ms) j++;
    worst = Math.max(worst, i - j + 1);
  }
  return worst;
}

const hook = (url: string, i: number) => ({ name: 'webhooks', data: { payload: { url, event: 'quota', payload: { i } }, meta: {} } });

t.test('OUTBOUND_RATE_LIMITS=webhook_host=20/s, two replicas, 200 jobs to one host: never more than 20 in any second', async (t) => {
  const p = await startPipeline(t);
  const target = await startTarget(t, (res) => res.writeHead(200).end());
  const env = { WORKER_QUEUES: 'webhooks', OUTBOUND_RATE_LIMITS: 'webhook_host=20/s' };
  const workers = [await p.startWorker(env), await p.startWorker(env)];
  // Reads through a client without the producer's 400 ms command timeout (a loaded CI box).
  const queue = queueHandle(t, SHARED_REDIS_URL, p.prefix, 'webhooks');
  // The host is this test process: its own event-loop lag shifts the arrival times it records (a stalled loop
  // stamps several requests at once), so windows are shortened by the worst lag it had.
  const lag = monitorEventLoopDelay({ resolution: 10 });
  lag.enable();
  const started = Date.now();
  await queue.addBulk(Array.from({ length: 200 }, (_, i) => hook(target.url, i)));
  await waitFor(async () => (await queue.getJobCounts('completed')).completed === 200, {
    what: '200 deliveries completed',
    timeoutMs: 90_000,
    intervalMs: 250,
  });
  const tookMs = Date.now() - started;
  lag.disable();
  const lagMs = Math.ceil(lag.max / 1e6);
  t.equal(target.arrivals.length, 200, 'each delivered once');
  const worst = worstWindow(target.arrivals, Math.max(500, 1_000 - lagMs));
  const sorted = [...target.arrivals].sort((a, b) => a - b);
  const tightest21 = Math.min(...sorted.slice(20).map((a, i) => a - sorted[i]!));
  t.ok(worst <= 20, `at most 20 arrivals in any second at the host (worst ${worst} in ${Math.max(500, 1_000 - lagMs)} ms windows; observer lag ≤ ${lagMs} ms; strict 1 s: ${worstWindow(target.arrivals, 1_000)})`);
  t.equal((await queue.getJobCounts('failed')).failed, 0, 'none failed');
  let quotaHits = 0;
  let throttled = 0;
  for (const w of workers) {
    const m = await scrape(w.metricsUrl);
    quotaHits += valueOf(m, 'bullmq_rate_limit_hits_total', { queue: 'webhooks', source: 'quota' });
    throttled += valueOf(m, 'outbound_requests_total', { dependency: 'webhook_host', outcome: 'throttled' });
    t.equal(valueOf(m, 'outbound_rate_limit', { dependency: 'webhook_host' }), 20, 'outbound_rate_limit reports the quota, 20/s');
  }
  t.equal(quotaHits, throttled, 'every throttled call is a quota hit of its queue');
  const jobs = await queue.getJobs(['completed'], 0, 199);
  t.ok(jobs.every((j) => j.attemptsMade === 1), 'no attempt used by waiting for the quota');
  t.comment(`200 jobs, quota 20/s per host, 2 replicas: delivered in ${tookMs} ms, worst second ${worst} arrivals (21 arrivals span ≥ ${tightest21} ms), ` +
    `${throttled} waits past 1 s put back to delayed (the rest waited in the worker)`);
});

t.test('half-open with four replicas: one probe at a time reaches the dependency', async (t) => {
  const p = await startPipeline(t);
  // Slow 503s: a probe is in flight for 400 ms, so a second concurrent probe would be seen.
  const target = await startTarget(t, (res) => setTimeout(() => res.writeHead(503).end(), 400));
  const workers = [];
  for (let i = 0; i < 4; i++) workers.push(await p.startWorker({ WORKER_QUEUES: 'webhooks' }));
  await queueHandle(t, SHARED_REDIS_URL, p.prefix, 'webhooks').addBulk(Array.from({ length: 40 }, (_, i) => hook(target.url, i)));
  await waitFor(async () => (await p.app.inject({ method: 'GET', url: '/v1/admin/circuits', headers: p.adminAuth })).json().circuits.length === 1, {
    what: 'the circuit open',
    timeoutMs: 20_000,
  });
  // Let the wave that was in flight when it opened finish, then watch two probe periods (5 s, then 10 s).
  await waitFor(() => target.inFlight === 0, { what: 'the wave finished', timeoutMs: 15_000, intervalMs: 50 });
  const wave = target.arrivals.length;
  target.resetMax();
  await waitFor(() => target.arrivals.length >= wave + 2, { what: 'two probes', timeoutMs: 40_000, intervalMs: 100 });
  t.equal(target.maxInFlight, 1, 'never more than one request in flight while half-open');
  const probeTimes = target.arrivals.slice(wave).map((a) => a - target.arrivals[wave - 1]!);
  let probes = 0;
  let opened = 0;
  for (const w of workers) {
    const m = await scrape(w.metricsUrl);
    probes += valueOf(m, 'outbound_circuit_transitions_total', { dependency: 'webhook_host', to: 'half_open' });
    opened += valueOf(m, 'outbound_circuit_transitions_total', { dependency: 'webhook_host', to: 'open' });
  }
  t.ok(probes >= 1, `${probes} half_open transitions across the replicas (${opened} to open)`);
  const circuit = (await p.app.inject({ method: 'GET', url: '/v1/admin/circuits', headers: p.adminAuth })).json().circuits[0];
  t.ok(circuit.recentFailures >= 5, `the circuit lists its failures (${circuit.recentFailures})`);
  t.comment(`4 replicas, 40 jobs to a host answering 503 after 400 ms: wave of ${wave}, then probes ${probeTimes.join(', ')} ms after it, one at a time`);

  // Closed by hand (the replicas see it within their refresh time).
  const host = new URL(target.url).host;
  const client = await p.app.inject({ method: 'POST', url: `/v1/admin/circuits/webhook_host/reset?host=${host}`, headers: p.auth });
  t.equal(client.statusCode, 403, 'a client key cannot reset a circuit');
  const noHost = await p.app.inject({ method: 'POST', url: '/v1/admin/circuits/webhook_host/reset', headers: p.adminAuth });
  t.equal(noHost.json().code, 'HOST_REQUIRED', 'webhook_host needs its host');
  const reset = await p.app.inject({ method: 'POST', url: `/v1/admin/circuits/webhook_host/reset?host=${host}`, headers: p.adminAuth });
  t.same(reset.json(), { dependency: 'webhook_host', target: host, state: 'closed', wasOpen: true }, 'reset');
  const m = await p.registry.metrics();
  t.match(m, /api_admin_actions_total\{action="circuit_reset"\} 1/, 'counted as an admin action');
});

t.test('a bad OUTBOUND_RATE_LIMITS stops the worker at boot, naming the variable', async (t) => {
  for (const value of ['webhook_host=20/d', 'stripe=5/s', 'payment_provider=0/s', 'webhook_host']) {
    const err = await startWorker(baseEnv(SHARED_REDIS_URL, uniquePrefix('badquota'), { OUTBOUND_RATE_LIMITS: value })).then(
      () => undefined,
      (e: Error) => e,
    );
    t.ok(err, `${value}: refused`);
    t.match(String(err?.message), /OUTBOUND_RATE_LIMITS/, `${value}: the error names the variable`);
    t.match(String(err?.message), /exited \(1\)/, `${value}: exit 1`);
  }
});
