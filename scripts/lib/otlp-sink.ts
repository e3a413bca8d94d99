/**
 * A local OTLP/HTTP trace endpoint (JSON encoding, what the services' exporter sends): answers 200 to
 * POST /v1/traces like a collector (Jaeger's OTLP port) would. Tests read the decoded spans; the bench only
 * counts requests and bytes so the services' export cost is real while the sink stays cheap.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: Record<string, unknown>;
  status?: { code?: number; message?: string };
  events: { name: string }[];
  links: { traceId: string; spanId: string }[];
  /** Instrumentation scope (tracer name), e.g. "@opentelemetry/instrumentation-ioredis". */
  scope: string;
}

/** OTLP's numeric span kinds (opentelemetry-proto trace.proto `SpanKind`). */
export const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

export interface OtlpSinkOptions {
  /** Decode and keep every span (default true); false only counts requests and bytes. */
  keepSpans?: boolean;
}

export interface OtlpSink {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (the exporter appends /v1/traces). */
  endpoint: string;
  /** Decoded spans in arrival order (empty with keepSpans: false). */
  spans: ReceivedSpan[];
  /** POST /v1/traces requests received and their body bytes. */
  stats(): { requests: number; bytes: number };
  close(): Promise<void>;
}

type OtlpValue = Record<string, unknown>;
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttribute[];
  status?: { code?: number; message?: string };
  events?: { name: string }[];
  links?: { traceId: string; spanId: string }[];
}
interface OtlpTraces {
  resourceSpans?: {
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: { scope?: { name?: string }; spans?: OtlpSpan[] }[];
  }[];
}

function attrValue(v: OtlpValue): unknown {
  if ('stringValue' in v) return v.stringValue;
  if ('intValue' in v) return Number(v.intValue);
  if ('doubleValue' in v) return v.doubleValue;
  if ('boolValue' in v) return v.boolValue;
  return v;
}

function attrs(list: OtlpAttribute[] = []): Record<string, unknown> {
  return Object.fromEntries(list.map((a) => [a.key, attrValue(a.value)]));
}

function decode(body: OtlpTraces): ReceivedSpan[] {
  const out: ReceivedSpan[] = [];
  for (const rs of body.resourceSpans ?? []) {
    const service = String(attrs(rs.resource?.attributes)['service.name']);
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        out.push({
          service,
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId || undefined,
          name: s.name,
          kind: s.kind,
          attributes: attrs(s.attributes),
          status: s.status,
          events: s.events ?? [],
          links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId })),
          scope: String(ss.scope?.name ?? ''),
        });
      }
    }
  }
  return out;
}

export async function startOtlpSink(opts: OtlpSinkOptions = {}): Promise<OtlpSink> {
  const keepSpans = opts.keepSpans ?? true;
  const spans: ReceivedSpan[] = [];
  let requests = 0;
  let bytes = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') {
        const body = Buffer.concat(chunks);
        requests++;
        bytes += body.length;
        if (keepSpans) {
          try {
            spans.push(...decode(JSON.parse(body.toString()) as OtlpTraces));
          } catch {
            // Not OTLP/JSON: answer like a collector would, so the exporter's failure is visible to the caller.
            res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"expected OTLP/JSON"}');
            return;
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    stats: () => ({ requests, bytes }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
