/**
 * Trace context into and out of a job, and small span helpers shared by API and worker.
 * The producer injects W3C traceparent into the job's metadata; each attempt's consumer span links to it and, in
 * the default trace mode, is its child, so one job = one trace across processes.
 */
import { propagation, trace, type Attributes, type Context, type Link, ROOT_CONTEXT, type Span, SpanStatusCode, TraceFlags, isSpanContextValid } from '@opentelemetry/api';
import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  ATTR_MESSAGING_SYSTEM_NAME,
  ERROR_TYPE_VALUE_OTHER,
} from './semconv';

export const tracer = trace.getTracer('bullmq-observability-stack');

export const MESSAGING_SYSTEM = 'bullmq';

/** Messaging operations of this project; the operation name is also the convention's operation type. */
export type MessagingOperation = 'send' | 'process';

/** Span name per the messaging conventions: `{messaging.operation.name} {destination}`, e.g. "send payments". */
export function messagingSpanName(operation: MessagingOperation, queue: string): string {
  return `${operation} ${queue}`;
}

export function messagingAttributes(operation: MessagingOperation, queue: string, messageId?: string): Attributes {
  return {
    [ATTR_MESSAGING_SYSTEM]: MESSAGING_SYSTEM,
    [ATTR_MESSAGING_SYSTEM_NAME]: MESSAGING_SYSTEM,
    [ATTR_MESSAGING_DESTINATION_NAME]: queue,
    [ATTR_MESSAGING_OPERATION_NAME]: operation,
    [ATTR_MESSAGING_OPERATION_TYPE]: operation,
    ...(messageId !== undefined ? { [ATTR_MESSAGING_MESSAGE_ID]: messageId } : {}),
  };
}

/** A link to the span that produced the job (the convention's default for consumers), when it is known. */
export function producerLinks(producer: Context): Link[] {
  const sc = trace.getSpanContext(producer);
  return sc && isSpanContextValid(sc) ? [{ context: sc }] : [];
}

/** Context holding `span` as the parent for what comes next (explicit: the lean mode keeps no ambient context, see tracing.ts). */
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

/** `error.type`: the error's class name (low cardinality), or `_OTHER` for a non-Error throw. */
export function errorType(err: unknown): string {
  return err instanceof Error && err.name ? err.name : ERROR_TYPE_VALUE_OTHER;
}

export function recordError(span: Span, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setAttribute(ATTR_ERROR_TYPE, errorType(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

/** The W3C sampled flag is bit 0 of the trace flags (TraceFlags.SAMPLED). */
const isSampled = (flags: number): boolean => (flags & Number(TraceFlags.SAMPLED)) !== 0;

/**
 * The trace id of a W3C traceparent when its sampled flag is set (the job's producer trace: an exemplar for
 * outcomes observed without an attempt span, e.g. a job failed by the stalled check).
 */
export function sampledTraceIdOf(carrier: Record<string, string> | undefined): string | undefined {
  const sc = trace.getSpanContext(extractTraceContext(carrier));
  return sc && isSpanContextValid(sc) && isSampled(sc.traceFlags) ? sc.traceId : undefined;
}

/** The trace id to attach as an exemplar, or undefined when the span is not sampled (no trace to jump to). */
export function sampledTraceId(span: Span | undefined): string | undefined {
  if (!span) return undefined;
  const sc = span.spanContext();
  return isSampled(sc.traceFlags) ? sc.traceId : undefined;
}

/** Log fields for lines written inside a span: trace_id and span_id (every line, sampled or not). */
export function traceFields(span: Span | undefined): { trace_id?: string; span_id?: string } {
  const sc = span?.spanContext();
  return sc && isSpanContextValid(sc) ? { trace_id: sc.traceId, span_id: sc.spanId } : {};
}
