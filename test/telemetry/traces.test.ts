/**
 * One job = one trace across both processes: HTTP server span (api) → `send <queue>` producer span (api) →
 * `process <queue>` consumer span per attempt (worker, linked to the producer) → webhook client span (worker),
 * exported over OTLP/HTTP to a receiver the test runs. The processing histogram carries that trace id as an
 * exemplar; worker logs inside the span carry it too. OTEL_BULLMQ_TRACE_MODE=link gives each attempt its own
 * trace with only the link; OTEL_NODE_ENABLED_INSTRUMENTATIONS nests library spans under ours.
 */
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { startOtlpReceiver, type ReceivedSpan, SPAN_KIND } from '../helpers/otlp-receiver';
import { startReceiver } from '../helpers/receiver';
import { baseEnv, startApi, startWorker } from '../helpers/services';
import { deletePrefix, SHARED_REDIS_URL, uniquePrefix } from '../helpers/redis';
import { call } from '../helpers/http';
import { waitFor } from '../helpers/wait';
import { request } from 'undici';

const IOREDIS_SCOPE = '@opentelemetry/instrumentation-ioredis';
const HTTP_SCOPE = '@opentelemetry/instrumentation-http';

async function startTracedStack(t: { teardown(fn: () => unknown): void }, extra: Record<string, string> = {}, workerExtra: Record<string, string> = {}) {
  const otlp = await startOtlpReceiver();
  const target = await startReceiver();
  const prefix = uniquePrefix('trace');
  const env = baseEnv(SHARED_REDIS_URL, prefix, {
    OTEL_SDK_DISABLED: 'false',
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp.endpoint,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/json',
    OTEL_BSP_SCHEDULE_DELAY: '100',
    ...extra,
  });
  const api = await startApi(env);
  const worker = await startWorker({ ...env, ...workerExtra });
  t.teardown(async () => {
    await api.stop();
    await worker.stop();
    await otlp.close();
    await target.close();
    await deletePrefix(SHARED_REDIS_URL, prefix);
  });
  return { otlp, target, api, worker };
}

/** The messaging attributes every send/process span carries (current conventions). */
function messagingAttrs(operation: 'send' | 'process', queue: string, jobId: string) {
  return {
    'messaging.system': 'bullmq',
    'messaging.system.name': 'bullmq',
    'messaging.destination.name': queue,
    'messaging.operation.name': operation,
    'messaging.operation.type': operation,
    'messaging.message.id': jobId,
  };
}

t.test('a webhook job yields one trace with the expected spans, attributes and links', async (t) => {
  const { otlp, target, api, worker } = await startTracedStack(t, {}, { WORKER_QUEUES: 'webhooks' });

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
  t.equal(producer!.name, 'send webhooks', 'producer span named "{operation} {queue}"');
  t.equal(producer!.parentSpanId, server!.spanId, 'producer is a child of the request span');
  t.match(producer!.attributes, messagingAttrs('send', 'webhooks', jobId));

  const attempts = consumerSpans().sort((a, b) => Number(a.attributes['messaging.bullmq.attempt']) - Number(b.attributes['messaging.bullmq.attempt']));
  for (const [i, c] of attempts.entries()) {
    t.equal(c.traceId, traceId, `attempt ${i + 1} in the job's trace`);
    t.equal(c.service, 'worker');
    t.equal(c.name, 'process webhooks', 'consumer span named "{operation} {queue}"');
    t.equal(c.parentSpanId, producer!.spanId, 'consumer is a child of the producer span (default trace mode)');
    t.same(c.links, [{ traceId, spanId: producer!.spanId }], 'and links to it, as the conventions ask');
    t.match(c.attributes, { ...messagingAttrs('process', 'webhooks', jobId), 'messaging.bullmq.attempt': i + 1 });
  }
  t.equal(attempts[0]!.status?.code, 2, 'failed attempt has error status');
  t.equal(attempts[0]!.attributes['error.type'], 'ProviderError', 'failed attempt carries error.type');
  t.ok(attempts[0]!.events.some((e) => e.name === 'exception'), 'failed attempt records the exception');
  t.notOk('error.type' in attempts[1]!.attributes, 'the successful attempt has no error.type');

  const clients = inTrace.filter((s) => s.kind === SPAN_KIND.CLIENT);
  t.equal(clients.length, 2, 'one webhook HTTP span per attempt');
  t.same(clients.map((c) => c.parentSpanId).sort(), attempts.map((a) => a.spanId).sort(), 'each under its attempt');
  t.same(clients.map((c) => c.attributes['http.response.status_code']).sort(), [200, 503]);
  t.ok(target.deliveries.every((d) => String(d.headers.traceparent).includes(traceId)), 'traceparent reached the receiver');
  t.notOk(otlp.spans.some((s) => s.scope.startsWith('@opentelemetry/instrumentation-')), 'lean default: no library spans');

  // Exemplars: the processing and end-to-end histograms link to this trace (OpenMetrics exposition).
  const metrics = await (await request(worker.metricsUrl, { headers: { accept: 'application/openmetrics-text; version=1.0.0' } })).body.text();
  const exemplarLines = (name: string) => metrics.split('\n').filter((l) => l.startsWith(`${name}_bucket`) && l.includes(`trace_id="${traceId}"`));
  t.ok(exemplarLines('bullmq_job_processing_seconds').length >= 1, 'bullmq_job_processing_seconds carries the trace id as an exemplar');
  t.ok(exemplarLines('bullmq_job_e2e_seconds').length === 1, 'bullmq_job_e2e_seconds carries it once (one observation per job)');
  t.match(metrics, /# EOF\s*$/, 'OpenMetrics exposition');

  // Log line written inside the failed attempt's span carries its ids.
  const failedLog = worker.logs.find((l) => l.msg === 'job attempt failed');
  t.equal(failedLog?.trace_id, traceId, 'log line has trace_id');
  t.equal(failedLog?.span_id, attempts[0]!.spanId, 'log line has the attempt span id');
});

t.test('OTEL_BULLMQ_TRACE_MODE=link: each attempt is its own trace, linked to the producer', async (t) => {
  const { otlp, target, api } = await startTracedStack(t, { OTEL_BULLMQ_TRACE_MODE: 'link' }, { WORKER_QUEUES: 'webhooks' });
  target.script.push({ status: 503 });
  const res = await call('POST', `${api.url}/v1/queues/webhooks/jobs`, { data: { url: target.url, event: 'order.created', payload: { id: 8 } } });
  t.equal(res.status, 202);
  const jobId = res.body.id as string;

  const attempts = await waitFor(
    () => {
      const found = otlp.spans.filter((s) => s.kind === SPAN_KIND.CONSUMER && s.attributes['messaging.message.id'] === jobId);
      return found.length === 2 && otlp.spans.filter((s) => s.kind === SPAN_KIND.CLIENT).length === 2 ? found : undefined;
    },
    { timeoutMs: 20_000, what: 'two attempts exported' },
  );
  const producer = otlp.spans.find((s) => s.kind === SPAN_KIND.PRODUCER && s.attributes['messaging.message.id'] === jobId);
  t.ok(producer, 'producer span exported');
  t.equal(new Set(attempts.map((a) => a.traceId)).size, 2, 'one trace per attempt');
  for (const a of attempts) {
    t.not(a.traceId, producer!.traceId, 'attempt outside the producer trace');
    t.equal(a.parentSpanId, undefined, 'attempt span is the root of its trace');
    t.same(a.links, [{ traceId: producer!.traceId, spanId: producer!.spanId }], 'only the link leads back to the producer');
    t.match(a.attributes, messagingAttrs('process', 'webhooks', jobId));
    const client = otlp.spans.find((s) => s.kind === SPAN_KIND.CLIENT && s.parentSpanId === a.spanId);
    t.equal(client?.traceId, a.traceId, 'the webhook request stays in its attempt trace');
  }
});

t.test('OTEL_NODE_ENABLED_INSTRUMENTATIONS: Redis spans nest inside the send and process spans', async (t) => {
  const { otlp, api } = await startTracedStack(
    t,
    { OTEL_NODE_ENABLED_INSTRUMENTATIONS: 'http,ioredis' },
    { WORKER_QUEUES: 'payments' },
  );
  const res = await call(
    'POST',
    `${api.url}/v1/queues/payments/jobs`,
    { data: { amount: 12, currency: 'EUR', account: 'acc-1' } },
    { 'idempotency-key': `trace-${randomUUID()}` },
  );
  t.equal(res.status, 202);
  const jobId = res.body.id as string;
  const childrenOf = (span: ReceivedSpan, scope: string) => otlp.spans.filter((s) => s.parentSpanId === span.spanId && s.scope === scope);

  const processSpan = await waitFor(
    () => {
      const p = otlp.spans.find((s) => s.kind === SPAN_KIND.CONSUMER && s.attributes['messaging.message.id'] === jobId);
      return p && childrenOf(p, IOREDIS_SCOPE).length > 0 ? p : undefined;
    },
    { timeoutMs: 20_000, what: 'process span with Redis children' },
  );
  t.equal(processSpan.name, 'process payments');
  const workerRedis = childrenOf(processSpan, IOREDIS_SCOPE);
  t.ok(workerRedis.every((s) => s.kind === SPAN_KIND.CLIENT && s.traceId === processSpan.traceId), 'Redis CLIENT spans in the attempt trace');
  t.comment(`redis spans under process payments: ${workerRedis.map((s) => s.name).join(', ')}`);

  const send = otlp.spans.find((s) => s.kind === SPAN_KIND.PRODUCER && s.attributes['messaging.message.id'] === jobId);
  t.equal(send?.name, 'send payments');
  t.ok(childrenOf(send!, IOREDIS_SCOPE).length > 0, 'the queue.add commands nest inside the send span');
  t.equal(processSpan.parentSpanId, send!.spanId, 'the attempt is still the child of the send span');

  // With http instrumented, our request span nests under the library's server span: one trace, not two roots.
  const requestSpan = otlp.spans.find((s) => s.spanId === send!.parentSpanId);
  t.equal(requestSpan?.name, 'POST /v1/queues/payments/jobs');
  t.ok(childrenOf(requestSpan!, IOREDIS_SCOPE).length > 0, 'the handler runs in the request span context (its job.getState nests there)');
  const httpServer = otlp.spans.find((s) => s.spanId === requestSpan?.parentSpanId);
  t.equal(httpServer?.scope, HTTP_SCOPE, 'request span is the child of the http instrumentation server span');
  t.equal(httpServer?.kind, SPAN_KIND.SERVER);
  t.equal(httpServer?.parentSpanId, undefined, 'which is the root');
});
