/**
 * Dependency outages with the circuit breakers (services/worker/outbound/), real worker processes, real HTTP:
 * - the payment provider fails every call for 40 s while 40 payments arrive, two replicas: none fails for good,
 *   all complete after recovery, far fewer than 3 failing calls per payment, attempts kept, charges = intents;
 * - a webhook host answers 503 for 40 s beside a healthy one: the healthy host's deliveries go on while the dead
 *   one's circuit is open, the dead host gets one wave plus probes, every job is delivered after it recovers.
 * Figures (calls, probes, time to drain after recovery) are printed, not asserted: docs/reliability.md.
 */
import http from 'node:http';
import t from 'tap';
import { startPipeline } from '../helpers/pipeline';
import { serveOnLoopback, startReceiver } from '../helpers/receiver';
import { scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { providerCharges } from '../helpers/charges';
import { SHARED_REDIS_URL } from '../helpers/redis';
import { payment, paymentKey, queueHandle, redisClient } from './lib';

const OUTAGE_MS = 40_000;

// Two 40 s outages and their recoveries: ≈ 170 s on a quiet box, near the suite's 240 s per file (.taprc). The probe
// times double (5, 10, 20, 40 s, then 60 s): one probe that fails after the recovery (a loaded CI box) moves the
// drain from ≈ 38 s to ≈ 100 s after it, so the liveness bound below allows that, and the file its own timeout.
t.setTimeout(600_000);

async function sumOver(urls: string[], name: string, labels: Record<string, string>): Promise<number> {
  let total = 0;
  for (const url of urls) total += valueOf(await scrape(url), name, labels);
  return total;
}

t.test('payment provider failing for 40 s, two replicas, 40 payments: none fails, attempts kept, charges = intents', async (t) => {
  const p = await startPipeline(t);
  const workers = [await p.startWorker({ WORKER_QUEUES: 'payments' }), await p.startWorker({ WORKER_QUEUES: 'payments' })];
  const metricsUrls = workers.map((w) => w.metricsUrl);
  await p.setFaults('payments', { failureRate: 1 });
  const outageStart = Date.now();

  const ids: string[] = [];
  for (let i = 0; i < 40; i++) {
    ids.push(await p.enqueue('payments', payment(i, 'outage'), paymentKey(i, 'outage')));
    await new Promise((r) => setTimeout(r, (OUTAGE_MS - 5_000) / 40));
  }
  const circuits = await p.app.inject({ method: 'GET', url: '/v1/admin/circuits', headers: p.adminAuth });
  t.equal(circuits.statusCode, 200);
  t.match(circuits.json().circuits, [{ dependency: 'payment_provider', target: 'payment_provider', state: /open|half_open/ }], 'the provider circuit is open during the outage');
  await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (Date.now() - outageStart))));
  const failingCalls = await sumOver(metricsUrls, 'outbound_requests_total', { dependency: 'payment_provider', outcome: 'failure' });
  await p.setFaults('payments', { failureRate: 0 });
  const recoveredAt = Date.now();

  // Reads through a client without the producer's 400 ms command timeout (a loaded CI box).
  const queue = queueHandle(t, SHARED_REDIS_URL, p.prefix);
  await waitFor(async () => (await queue.getJobCounts('completed')).completed === 40, {
    what: '40 payments completed after recovery',
    timeoutMs: 200_000,
    intervalMs: 500,
  });
  const drainedMs = Date.now() - recoveredAt;
  const jobs = await Promise.all(ids.map((id) => queue.getJob(id)));
  t.equal((await queue.getJobCounts('failed')).failed, 0, 'none failed for good');
  t.ok(failingCalls < 40, `the provider saw ${failingCalls} failing calls for 40 payments (< 1 per payment; 120 without breaker)`);
  const attempts = jobs.map((j) => j!.attemptsMade);
  t.ok(attempts.every((a) => a <= 3), `no job used more than its 3 attempts (${attempts.join(',')})`);
  const untouched = attempts.filter((a) => a === 1).length;
  t.ok(untouched >= 20, `${untouched} of 40 payments completed on their first attempt after waiting (deferred, attempts kept)`);
  const shortCircuited = await sumOver(metricsUrls, 'outbound_requests_total', { dependency: 'payment_provider', outcome: 'short_circuited' });
  t.ok(shortCircuited > 0, `${shortCircuited} calls short-circuited`);

  const charges = await providerCharges(redisClient(t, SHARED_REDIS_URL), p.prefix);
  t.equal(Object.keys(charges).length, 40, 'charges = intents');
  const transitions = await sumOver(metricsUrls, 'outbound_circuit_transitions_total', { dependency: 'payment_provider', to: 'open' });
  t.ok(transitions >= 1, 'open transitions counted');
  t.equal((await p.app.inject({ method: 'GET', url: '/v1/admin/circuits', headers: p.adminAuth })).json().circuits.length, 0, 'closed again');
  t.comment(`provider down 40 s, 40 payments, 2 replicas: ${failingCalls} failing calls, ${shortCircuited} short-circuited, ` +
    `${transitions} open transitions, 0 failed, all completed ${drainedMs} ms after recovery; attempts used ${attempts.join(',')}`);
});

t.test('a webhook host answering 503 for 40 s beside a healthy one: healthy delivered meanwhile, the dead one gets a wave and probes', async (t) => {
  const p = await startPipeline(t);
  const healthy = await startReceiver();
  t.teardown(() => healthy.close());
  let deadUntil = Date.now() + 10 * 60_000;
  const dead = { hits: 0, hitsWhileDead: 0 };
  const server = http.createServer((req, res) => {
    dead.hits++;
    req.resume();
    req.once('end', () => {
      if (Date.now() < deadUntil) {
        dead.hitsWhileDead++;
        res.writeHead(503).end();
      } else res.writeHead(200).end();
    });
  });
  const deadHost = await serveOnLoopback(server);
  t.teardown(() => deadHost.close());
  const workers = [await p.startWorker({ WORKER_QUEUES: 'webhooks' }), await p.startWorker({ WORKER_QUEUES: 'webhooks' })];
  const metricsUrls = workers.map((w) => w.metricsUrl);
  deadUntil = Date.now() + OUTAGE_MS;

  const hook = (url: string, event: string) => ({ data: { url, event, payload: { event } } });
  const queue = queueHandle(t, SHARED_REDIS_URL, p.prefix, 'webhooks');
  const deadIds: string[] = [];
  for (let i = 0; i < 30; i++) deadIds.push(await p.enqueue('webhooks', hook(deadHost.url, `dead.${i}`)));
  await waitFor(async () => (await p.app.inject({ method: 'GET', url: '/v1/admin/circuits', headers: p.adminAuth })).json().circuits.length === 1, {
    what: 'the dead host circuit open',
    timeoutMs: 20_000,
  });
  const wave = dead.hits;

  const healthyIds: string[] = [];
  for (let i = 0; i < 20; i++) healthyIds.push(await p.enqueue('webhooks', hook(healthy.url, `healthy.${i}`)));
  for (const id of healthyIds) await p.waitForState('webhooks', id, 'completed', 30_000);
  t.ok(Date.now() < deadUntil, 'all 20 healthy deliveries made while the dead host was still down');
  const healthyJobs = await Promise.all(healthyIds.map((id) => queue.getJob(id)));
  t.ok(healthyJobs.every((j) => j!.attemptsMade === 1), 'each healthy delivery on its first attempt');
  const status = (await p.app.inject({ method: 'GET', url: '/queue/status' })).json();
  t.ok((status.data.issues as string[]).some((i) => /^"webhooks": 1 webhook_host circuit/.test(i)), `/queue/status names the open circuit (${status.data.issues.join('; ')})`);
  const health = (await p.app.inject({ method: 'GET', url: '/queue/health' })).json();
  t.match(health.data.queues.webhooks, { status: 'degraded', openCircuits: 1 }, '/queue/health: webhooks degraded while its host circuit is open');

  await waitFor(async () => (await queue.getJobCounts('completed')).completed === 50, {
    what: 'every dead-host job delivered after recovery',
    timeoutMs: 150_000,
    intervalMs: 500,
  });
  t.equal((await queue.getJobCounts('failed')).failed, 0, 'none failed for good');
  t.ok(dead.hitsWhileDead <= 25, `the dead host got ${dead.hitsWhileDead} requests while down for 30 jobs (a wave of ${wave} plus probes; 150 without breaker)`);
  const probes = dead.hitsWhileDead - wave;
  const shortCircuited = await sumOver(metricsUrls, 'outbound_requests_total', { dependency: 'webhook_host', outcome: 'short_circuited' });
  const delays = healthyJobs.map((j) => j!.finishedOn! - j!.timestamp).sort((a, b) => a - b);
  t.comment(`webhook host 503 for 40 s, 30 jobs, 2 replicas: ${dead.hitsWhileDead} requests while down (wave ${wave}, then ${probes} probes), ` +
    `${shortCircuited} short-circuited, all delivered after recovery; healthy host: 20 deliveries, enqueue → delivered max ${delays[delays.length - 1]} ms, median ${delays[10]} ms`);
});
