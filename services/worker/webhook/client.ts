/**
 * Webhook delivery over real HTTP (undici). One client span per delivery, carrying the trace context to the
 * receiver in `traceparent`. Response mapping:
 *   2xx → delivered · 429 → RateLimitedError(Retry-After, bounded) · 408, 5xx, network, timeout → ProviderError
 *   (retried with backoff) · other 4xx and refused targets → UnrecoverableError (failed, "rejected").
 */
import { Agent, request, errors as undiciErrors } from 'undici';
import { Context, ROOT_CONTEXT, SpanKind, SpanStatusCode, context } from '@opentelemetry/api';
import { UnrecoverableError } from 'bullmq';
import { signWebhook } from './signature';
import { BlockedTargetError, guardedLookup, isPublicAddress, literalAddressOf } from './ssrf-guard';
import { ProviderError, RateLimitedError } from '../errors';
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

export interface WebhookClientOptions {
  signingSecret: string;
  allowPrivate: boolean;
  /** Upper bound for a target's Retry-After, so one receiver cannot park the queue for hours. */
  maxRetryAfterMs: number;
  defaultRetryAfterMs?: number;
}

export class WebhookClient {
  private readonly agent: Agent;
  private readonly opts: Required<WebhookClientOptions>;

  constructor(options: WebhookClientOptions) {
    this.opts = { defaultRetryAfterMs: 5_000, ...options };
    if (!this.opts.signingSecret) throw new Error('WebhookClient: signingSecret is required (WEBHOOK_SIGNING_SECRET)');
    this.agent = new Agent({
      keepAliveTimeout: 10_000,
      connections: 64,
      connect: this.opts.allowPrivate ? {} : { lookup: guardedLookup },
    });
  }

  async deliver(d: WebhookDelivery, signal: AbortSignal, parent: Context = ROOT_CONTEXT): Promise<{ status: number; durationMs: number }> {
    const url = new URL(d.url);
    const literal = literalAddressOf(url);
    if (!this.opts.allowPrivate && literal && !isPublicAddress(literal)) {
      throw new UnrecoverableError(new BlockedTargetError(literal).message);
    }
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

  private classify(err: unknown, span: ReturnType<typeof tracer.startSpan>, signal: AbortSignal): unknown {
    if (err instanceof RateLimitedError || err instanceof ProviderError || err instanceof UnrecoverableError) {
      if (!(err instanceof RateLimitedError)) recordError(span, err);
      return err;
    }
    recordError(span, err);
    if (signal.aborted) return signal.reason ?? err; // the attempt's timeout: keep its JobTimeoutError
    const cause = (err as { cause?: unknown }).cause;
    if (err instanceof BlockedTargetError || cause instanceof BlockedTargetError) {
      return new UnrecoverableError((cause instanceof BlockedTargetError ? cause : (err as Error)).message);
    }
    if (err instanceof undiciErrors.UndiciError || err instanceof Error) {
      return new ProviderError(`delivery failed: ${(err as Error).message}`);
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
