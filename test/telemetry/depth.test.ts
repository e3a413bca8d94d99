/**
 * Queue-state gauges with two API and two worker processes: every worker reports the true depth (so
 * `max by (queue, state)` is exact and never N×depth), APIs export no depth at all, enqueue counters add up.
 */
import t from 'tap';
import { baseEnv, startApi, startWorker } from '../helpers/services';
import { deletePrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { call, scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { queueHandle } from '../fault/lib';

t.test('depth gauges are exact with 2 APIs and 2 workers', async (t) => {
  const prefix = uniquePrefix('depth');
  const env = baseEnv(SHARED_REDIS_URL, prefix);
  const apis = [await startApi(env), await startApi(env)];
  // Nobody consumes webhooks here, so their depth is stable and known.
  const workers = [await startWorker({ ...env, WORKER_QUEUES: 'payments,notifications' }), await startWorker({ ...env, WORKER_QUEUES: 'payments,notifications' })];
  t.teardown(async () => {
    await Promise.all([...apis, ...workers].map((p) => p.stop()));
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });
  const hook = { data: { url: 'http://127.0.0.1:9/x', event: 'e', payload: {} } };
  for (let i = 0; i < 7; i++) t.equal((await call('POST', `${apis[i % 2]!.url}/v1/queues/webhooks/jobs`, hook)).status, 202);
  for (let i = 0; i < 3; i++) {
    await call('POST', `${apis[i % 2]!.url}/v1/queues/payments/jobs`, { data: { amount: 5, currency: 'EUR', account: 'a' }, delayMs: 60_000 }, { 'idempotency-key': `depth-${i}` });
  }
  await call('POST', `${apis[0]!.url}/v1/queues/webhooks/jobs`, { ...hook, delayMs: 60_000 });

  for (const w of workers) {
    const m = await waitFor(async () => {
      const s = await scrape(w.metricsUrl);
      return valueOf(s, 'bullmq_queue_jobs', { queue: 'webhooks', state: 'prioritized' }) === 7 ? s : undefined;
    }, { what: 'depth 7' });
    t.equal(valueOf(m, 'bullmq_queue_jobs', { queue: 'webhooks', state: 'prioritized' }), 7, 'webhooks depth exact');
    t.equal(valueOf(m, 'bullmq_queue_jobs', { queue: 'webhooks', state: 'delayed' }), 1);
    t.equal(valueOf(m, 'bullmq_queue_jobs', { queue: 'payments', state: 'delayed' }), 3, 'delayed payments exact');
    t.equal(valueOf(m, 'bullmq_queue_jobs', { queue: 'payments', state: 'active' }), 0);
    t.equal(valueOf(m, 'bullmq_queue_workers', { queue: 'payments' }), 2, 'both workers counted');
    t.equal(valueOf(m, 'bullmq_queue_workers', { queue: 'webhooks' }), 0, 'no webhooks consumer');
    t.ok(valueOf(m, 'bullmq_queue_oldest_waiting_age_seconds', { queue: 'webhooks' }) > 0, 'oldest waiting age');
    t.equal(valueOf(m, 'bullmq_queue_oldest_waiting_age_seconds', { queue: 'payments' }), 0, 'nothing waiting in payments');
  }
  // The guide's JSON endpoint reports the same numbers as the gauges.
  const json = (await call('GET', `${apis[1]!.url}/queue/webhooks/metrics`)).body.data;
  const gauges = await scrape(workers[0]!.metricsUrl);
  t.equal(json.waitingCount, valueOf(gauges, 'bullmq_queue_jobs', { queue: 'webhooks', state: 'prioritized' }) + valueOf(gauges, 'bullmq_queue_jobs', { queue: 'webhooks', state: 'waiting' }));
  t.equal(json.delayedCount, valueOf(gauges, 'bullmq_queue_jobs', { queue: 'webhooks', state: 'delayed' }));
  t.equal(json.workers, 0);
  t.ok(Math.abs(json.oldestWaitingAgeSeconds - valueOf(gauges, 'bullmq_queue_oldest_waiting_age_seconds', { queue: 'webhooks' })) < 2);

  let enqueued = 0;
  for (const a of apis) {
    const m = await scrape(a.metricsUrl);
    t.equal(m.filter((s) => s.name === 'bullmq_queue_jobs').length, 0, 'APIs export no depth series');
    enqueued += valueOf(m, 'bullmq_jobs_enqueued_total', { queue: 'webhooks' });
    t.ok(m.some((s) => s.name === 'process_resident_memory_bytes'), 'default Node.js metrics, no prefix');
    t.ok(m.some((s) => s.name === 'http_request_duration_seconds_count' && s.labels.route === '/v1/queues/webhooks/jobs' && s.labels.status_code === '202'));
  }
  t.equal(enqueued, 8, 'enqueue counters add up across APIs');

  // Paused is the queue's flag, not a job state: its jobs keep their state and bullmq_queue_paused says so.
  const webhooks = queueHandle(t, SHARED_REDIS_URL, prefix, 'webhooks');
  await webhooks.pause();
  const paused = await waitFor(async () => {
    const s = await scrape(workers[0]!.metricsUrl);
    return valueOf(s, 'bullmq_queue_paused', { queue: 'webhooks' }) === 1 ? s : undefined;
  }, { what: 'webhooks paused' });
  t.equal(valueOf(paused, 'bullmq_queue_paused', { queue: 'payments' }), 0, 'payments not paused');
  t.equal(valueOf(paused, 'bullmq_queue_jobs', { queue: 'webhooks', state: 'prioritized' }), 7, 'a paused queue keeps its jobs where they were');
  t.equal(paused.filter((s) => s.name === 'bullmq_queue_jobs' && s.labels.state === 'paused').length, 0, 'no paused job state');
  t.equal((await call('GET', `${apis[0]!.url}/queue/webhooks/metrics`)).body.data.paused, true, 'the JSON endpoint reports the pause');
  await webhooks.resume();
  await waitFor(async () => valueOf(await scrape(workers[1]!.metricsUrl), 'bullmq_queue_paused', { queue: 'webhooks' }) === 0 || undefined, { what: 'webhooks resumed' });
});
