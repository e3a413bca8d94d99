/**
 * OpenTelemetry SDK setup. Loaded with `node --require` (see services/{api,worker}/tracing.ts) before the app,
 * so the global tracer provider exists before any module asks for a tracer.
 *
 * Deliberately no auto-instrumentations: measured on this machine, wrapping fastify/ioredis/http costs the
 * API half its throughput. The trace needs exactly four spans (HTTP server, enqueue, each attempt, outgoing
 * webhook), which this project creates by hand where they happen. Exporter, endpoint and sampler come from the
 * standard OTEL_* variables (OTLP over HTTP by default); when OTEL_TRACES_SAMPLER is unset the shipped default
 * is parent-based 10 % sampling, which keeps the overhead within budget (docs/benchmarks.md).
 * Telemetry never breaks the app: any failure here is logged and the process runs untraced.
 *
 * No ambient context: sdk-node would install the AsyncLocalStorage context manager, and on Node 20 that turns on
 * async hooks for every promise in the process — measured here at 30 % of API throughput even with sampling
 * off. Our spans pass their context explicitly (request → enqueue → job metadata → attempt → webhook), so a
 * context manager that stores nothing costs nothing and loses nothing.
 */
import { NodeSDK } from '@opentelemetry/sdk-node';
import { ParentBasedSampler, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-base';
import { Context, ContextManager, ROOT_CONTEXT } from '@opentelemetry/api';
import { loadConfig } from '../config';

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

let sdk: NodeSDK | undefined;

export function startTracing(serviceName: string): void {
  try {
    const config = loadConfig();
    if (config.tracing.disabled) return;
    sdk = new NodeSDK({
      serviceName,
      instrumentations: [],
      contextManager: new ExplicitContextManager(),
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
