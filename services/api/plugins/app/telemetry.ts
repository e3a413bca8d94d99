/**
 * Request telemetry: one SERVER span per request (continuing an incoming traceparent), kept on the request so
 * handlers make their spans its children explicitly (contextWith(request.otelSpan)), and http_request_duration_seconds with the route *pattern* as label (bounded;
 * unmatched URLs are "unmatched"). Spans end on every path: response sent, client gone, or timeout.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SpanKind, SpanStatusCode, propagation, Span, ROOT_CONTEXT } from '@opentelemetry/api';
import { ApiMetrics, createApiMetrics, noopApiMetrics } from '../../../common/telemetry/http-metrics';
import { AdminMetrics, createAdminMetrics, noopAdminMetrics } from '../../../common/telemetry/admin-metrics';
import { ReplayMetrics, createReplayMetrics, noopReplayMetrics } from '../../../common/telemetry/replay-metrics';
import type { MetricsRegistry } from '../../../common/telemetry/registry';
import { recordError, sampledTraceId, tracer } from '../../../common/telemetry/trace-context';
import { QUEUE_NAMES } from '../../../common/queue-catalog';

declare module 'fastify' {
  interface FastifyInstance {
    apiMetrics: ApiMetrics;
    adminMetrics: AdminMetrics;
    replayMetrics: ReplayMetrics;
  }
  interface FastifyRequest {
    otelSpan?: Span;
    startedAt?: number;
  }
}

function routeOf(request: FastifyRequest): string {
  return request.routeOptions.url ?? 'unmatched';
}

function finish(app: FastifyInstance, request: FastifyRequest, statusCode: number): void {
  const span = request.otelSpan;
  if (span) {
    span.setAttribute('http.response.status_code', statusCode);
    if (statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
    request.otelSpan = undefined;
  }
  if (request.startedAt !== undefined) {
    app.apiMetrics.observeRequest(
      request.method,
      routeOf(request),
      statusCode,
      (performance.now() - request.startedAt) / 1000,
      sampledTraceId(span),
    );
    request.startedAt = undefined;
  }
}

export default fp(
  async function telemetry(app: FastifyInstance, opts: { registry?: MetricsRegistry }) {
    app.decorate(
      'apiMetrics',
      opts.registry && app.config.metrics.enabled ? createApiMetrics(opts.registry, QUEUE_NAMES) : noopApiMetrics,
    );
    app.decorate(
      'adminMetrics',
      opts.registry && app.config.metrics.enabled ? createAdminMetrics(opts.registry) : noopAdminMetrics,
    );
    app.decorate(
      'replayMetrics',
      opts.registry && app.config.metrics.enabled ? createReplayMetrics(opts.registry, QUEUE_NAMES) : noopReplayMetrics,
    );
    app.decorateRequest('otelSpan', undefined);
    app.decorateRequest('startedAt', undefined);

    app.addHook('onRequest', (request, _reply, done) => {
      request.startedAt = performance.now();
      const route = routeOf(request);
      const parent = propagation.extract(ROOT_CONTEXT, request.headers);
      const span = tracer.startSpan(
        `${request.method} ${route}`,
        {
          kind: SpanKind.SERVER,
          attributes: { 'http.request.method': request.method, 'http.route': route, 'url.scheme': 'http' },
        },
        parent,
      );
      request.otelSpan = span;
      done();
    });
    app.addHook('onError', (request, _reply, err, done) => {
      if (request.otelSpan) recordError(request.otelSpan, err);
      done();
    });
    app.addHook('onResponse', (request, reply, done) => {
      finish(app, request, reply.statusCode);
      done();
    });
    app.addHook('onRequestAbort', (request, done) => {
      request.otelSpan?.addEvent('client aborted');
      finish(app, request, 499);
      done();
    });
    app.addHook('onTimeout', (request, _reply, done) => {
      request.otelSpan?.addEvent('request timeout');
      finish(app, request, 408);
      done();
    });
  },
  { name: 'telemetry', dependencies: ['config'] },
);
