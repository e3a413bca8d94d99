import type { Processor } from './types';
import type { NotificationRequest } from '../providers/provider';

export const processor: Processor<NotificationRequest> = async (job, deps) => {
  const { messageId } = await deps.notificationProvider.send(job.data.payload, deps.signal);
  return { messageId, channel: job.data.payload.channel };
};
