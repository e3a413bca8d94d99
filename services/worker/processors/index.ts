/**
 * Every queue's processor, keyed by queue name. The mapped type makes a catalog queue without a processor (or a
 * processor typed for another queue's payload) a compile error, so adding a queue is its catalog entry plus its
 * processor file, listed here.
 */
import type { QueueName } from '../../common/queue-catalog';
import type { Processor } from './types';
import { processor as payments } from './payments';
import { processor as notifications } from './notifications';
import { processor as webhooks } from './webhooks';

export const PROCESSORS: { [Q in QueueName]: Processor<Q> } = { payments, notifications, webhooks };
