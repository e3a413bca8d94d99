/**
 * Webhook delivery over real HTTP (undici). One client span per delivery, carrying the trace context to the
 * receiver in `traceparent`. Response mapping:
 *   2xx → delivered · 429 → RateLimitedError(Retry-After, bounded) · 408, 5xx, network, timeout → ProviderError
 *   (retried with backoff) · other 4xx and refused targets → UnrecoverableError (failed, "rejected").
 * A delivery the worker cannot even send — a URL it cannot parse, a scheme other than http(s), an event name that
 * is not an HTTP token (CR/LF would split the `webhook-event` header) — is UnrecoverableError before any request:
 * retrying cannot fix the job. The API refuses such jobs with 400; this is the worker's own check.
 * At most `maxPerHost` deliveries per target host run at once (host-slots.ts); past that, HostBusyError. With a
 * boundary, each delivery first crosses its host's quota and circuit (outbound/call.ts).
 */
import { Agent, request, errors as undiciErrors } from 'undici';
import { type Context, ROOT_CONTEXT, SpanKind, SpanStatusCode, context } from '@opentelemetry/api';
import { UnrecoverableError } from 'bullmq';
import { signWebhook } from './signature';
import { BlockedTargetError, guardedLookup, isPublicAddress, literalAddressOf } from './ssrf-guard';
import { ProviderError, RateLimitedError } from '../errors';
import { HostSlots } from './host-slots';
import type { OutboundCallOptions } from '../providers/provider';
import type { OutboundBoundary } from '../outbound/call';
import { contextWith, injectTraceContext, recordError, tracer } from '../../common/telemetry/trace-context';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  ATTR_URL_SCHEME,
} from '../../common/telemetry/semconv';

export interface WebhookDelivery {
  url: string;
  event: string;
  payload: Record<string, unknown>;
  deliveryId: string;
  attempt: number;
}

/** Per-delivery options: the attempt's abort signal (timeout or cancellation cuts the request) and its span. */
export interface DeliveryOptions extends OutboundCallOptions {
  /** Parent of the delivery's CLIENT span (the attempt's consumer span); none: a root span. */
  traceContext?: Context;
}

export interface WebhookClientOptions {
  signingSecret: string;
  allowPrivate: boolean;
  /** Upper bound for a target's Retry-After, so one receiver cannot park its jobs for hours per 429. */
  maxRetryAfterMs: number;
  /** Deliveries in flight per target host (hostname:port) in this worker (WEBHOOK_MAX_PER_HOST). */
  maxPerHost: number;
  defaultRetryAfterMs?: number;
  /** How long a host may finish no delivery while one waits for its slot, before HostBusyError (host-slots.ts). */
  hostSlotWaitMs?: number;
  /**
   * A target must accept the connection within connectTimeoutMs and send its response headers within
   * headersTimeoutMs (body: the same bound between chunks). Shorter than the queue's 30 s attempt timeout so a
   * target that never answers holds a delivery slot 10 s, not 30 s; 10 s is what GitHub allows webhook receivers.
   */
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  /** The outbound boundary (quota and circuit per target host, outbound/call.ts); none: deliveries go straight out. */
  boundary?: OutboundBoundary;
}

/** RFC 9110 token (tchar+): what an HTTP header value built from the event name may contain. */
export const HTTP_TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The target's host already has maxPerHost deliveries in flight: the job should come back later. */
export class HostBusyError extends Error {
  override name = 'HostBusyError';
  constructor(readonly host: string) {
    super(`target host ${host} already has its maximum of deliveries in flight`);
  }
}

/** Checks what the worker needs to send the delivery at all; UnrecoverableError names what is wrong. */
export function parseDeliveryTarget(d: Pick<WebhookDelivery, 'url' | 'event'>): URL {
  let url: URL;
  try {
    url = new URL(d.url);
  } catch {
    throw new UnrecoverableError(`webhook url ${JSON.stringify(String(d.url).slice(0, 200))} cannot be parsed; not retried`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UnrecoverableError(`webhook url scheme ${JSON.stringify(url.protocol)} is not http or https; not retried`);
  }
  if (typeof d.event !== 'string' || !HTTP_TOKEN.test(d.event)) {
    throw new UnrecoverableError(
      `webhook event ${JSON.stringify(String(d.event).slice(0, 200))} is not an HTTP token (letters, digits, !#$%&'*+-.^_\`|~); not retried`,
    );
  }
  return url;
}

export class WebhookClient {
  private readonly agent: Agent;
  private readonly opts: Required<Omit<WebhookClientOptions, 'boundary'>>;
  private readonly boundary: OutboundBoundary | undefined;
  readonly hostSlots: HostSlots;

  constructor(options: WebhookClientOptions) {
    const { boundary, ...rest } = options;
    this.boundary = boundary;
    this.opts = { defaultRetryAfterMs: 5_000, hostSlotWaitMs: 250, connectTimeoutMs: 5_000, headersTimeoutMs: 10_000, ...rest };
    if (!this.opts.signingSecret) throw new Error('WebhookClient: signingSecret is required (WEBHOOK_SIGNING_SECRET)');
    this.hostSlots = new HostSlots(this.opts.maxPerHost);
    this.agent = new Agent({
      keepAliveTimeout: 10_000,
      connections: 64,
      headersTimeout: this.opts.headersTimeoutMs,
      bodyTimeout: this.opts.headersTimeoutMs,
      connect: {
        timeout: this.opts.connectTimeoutMs,
        ...(this.opts.allowPrivate ? {} : { lookup: guardedLookup }),
      },
    });
  }

  async deliver(d: WebhookDelivery, opts: DeliveryOptions = {}): Promise<{ status: number; durationMs: number }> {
    const { signal, traceContext: parent = ROOT_CONTEXT } = opts;
    const url = parseDeliveryTarget(d);
    const literal = literalAddressOf(url);
    if (!this.opts.allowPrivate && literal && !isPublicAddress(literal)) {
      throw new UnrecoverableError(new BlockedTargetError(literal).message);
    }
    const release = await this.hostSlots.acquire(url.host, this.opts.hostSlotWaitMs, signal);
    if (!release) {
      signal?.throwIfAborted(); // the attempt's timeout or cancellation: keep its error
      throw new HostBusyError(url.host);
    }
    try {
      // Circuit and quota per target host (hostname:port), inside the host slot: the quota's token is taken right
      // before the request, so the host sees the starts the quota counted (outbound/call.ts).
      if (!this.boundary) return await this.send(url, d, signal, parent);
      return await this.boundary.call('webhook_host', url.host, () => this.send(url, d, signal, parent), { signal, traceContext: parent });
    } finally {
      release();
    }
  }

  private async send(url: URL, d: WebhookDelivery, signal: AbortSignal | undefined, parent: Context): Promise<{ status: number; durationMs: number }> {
    const body = JSON.stringify(d.payload);
    const span = tracer.startSpan('POST', {
      kind: SpanKind.CLIENT,
      attributes: {
        [ATTR_HTTP_REQUEST_METHOD]: 'POST',
        [ATTR_SERVER_ADDRESS]: url.hostname,
        [ATTR_SERVER_PORT]: Number(url.port || (url.protocol === 'https:' ? 443 : 80)),
        [ATTR_URL_SCHEME]: url.protocol.replace(':', ''),
        'webhook.event': d.event,
      },
    }, parent);
    const started = performance.now();
    const deliveryContext = contextWith(span, parent);
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'bullmq-observability-stack-webhooks/1',
        'webhook-id': d.deliveryId,
        'webhook-event': d.event,
        'webhook-attempt': String(d.attempt),
        'webhook-signature': signWebhook(this.opts.signingSecret, body, Math.floor(Date.now() / 1000)),
        ...injectTraceContext(deliveryContext),
      };
      // In this span's context, so an auto-instrumented undici (common/telemetry/tracing.ts) nests under it.
      const res = await context.with(deliveryContext, () =>
        request(url, { method: 'POST', headers, body, signal, dispatcher: this.agent }),
      );
      await res.body.dump();
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
      const durationMs = performance.now() - started;
      if (res.statusCode >= 200 && res.statusCode < 300) return { status: res.statusCode, durationMs };
      span.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${res.statusCode}` });
      if (res.statusCode === 429) throw new RateLimitedError(this.retryAfterMs(res.headers['retry-after']), `target answered 429`);
      if (res.statusCode === 408 || res.statusCode >= 500) throw new ProviderError(`target answered ${res.statusCode}`, res.statusCode);
      throw new UnrecoverableError(`target answered ${res.statusCode}; not retried`);
    } catch (err) {
      throw this.classify(err, span, signal);
    } finally {
      span.end();
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private classify(err: unknown, span: ReturnType<typeof tracer.startSpan>, signal: AbortSignal | undefined): unknown {
    if (err instanceof RateLimitedError || err instanceof ProviderError || err instanceof UnrecoverableError) {
      if (!(err instanceof RateLimitedError)) recordError(span, err);
      return err;
    }
    recordError(span, err);
    if (signal?.aborted) return signal.reason ?? err; // the attempt's timeout or cancellation: keep its error
    // undici refuses a request it cannot send as built (e.g. a header value it rejects): retrying cannot help.
    if (err instanceof undiciErrors.InvalidArgumentError) return new UnrecoverableError(`delivery not sendable: ${err.message}; not retried`);
    if (err instanceof undiciErrors.HeadersTimeoutError || err instanceof undiciErrors.BodyTimeoutError) {
      return new ProviderError(`target did not answer within ${this.opts.headersTimeoutMs} ms`);
    }
    const cause = (err as { cause?: unknown }).cause;
    if (err instanceof BlockedTargetError || cause instanceof BlockedTargetError) {
      return new UnrecoverableError((cause instanceof BlockedTargetError ? cause : (err as Error)).message);
    }
    if (err instanceof undiciErrors.UndiciError || err instanceof Error) {
      return new ProviderError(`delivery failed: ${(err).message}`);
    }
    return err;
  }

  /** Retry-After as seconds or an HTTP date, bounded to [1 s, maxRetryAfterMs]. */
  retryAfterMs(header: string | string[] | undefined): number {
    const value = Array.isArray(header) ? header[0] : header;
    let ms = this.opts.defaultRetryAfterMs;
    if (value && /^\d+$/.test(value.trim())) ms = Number(value.trim()) * 1000;
    else if (value && !Number.isNaN(Date.parse(value))) ms = Date.parse(value) - Date.now();
    return Math.min(this.opts.maxRetryAfterMs, Math.max(1_000, ms));
  }
}
