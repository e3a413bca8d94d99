/**
 * OpenTelemetry SDK setup. Loaded with `node --require` (see services/{api,worker}/tracing.ts) before the app,
 * so the global tracer provider exists before any module asks for a tracer (and, in auto mode, before the
 * instrumented libraries are first required).
 *
 * Two modes, chosen by the standard OTEL_NODE_ENABLED_INSTRUMENTATIONS variable:
 *
 * - Lean (unset, the default): no auto-instrumentations and no ambient context. Wrapping fastify/ioredis/http
 *   costs CPU on every request and command, and sdk-node's AsyncLocalStorage context manager turns on async hooks
 *   for every promise in the process, even with sampling off (the measured cost of the auto mode against this
 *   one: docs/benchmarks.md, "Telemetry overhead"). The trace needs four spans (HTTP server, send, each attempt's process, outgoing webhook), which this
 *   project creates by hand and parents explicitly (request → send → job metadata → attempt → webhook), so a
 *   context manager that stores nothing costs nothing and loses nothing.
 * - Auto (e.g. "http,ioredis,undici"): those instrumentations of @opentelemetry/auto-instrumentations-node, and
 *   the AsyncLocalStorage context manager, so library spans — and spans from code a user adds to a processor —
 *   nest under the request and attempt spans (both run their handler/processor inside `context.with`). Its
 *   extra CPU is then the price of the extra detail.
 *
 * Exporter, endpoint and sampler come from the standard OTEL_* variables (OTLP over HTTP by default); when
 * OTEL_TRACES_SAMPLER is unset the shipped default is parent-based 10 % sampling (docs/benchmarks.md).
 * Telemetry never breaks the app: any failure here is reported on stderr and the process runs untraced.
 */
import { NodeSDK } from '@opentelemetry/sdk-node';
import { ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { type Context, type ContextManager, ROOT_CONTEXT } from '@opentelemetry/api';
import type { IncomingMessage } from 'node:http';
import { loadConfig } from '../config';
// Types only (erased): the package itself is required lazily, in auto-instrumentation mode alone.
import type * as AutoInstrumentations from '@opentelemetry/auto-instrumentations-node';

export const DEFAULT_SAMPLE_RATIO = 0.1;

/** Context manager without storage: context.active() is always the root; with() just calls. */
export class ExplicitContextManager implements ContextManager {
  active(): Context {
    return ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(_ctx: Context, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return fn.call(thisArg, ...args);
  }
  bind<T>(_ctx: Context, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    return this;
  }
}

/**
 * The instrumentations named in OTEL_NODE_ENABLED_INSTRUMENTATIONS. The package is required only here: loading
 * it pulls in every instrumentation it knows, a cost the lean mode never pays. It reads the standard variables
 * itself (OTEL_NODE_ENABLED/DISABLED_INSTRUMENTATIONS), so they behave exactly as its documentation says.
 */
type AutoInstrumentationsModule = typeof AutoInstrumentations;

function autoInstrumentations(requested: readonly string[]): ReturnType<AutoInstrumentationsModule['getNodeAutoInstrumentations']> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { getNodeAutoInstrumentations } = require('@opentelemetry/auto-instrumentations-node') as AutoInstrumentationsModule;
  const instrumentations = getNodeAutoInstrumentations({
    // Prometheus scrapes of the metrics port are not requests worth a trace.
    '@opentelemetry/instrumentation-http': {
      ignoreIncomingRequestHook: (req: IncomingMessage) => req.url === '/metrics' || req.url?.startsWith('/metrics?') === true,
    },
  });
  const loaded = new Set(instrumentations.map((i) => i.instrumentationName.replace('@opentelemetry/instrumentation-', '')));
  const unknown = requested.filter((name) => !loaded.has(name));
  if (unknown.length > 0) {
    process.stderr.write(`OTEL_NODE_ENABLED_INSTRUMENTATIONS: no instrumentation named ${unknown.join(', ')} (ignored)\n`);
  }
  return instrumentations;
}

let sdk: NodeSDK | undefined;

export function startTracing(serviceName: string): void {
  try {
    const config = loadConfig();
    if (config.tracing.disabled) return;
    const auto = config.tracing.instrumentations.length > 0;
    sdk = new NodeSDK({
      serviceName,
      instrumentations: auto ? autoInstrumentations(config.tracing.instrumentations) : [],
      contextManager: auto ? new AsyncLocalStorageContextManager() : new ExplicitContextManager(),
      ...(config.tracing.samplerFromEnv
        ? {}
        : { sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(DEFAULT_SAMPLE_RATIO) }) }),
    });
    sdk.start();
  } catch (err) {
    process.stderr.write(`tracing disabled: ${(err as Error).message}\n`);
    sdk = undefined;
  }
}

/** Flushes buffered spans; bounded so a dead collector cannot hold up shutdown. */
export async function shutdownTracing(timeoutMs = 2_000): Promise<void> {
  if (!sdk) return;
  const current = sdk;
  sdk = undefined;
  await Promise.race([
    current.shutdown().catch(() => undefined),
    new Promise((resolve) => setTimeout(resolve, timeoutMs).unref()),
  ]);
}
