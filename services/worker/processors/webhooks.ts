import type { Processor } from './types';
import { RateLimitedError } from '../errors';
import { deferAfterRateLimit, hostBusyDeferral } from '../deferral';
import { HostBusyError } from '../webhook/client';

/**
 * Delivers the payload; the client maps the response to done / retry / rate limit / rejected. A 429 or a busy
 * target host delays this job only (deferral.ts): one customer's endpoint never holds up another's.
 */
export const processor: Processor<'webhooks'> = async (job, deps) => {
  const { url, event, payload } = job.data.payload;
  try {
    const result = await deps.webhookClient.deliver(
      { url, event, payload, deliveryId: String(job.id), attempt: job.attemptsMade + 1 },
      { signal: deps.signal, traceContext: deps.traceContext },
    );
    return { status: result.status, durationMs: result.durationMs };
  } catch (err) {
    if (err instanceof RateLimitedError) throw await deferAfterRateLimit(job, err.retryAfterMs);
    if (err instanceof HostBusyError) {
      deps.webhookMetrics.hostBusyDeferral();
      throw hostBusyDeferral(err.host);
    }
    throw err;
  }
};
