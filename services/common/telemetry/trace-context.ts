/**
 * Trace context into and out of a job, and small span helpers shared by API and worker.
 * The producer injects W3C traceparent into the job's metadata; each attempt's consumer span is its child,
 * so one job = one trace across processes.
 */
import { propagation, trace, Context, ROOT_CONTEXT, Span, SpanStatusCode, TraceFlags, isSpanContextValid } from '@opentelemetry/api';

export const tracer = trace.getTracer('bullmq-observability-stack');

export const MESSAGING = {
  system: 'messaging.system',
  destination: 'messaging.destination.name',
  operation: 'messaging.operation.type',
  messageId: 'messaging.message.id',
  attempt: 'messaging.bullmq.attempt',
} as const;

/** Context holding `span` as the parent for what comes next (explicit: there is no ambient context, see tracing.ts). */
export function contextWith(span: Span | undefined, parent: Context = ROOT_CONTEXT): Context {
  return span ? trace.setSpan(parent, span) : parent;
}

export function injectTraceContext(ctx: Context): Record<string, string> | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(ctx, carrier);
  return Object.keys(carrier).length > 0 ? carrier : undefined;
}

export function extractTraceContext(carrier: Record<string, string> | undefined): Context {
  return carrier ? propagation.extract(ROOT_CONTEXT, carrier) : ROOT_CONTEXT;
}

export function recordError(span: Span, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

/** The trace id to attach as an exemplar, or undefined when the span is not sampled (no trace to jump to). */
export function sampledTraceId(span: Span | undefined): string | undefined {
  if (!span) return undefined;
  const sc = span.spanContext();
  return (sc.traceFlags & TraceFlags.SAMPLED) === TraceFlags.SAMPLED ? sc.traceId : undefined;
}

/** Log fields for lines written inside a span: trace_id and span_id (every line, sampled or not). */
export function traceFields(span: Span | undefined): { trace_id?: string; span_id?: string } {
  const sc = span?.spanContext();
  return sc && isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}
