import type { Processor } from './types';

interface WebhookPayload {
  url: string;
  event: string;
  payload: Record<string, unknown>;
}

/** Delivers the payload; the client maps the response to done / retry / rate limit / rejected. */
export const processor: Processor<WebhookPayload> = async (job, deps) => {
  const { url, event, payload } = job.data.payload;
  const result = await deps.webhookClient.deliver(
    { url, event, payload, deliveryId: String(job.id), attempt: job.attemptsMade + 1 },
    deps.signal,
    deps.traceContext,
  );
  return { status: result.status, durationMs: result.durationMs };
};
