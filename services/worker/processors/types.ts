/**
 * The processor contract: a plain async function (job, deps). deps carries everything from the outside world
 * the processor may touch, plus this attempt's abort signal (fired at the queue's timeout or when BullMQ cancels
 * the job: processors pass it to every outbound call), so tests call a processor directly with fakes or real pieces.
 */
import type { Job } from 'bullmq';
import type { Context } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { JobEnvelope } from '../../common/job-envelope';
import type { PayloadOf, QueueName } from '../../common/queue-catalog';
import type { NotificationProvider, PaymentProvider } from '../providers/provider';
import type { PaymentLedger } from '../payment-ledger';
import type { WebhookClient } from '../webhook/client';
import type { WebhookMetrics } from '../../common/telemetry/webhook-metrics';

export interface ProcessorDeps {
  signal: AbortSignal;
  log: Logger;
  /** This attempt's span as a parent context, for spans the processor starts (e.g. the webhook request). */
  traceContext: Context;
  paymentProvider: PaymentProvider;
  notificationProvider: NotificationProvider;
  ledger: PaymentLedger;
  webhookClient: WebhookClient;
  webhookMetrics: WebhookMetrics;
}

export type QueueJob<P = Record<string, unknown>> = Job<JobEnvelope<P>>;
/** A queue's processor: its job's payload is typed from the queue's catalog schema. */
export type Processor<Q extends QueueName> = (job: QueueJob<PayloadOf<Q>>, deps: ProcessorDeps) => Promise<unknown>;
