/**
 * Soft timeouts, timeout-aware retries and aborted outbound calls, with a real worker process on real Redis:
 * - an attempt still running at 80 % of its queue's timeout is counted (bullmq_job_soft_timeouts_total), written to
 *   the job's log and marked by a `soft_timeout` event on its consumer span, and completes;
 * - a timed-out attempt backs off timeoutBackoffFactor times longer than a failed one (the delay BullMQ stored);
 * - an attempt cut by its timeout closes its webhook request: the target sees the connection go before it answers.
 */
import t from 'tap';
import { startPipeline } from '../helpers/pipeline';
import { startOtlpReceiver, SPAN_KIND } from '../helpers/otlp-receiver';
import { scrape, valueOf } from '../helpers/http';
import { startHangingTarget } from '../helpers/receiver';
import { waitFor } from '../helpers/wait';
import { QUEUE_CATALOG } from '../../services/common/queue-catalog';

const notification = { data: { channel: 'email', to: 'a@example.com', template: 'welcome' } };

t.test('an attempt past 80 % of its timeout is counted, logged on the job and marked on its span, and still completes', async (t) => {
  const otlp = await startOtlpReceiver();
  t.teardown(() => otlp.close());
  const p = await startPipeline(t);
  // Timeout 5 s → soft timeout 4 s; the provider answers after 4.5 s: 500 ms from either bound on a loaded box.
  const worker = await p.startWorker({
    WORKER_QUEUES: 'notifications',
    WORKER_TIMEOUT_MS_NOTIFICATIONS: '5000',
    OTEL_SDK_DISABLED: 'false',
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  const softTimeouts = async () => valueOf(await scrape(worker.metricsUrl), 'bullmq_job_soft_timeouts_total', { queue: 'notifications' });
  t.equal(await softTimeouts(), 0, 'the series starts at 0');

  await p.setFaults('notifications', { latencyMs: 4_500 });
  const slow = await p.enqueue('notifications', notification);
  const done = await p.waitForState('notifications', slow, 'completed', 20_000);
  t.equal(done.attemptsMade, 1, 'completed on its first attempt: a soft timeout does not stop it');
  t.equal(await softTimeouts(), 1, 'one soft timeout counted');

  const logs = await p.app.queues.notifications.getJobLogs(slow);
  t.match(logs.logs, [/soft timeout: attempt 1 still running after 4000 ms \(hard timeout 5000 ms\)/], 'a line in the job log');
  t.ok(worker.logs.some((l) => l.msg === 'attempt still running at its soft timeout' && l.jobId === slow), 'a worker log line');

  const span = await waitFor(
    () => otlp.spans.find((s) => s.kind === SPAN_KIND.CONSUMER && s.attributes['messaging.message.id'] === slow),
    { what: 'the consumer span exported', timeoutMs: 15_000 },
  );
  t.ok(span.events.some((e) => e.name === 'soft_timeout'), 'soft_timeout event on the consumer span');

  await p.setFaults('notifications', { latencyMs: 0 });
  const fast = await p.enqueue('notifications', notification);
  await p.waitForState('notifications', fast, 'completed', 20_000);
  t.equal(await softTimeouts(), 1, 'a fast attempt is not counted');
  const fastSpan = await waitFor(
    () => otlp.spans.find((s) => s.kind === SPAN_KIND.CONSUMER && s.attributes['messaging.message.id'] === fast),
    { what: 'the fast consumer span exported', timeoutMs: 15_000 },
  );
  t.notOk(fastSpan.events.some((e) => e.name === 'soft_timeout'), 'no soft_timeout event on a fast attempt');
});

t.test('a timeout backs off timeoutBackoffFactor times longer than an error (the delay BullMQ stored on the job)', async (t) => {
  const p = await startPipeline(t);
  await p.startWorker({ WORKER_QUEUES: 'notifications', WORKER_TIMEOUT_MS_NOTIFICATIONS: '300' });
  const { backoffDelayMs, backoffJitter, timeoutBackoffFactor } = QUEUE_CATALOG.notifications.policy;
  const retryDelay = async (faults: object): Promise<number> => {
    await p.setFaults('notifications', faults);
    const id = await p.enqueue('notifications', notification);
    return waitFor(
      async () => {
        const job = await p.app.queues.notifications.getJob(id);
        return job && job.attemptsMade === 1 && (await job.getState()) === 'delayed' ? job.delay : undefined;
      },
      { what: `job ${id} delayed for its retry`, timeoutMs: 15_000 },
    );
  };
  const afterError = await retryDelay({ failureRate: 1, timeoutRate: 0 });
  const afterTimeout = await retryDelay({ failureRate: 0, timeoutRate: 1 });
  // First retry: base delay, jitter taking up to backoffJitter of it away.
  t.ok(afterError >= backoffDelayMs * (1 - backoffJitter) && afterError < backoffDelayMs, `after an error: ${afterError} ms, within the base delay`);
  const timeoutBase = backoffDelayMs * timeoutBackoffFactor;
  t.ok(afterTimeout >= timeoutBase * (1 - backoffJitter) && afterTimeout < timeoutBase, `after a timeout: ${afterTimeout} ms, within ×${timeoutBackoffFactor} the base`);
  t.ok(afterTimeout > afterError, 'the timeout waits longer');
});

t.test('a timed-out attempt cuts its webhook request: the target sees the connection closed before it answers', async (t) => {
  const target = await startHangingTarget();
  t.teardown(() => target.close());
  const { seen, url } = target;

  const p = await startPipeline(t);
  await p.startWorker({ WORKER_QUEUES: 'webhooks', WORKER_TIMEOUT_MS_WEBHOOKS: '1500' });
  const id = await p.enqueue('webhooks', { data: { url, event: 'order.created', payload: { id: 1 } } });
  const first = await waitFor(() => (seen[0]?.closedAt ? seen[0] : undefined), { what: 'the first request closed', timeoutMs: 20_000 });
  t.equal(first.answered, false, 'closed by the worker, not answered by the target');
  // Cut by the 1.5 s attempt timeout, not by the client's own 10 s headers timeout.
  t.ok(first.closedAt! - first.arrivedAt < 8_000, `closed ${first.closedAt! - first.arrivedAt} ms after it arrived`);
  const job = await p.app.queues.webhooks.getJob(id);
  t.match(job?.stacktrace?.[0] ?? job?.failedReason, /timed out after 1500 ms/, 'the attempt failed as a timeout');
});
