/**
 * Request telemetry: one SERVER span per request (continuing an incoming traceparent), kept on the request so
 * handlers make their spans its children explicitly (contextWith(request.otelSpan)), and
 * http_request_duration_seconds with the route *pattern* as label (bounded; unmatched URLs are "unmatched").
 * Spans end on every path: response sent, client gone, or timeout. In auto-instrumentation mode
 * (common/telemetry/tracing.ts) every handler runs inside the request span's context, so library spans nest
 * under it, and with http instrumentation on the request span is the child of its server span, not a second root.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SpanKind, SpanStatusCode, propagation, type Span, context, trace } from '@opentelemetry/api';
import { type ApiMetrics, createApiMetrics, noopApiMetrics } from '../../../common/telemetry/http-metrics';
import { type AdminMetrics, createAdminMetrics, noopAdminMetrics } from '../../../common/telemetry/admin-metrics';
import { type ReplayMetrics, createReplayMetrics, noopReplayMetrics } from '../../../common/telemetry/replay-metrics';
import type { MetricsRegistry } from '../../../common/telemetry/registry';
import { createTelemetryGuard } from '../../../common/telemetry/guard';
import { ATTR_HTTP_REQUEST_METHOD, ATTR_HTTP_RESPONSE_STATUS_CODE, ATTR_HTTP_ROUTE, ATTR_URL_SCHEME } from '../../../common/telemetry/semconv';
import { contextWith, recordError, sampledTraceId, tracer } from '../../../common/telemetry/trace-context';
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
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, statusCode);
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
    const safely = createTelemetryGuard((what, err) => app.log.error({ err, what }, 'telemetry call failed; ignored'));

    // Auto-instrumentation mode only (the lean mode's context manager stores nothing, so there is nothing to
    // carry): every handler runs in the request span's context, so library and user spans nest under it.
    const { tracing } = app.config;
    if (!tracing.disabled && tracing.instrumentations.length > 0) {
      app.addHook('onRoute', (route) => {
        const handler = route.handler as (...args: unknown[]) => unknown;
        route.handler = function (this: FastifyInstance, request, reply) {
          return context.with(contextWith(request.otelSpan, context.active()), handler, this, request, reply);
        };
      });
    }

    app.addHook('onRequest', (request, _reply, done) => {
      request.startedAt = performance.now();
      const route = routeOf(request);
      // An auto-instrumented http server span is already active (and continued traceparent): nest under it.
      const active = context.active();
      const parent = trace.getSpan(active) ? active : propagation.extract(active, request.headers);
      request.otelSpan = safely('start span', () =>
        tracer.startSpan(
          `${request.method} ${route}`,
          {
            kind: SpanKind.SERVER,
            attributes: { [ATTR_HTTP_REQUEST_METHOD]: request.method, [ATTR_HTTP_ROUTE]: route, [ATTR_URL_SCHEME]: 'http' },
          },
          parent,
        ),
      );
      done();
    });
    app.addHook('onError', (request, _reply, err, done) => {
      if (request.otelSpan) safely('record error', () => recordError(request.otelSpan!, err));
      done();
    });
    app.addHook('onResponse', (request, reply, done) => {
      safely('finish', () => finish(app, request, reply.statusCode));
      done();
    });
    app.addHook('onRequestAbort', (request, done) => {
      safely('finish', () => {
        request.otelSpan?.addEvent('client aborted');
        finish(app, request, 499);
      });
      done();
    });
    app.addHook('onTimeout', (request, _reply, done) => {
      safely('finish', () => {
        request.otelSpan?.addEvent('request timeout');
        finish(app, request, 408);
      });
      done();
    });
  },
  { name: 'telemetry', dependencies: ['config'] },
);
