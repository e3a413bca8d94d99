/**
 * Webhook delivery outcomes over real HTTP: 5xx retried, 4xx rejected, 429 deferred, slow target timed out, SSRF
 * refused, and jobs the worker cannot send (CR/LF in the event, an unparseable URL) failed once, not retried.
 */
import t from 'tap';
import { startPipeline } from '../helpers/pipeline';
import { startReceiver } from '../helpers/receiver';
import { scrape, valueOf } from '../helpers/http';
import { waitFor } from '../helpers/wait';

t.test('webhook responses map to done / retry / rejected / deferred (429)', async (t) => {
  const p = await startPipeline(t);
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const worker = await p.startWorker({ WORKER_QUEUES: 'webhooks', WORKER_TIMEOUT_MS_WEBHOOKS: '500' });
  const job = (event: string) => ({ data: { url: receiver.url, event, payload: { event } } });

  receiver.script.push({ status: 503 });
  const retried = await p.enqueue('webhooks', job('retry'));
  const ok = await p.waitForState('webhooks', retried, 'completed', 20_000);
  t.equal(ok.attemptsMade, 2, '503 then 200: completed on the second attempt');

  receiver.script.push({ status: 410 });
  const rejected = await p.enqueue('webhooks', job('gone'));
  const failed = await p.waitForState('webhooks', rejected, 'failed');
  t.equal(failed.attemptsMade, 1, '4xx is not retried');
  t.match(failed.failedReason, /410/);

  receiver.script.push({ status: 429, headers: { 'retry-after': '1' } });
  const limited = await p.enqueue('webhooks', job('limited'));
  const afterLimit = await p.waitForState('webhooks', limited, 'completed', 20_000);
  t.equal(afterLimit.attemptsMade, 1, '429 consumed no attempt');

  receiver.script.push({ status: 200, hangMs: 2_000 });
  const slow = await p.enqueue('webhooks', job('slow'));
  await waitFor(async () => (await p.job('webhooks', slow)).attemptsMade >= 1, { what: 'timed out delivery' });
  t.match((await p.job('webhooks', slow)).failedReason, /timed out after 500 ms/);
  await p.waitForState('webhooks', slow, 'completed', 20_000);

  const m = await scrape(worker.metricsUrl);
  t.equal(valueOf(m, 'bullmq_jobs_failed_total', { queue: 'webhooks', reason: 'rejected' }), 1);
  t.equal(valueOf(m, 'bullmq_rate_limit_hits_total', { queue: 'webhooks' }), 1);
  t.equal(valueOf(m, 'bullmq_job_retries_total', { queue: 'webhooks' }), 2, 'the 503 and the timeout');
  t.ok(receiver.deliveries.every((d) => d.signatureValid), 'every delivery signed');
});

t.test('SSRF: private targets refused unless WEBHOOK_ALLOW_PRIVATE=true', async (t) => {
  const p = await startPipeline(t);
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  await p.startWorker({ WORKER_QUEUES: 'webhooks', WEBHOOK_ALLOW_PRIVATE: 'false' });
  const byIp = await p.enqueue('webhooks', { data: { url: receiver.url, event: 'e', payload: {} } });
  const failed = await p.waitForState('webhooks', byIp, 'failed');
  t.match(failed.failedReason, /private, loopback or reserved/);
  t.equal(failed.attemptsMade, 1, 'refused targets are not retried');
  const byName = await p.enqueue('webhooks', { data: { url: receiver.url.replace('127.0.0.1', 'localhost'), event: 'e', payload: {} } });
  t.match((await p.waitForState('webhooks', byName, 'failed')).failedReason, /private, loopback or reserved/, 'hostname resolving to loopback refused too');
  t.equal(receiver.deliveries.length, 0, 'nothing reached the private receiver');
});

t.test('a job the worker cannot send fails once as rejected, never retried (even if it got past the API)', async (t) => {
  const p = await startPipeline(t);
  const receiver = await startReceiver();
  t.teardown(() => receiver.close());
  const worker = await p.startWorker({ WORKER_QUEUES: 'webhooks' });
  // Straight into the queue, as a job written around the API's validation would arrive.
  const add = async (url: string, event: string) =>
    String((await p.app.queues.webhooks.add('webhooks', { payload: { url, event, payload: {} }, meta: {} })).id);
  const crlf = await add(receiver.url, 'order.paid\r\nx-injected: 1');
  const unparseable = await add('http://exa mple.com/hooks', 'order.paid');
  const scheme = await add('file:///etc/passwd', 'order.paid');
  const cases = [
    [crlf, /event "order\.paid\\r\\nx-injected: 1" is not an HTTP token/],
    [unparseable, /url "http:\/\/exa mple\.com\/hooks" cannot be parsed/],
    [scheme, /scheme "file:" is not http or https/],
  ] as const;
  for (const [id, reason] of cases) {
    const failed = await p.waitForState('webhooks', id, 'failed');
    t.match(failed.failedReason, reason, 'failed, saying what is wrong');
    t.equal(failed.attemptsMade, 1, 'one attempt: not retried');
  }
  t.equal(receiver.deliveries.length, 0, 'nothing sent');
  const m = await scrape(worker.metricsUrl);
  t.equal(valueOf(m, 'bullmq_jobs_failed_total', { queue: 'webhooks', reason: 'rejected' }), 3, 'counted as rejected');
  t.equal(valueOf(m, 'bullmq_job_retries_total', { queue: 'webhooks' }), 0, 'no retry');
});
