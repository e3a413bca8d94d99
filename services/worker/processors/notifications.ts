import type { Processor } from './types';

export const processor: Processor<'notifications'> = async (job, deps) => {
  const { messageId } = await deps.notificationProvider.send(job.data.payload, { signal: deps.signal, traceContext: deps.traceContext });
  return { messageId, channel: job.data.payload.channel };
};
