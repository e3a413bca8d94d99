/**
 * End to end against real Redis and a real worker process: each queue, retries, exhausted retries, provider
 * 429s, timeouts. Job state is read through the API; counters through the worker's /metrics.
 */
import t from 'tap';
import { startPipeline } from '../helpers/pipeline';
import { startReceiver } from '../helpers/receiver';
import { scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';

const payment = { amount: 990, currency: 'USD', account: 'acct_1', reference: 'inv-1' };
const notification = { channel: 'email', to: 'ops@example.com', template: 'welcome', variables: { name: 'Ada' } };

t.test('each queue end to end', async (t) => {
  const p = await startPipeline(t);
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  await p.startWorker();

  const payId = await p.enqueue('payments', { data: payment });
  const noteId = await p.enqueue('notifications', { data: notification });
  const hookId = await p.enqueue('webhooks', { data: { url: receiver.url, event: 'invoice.paid', payload: { invoice: 'inv-1', total: 990 } } });

  const pay = await p.waitForState('payments', payId, 'completed');
  t.match(pay.returnValue, { chargeId: /^ch_/, replayed: false });
  t.equal(pay.attemptsMade, 1);
  t.ok(pay.processedAt && pay.finishedAt);
  const note = await p.waitForState('notifications', noteId, 'completed');
  t.match(note.returnValue, { messageId: /^msg_/, channel: 'email' });
  const hook = await p.waitForState('webhooks', hookId, 'completed');
  t.equal(hook.returnValue.status, 200);

  t.equal(receiver.deliveries.length, 1, 'one delivery');
  const d = receiver.deliveries[0]!;
  t.ok(d.signatureValid, 'receiver verified the Webhook-Signature');
  t.same(JSON.parse(d.body), { invoice: 'inv-1', total: 990 }, 'payload posted as JSON');
  t.equal(d.headers['webhook-event'], 'invoice.paid');
  t.equal(d.headers['webhook-id'], hookId);
  t.match(d.headers['webhook-signature'], /^t=\d+,v1=[0-9a-f]{64}$/);
});

t.test('retries until success, then exhausted retries fail', async (t) => {
  const p = await startPipeline(t);
  const worker = await p.startWorker();
  await p.setFaults('payments', { failureRate: 1 });
  const id = await p.enqueue('payments', { data: payment });
  await waitFor(async () => (await p.job('payments', id)).attemptsMade >= 1, { what: 'first failed attempt' });
  t.match((await p.job('payments', id)).failedReason, /503/);
  await p.setFaults('payments', { failureRate: 0 });
  const done = await p.waitForState('payments', id, 'completed', 20_000);
  t.ok(done.attemptsMade >= 2, `completed after ${done.attemptsMade} attempts`);

  await p.setFaults('notifications', { failureRate: 1 });
  const failId = await p.enqueue('notifications', { data: notification });
  const failed = await p.waitForState('notifications', failId, 'failed', 20_000);
  t.equal(failed.attemptsMade, 2, 'notifications: both attempts used');
  t.match(failed.failedReason, /simulated provider: 503/);

  const m = await scrape(worker.metricsUrl);
  t.equal(valueOf(m, 'bullmq_jobs_failed_total', { queue: 'notifications', reason: 'provider_error' }), 1);
  t.equal(valueOf(m, 'bullmq_job_retries_total', { queue: 'notifications' }), 1);
  t.equal(valueOf(m, 'bullmq_jobs_completed_total', { queue: 'payments' }), 1);
  t.equal(valueOf(m, 'bullmq_job_retries_total', { queue: 'payments' }), done.attemptsMade - 1);
});

t.test('provider 429: job delayed by the rate limiter and retried without consuming an attempt', async (t) => {
  const p = await startPipeline(t);
  const worker = await p.startWorker();
  await p.setFaults('payments', { rateLimitRate: 1 });
  const id = await p.enqueue('payments', { data: payment });
  await waitFor(async () => valueOf(await scrape(worker.metricsUrl), 'bullmq_rate_limit_hits_total', { queue: 'payments' }) >= 2, {
    what: 'two rate-limit hits',
  });
  const during = await p.job('payments', id);
  t.not(during.state, 'failed', 'never failed while rate limited');
  t.equal(during.attemptsMade, 0, 'no attempt consumed');
  await p.setFaults('payments', { rateLimitRate: 0 });
  const done = await p.waitForState('payments', id, 'completed');
  t.equal(done.attemptsMade, 1, 'completed on its first counted attempt');
  const m = await scrape(worker.metricsUrl);
  t.equal(valueOf(m, 'bullmq_job_retries_total', { queue: 'payments' }), 0, 'rate limits are not retries');
  t.equal(valueOf(m, 'bullmq_jobs_failed_total', { queue: 'payments' }), 0);
});

t.test('timeout: the attempt is aborted, counted as a timeout and retried', async (t) => {
  const p = await startPipeline(t);
  const worker = await p.startWorker({ WORKER_TIMEOUT_MS_NOTIFICATIONS: '300' });
  await p.setFaults('notifications', { timeoutRate: 1 });
  const id = await p.enqueue('notifications', { data: notification });
  await waitFor(async () => (await p.job('notifications', id)).attemptsMade >= 1, { what: 'timed out attempt' });
  t.match((await p.job('notifications', id)).failedReason, /timed out after 300 ms/);
  await p.setFaults('notifications', { timeoutRate: 0 });
  const done = await p.waitForState('notifications', id, 'completed', 20_000);
  t.equal(done.attemptsMade, 2);
  const m = await scrape(worker.metricsUrl);
  t.equal(valueOf(m, 'bullmq_job_retries_total', { queue: 'notifications' }), 1);
  t.equal(valueOf(m, 'bullmq_job_processing_seconds_count', { queue: 'notifications', status: 'failed' }), 1);

  // Exhausted by timeouts: failed with reason "timeout".
  await p.setFaults('notifications', { timeoutRate: 1 });
  const id2 = await p.enqueue('notifications', { data: notification });
  await p.waitForState('notifications', id2, 'failed', 20_000);
  t.equal(valueOf(await scrape(worker.metricsUrl), 'bullmq_jobs_failed_total', { queue: 'notifications', reason: 'timeout' }), 1);
});
