import type { Processor } from './types';

/** Delivers the payload; the client maps the response to done / retry / rate limit / rejected. */
export const processor: Processor<'webhooks'> = async (job, deps) => {
  const { url, event, payload } = job.data.payload;
  const result = await deps.webhookClient.deliver(
    { url, event, payload, deliveryId: String(job.id), attempt: job.attemptsMade + 1 },
    deps.signal,
    deps.traceContext,
  );
  return { status: result.status, durationMs: result.durationMs };
};
