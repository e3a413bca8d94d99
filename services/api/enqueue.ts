/**
 * Adding a job: PRODUCER span (child of the request span) whose context is injected into the job, so every
 * attempt's consumer span joins the same trace. With an Idempotency-Key the job id is derived from the key,
 * and BullMQ's atomic add returns the existing job instead of creating a second one — safe under concurrency.
 */
import { createHash } from 'node:crypto';
import { Context, SpanKind, context } from '@opentelemetry/api';
import type { Job, Queue } from 'bullmq';
import { DEFAULT_PRIORITY, PRIORITIES, PriorityName, QueueName } from '../common/queue-catalog';
import type { JobEnvelope } from '../common/job-envelope';
import { ATTR_MESSAGING_MESSAGE_ID } from '../common/telemetry/semconv';
import { contextWith, injectTraceContext, messagingAttributes, messagingSpanName, recordError, tracer } from '../common/telemetry/trace-context';

export interface EnqueueRequest {
  data: Record<string, unknown>;
  priority?: PriorityName;
  delayMs?: number;
}

export function idempotentJobId(key: string): string {
  // Job ids must not contain ':' (BullMQ key separator); a digest also bounds the length.
  return `idem-${createHash('sha256').update(key).digest('hex')}`;
}

export async function enqueueJob(
  queue: Queue,
  name: QueueName,
  req: EnqueueRequest,
  idempotencyKey: string | undefined,
  parent: Context,
): Promise<Job<JobEnvelope>> {
  const jobId = idempotencyKey ? idempotentJobId(idempotencyKey) : undefined;
  const span = tracer.startSpan(messagingSpanName('send', name), {
    kind: SpanKind.PRODUCER,
    attributes: messagingAttributes('send', name, jobId),
  }, parent);
  const sendContext = contextWith(span, parent);
  try {
    const envelope: JobEnvelope = {
      payload: req.data,
      meta: { trace: injectTraceContext(sendContext), idempotencyKey },
    };
    // In the send span's context, so an auto-instrumented Redis client (tracing.ts) nests its commands here.
    const job = (await context.with(sendContext, () => queue.add(name, envelope, {
      jobId,
      priority: PRIORITIES[req.priority ?? DEFAULT_PRIORITY],
      delay: req.delayMs && req.delayMs > 0 ? req.delayMs : undefined,
    }))) as Job<JobEnvelope>;
    span.setAttribute(ATTR_MESSAGING_MESSAGE_ID, String(job.id));
    return job;
  } catch (err) {
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}
