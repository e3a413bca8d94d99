/**
 * One job = one trace across both processes: HTTP server span (api) → producer span (api) → consumer span per
 * attempt (worker) → webhook client span (worker), exported over OTLP/HTTP to a receiver the test runs. The
 * processing histogram carries that trace id as an exemplar; worker logs inside the span carry it too.
 */
import t from 'tap';
import { startOtlpReceiver, SPAN_KIND } from '../helpers/otlp-receiver';
import { startReceiver } from '../helpers/receiver';
import { baseEnv, startApi, startWorker } from '../helpers/services';
import { deletePrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { call } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { request } from 'undici';

t.test('a webhook job yields one trace with the expected spans and attributes', async (t) => {
  const otlp = await startOtlpReceiver();
  const target = await startReceiver();
  const prefix = uniquePrefix('trace');
  const env = baseEnv(SHARED_REDIS_URL, prefix, {
    OTEL_SDK_DISABLED: 'false',
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  const api = await startApi(env);
  const worker = await startWorker({ ...env, WORKER_QUEUES: 'webhooks' });
  t.teardown(async () => {
    await api.stop();
    await worker.stop();
    await otlp.close();
    await target.close();
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });

  target.script.push({ status: 503 }); // first attempt fails, second succeeds: two consumer spans
  const res = await call('POST', `${api.url}/v1/queues/webhooks/jobs`, { data: { url: target.url, event: 'order.created', payload: { id: 7 } } });
  t.equal(res.status, 202);
  const jobId = res.body.id as string;

  const consumerSpans = () => otlp.spans.filter((s) => s.kind === SPAN_KIND.CONSUMER && s.attributes['messaging.message.id'] === jobId);
  await waitFor(() => consumerSpans().length === 2 && otlp.spans.filter((s) => s.kind === SPAN_KIND.CLIENT).length === 2, {
    timeoutMs: 20_000,
    what: 'two attempts exported',
  });
  const server = otlp.spans.find((s) => s.kind === SPAN_KIND.SERVER && s.name === 'POST /v1/queues/webhooks/jobs');
  t.ok(server, 'HTTP server span');
  t.equal(server!.service, 'api');
  t.equal(server!.attributes['http.route'], '/v1/queues/webhooks/jobs');
  t.equal(server!.attributes['http.response.status_code'], 202);

  const traceId = server!.traceId;
  const inTrace = otlp.spans.filter((s) => s.traceId === traceId);
  const producer = inTrace.find((s) => s.kind === SPAN_KIND.PRODUCER);
  t.ok(producer, 'producer span in the same trace');
  t.equal(producer!.name, 'webhooks publish');
  t.equal(producer!.parentSpanId, server!.spanId, 'producer is a child of the request span');
  t.match(producer!.attributes, { 'messaging.system': 'bullmq', 'messaging.destination.name': 'webhooks', 'messaging.message.id': jobId });

  const attempts = consumerSpans().sort((a, b) => Number(a.attributes['messaging.bullmq.attempt']) - Number(b.attributes['messaging.bullmq.attempt']));
  for (const [i, c] of attempts.entries()) {
    t.equal(c.traceId, traceId, `attempt ${i + 1} in the job's trace`);
    t.equal(c.service, 'worker');
    t.equal(c.name, 'webhooks process');
    t.equal(c.parentSpanId, producer!.spanId, 'consumer is a child of the producer span');
    t.match(c.attributes, { 'messaging.system': 'bullmq', 'messaging.destination.name': 'webhooks', 'messaging.message.id': jobId, 'messaging.bullmq.attempt': i + 1 });
  }
  t.equal(attempts[0]!.status?.code, 2, 'failed attempt has error status');
  t.ok(attempts[0]!.events.some((e) => e.name === 'exception'), 'failed attempt records the exception');

  const clients = inTrace.filter((s) => s.kind === SPAN_KIND.CLIENT);
  t.equal(clients.length, 2, 'one webhook HTTP span per attempt');
  t.same(clients.map((c) => c.parentSpanId).sort(), attempts.map((a) => a.spanId).sort(), 'each under its attempt');
  t.same(clients.map((c) => c.attributes['http.response.status_code']).sort(), [200, 503]);
  t.ok(target.deliveries.every((d) => String(d.headers.traceparent).includes(traceId)), 'traceparent reached the receiver');

  // Exemplar: the processing histogram links to this trace (OpenMetrics exposition).
  const metrics = await (await request(worker.metricsUrl, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } })).body.text();
  const exemplarLines = metrics.split('\n').filter((l) => l.startsWith('bullmq_job_processing_seconds_bucket') && l.includes(`trace_id="${traceId}"`));
  t.ok(exemplarLines.length >= 1, 'bullmq_job_processing_seconds carries the trace id as an exemplar');
  t.match(metrics, /# EOF\s*$/, 'OpenMetrics exposition');

  // Log line written inside the failed attempt's span carries its ids.
  const failedLog = worker.logs.find((l) => l.msg === 'job attempt failed');
  t.equal(failedLog?.trace_id, traceId, 'log line has trace_id');
  t.equal(failedLog?.span_id, attempts[0]!.spanId, 'log line has the attempt span id');
});
