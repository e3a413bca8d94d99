/**
 * Adding a job: PRODUCER span (child of the request span) whose context is injected into the job, so every
 * attempt's consumer span joins the same trace. With an Idempotency-Key the intent is claimed first
 * (idempotency.ts): a replay of a stored intent adds nothing; a new intent — or one whose first add has an
 * unknown outcome — is added under the intent's job id, which BullMQ's atomic add never stores twice.
 * A replay whose job is in no state of its queue asks what became of it (IdempotencyStore#missingJobEvidence): a
 * job that ran and was removed by retention is answered as before, never added again; a job lost before it ran (a
 * failover) is added again under the same id with the request's data — the fingerprint makes it the data the key is
 * bound to — and answered as the first request was; the payments ledger still charges the intent at most once.
 * bullmq_jobs_enqueued_total counts jobs this request actually created, never replays; bullmq_jobs_readded_total
 * the lost jobs added again.
 */
import { randomUUID } from 'node:crypto';
import { type Context, SpanKind, context } from '@opentelemetry/api';
import { Job, type Queue } from 'bullmq';
import type { FastifyBaseLogger } from 'fastify';
import { DEFAULT_PRIORITY, PRIORITIES, type QueueName } from '../common/queue-catalog';
import type { JobEnvelope } from '../common/job-envelope';
import type { ApiMetrics } from '../common/telemetry/http-metrics';
import { ATTR_MESSAGING_MESSAGE_ID } from '../common/telemetry/semconv';
import { contextWith, injectTraceContext, messagingAttributes, messagingSpanName, recordError, tracer } from '../common/telemetry/trace-context';
import { type EnqueueRequest, type IdempotencyStore, requestFingerprint } from './idempotency';

export interface EnqueueDeps {
  queue: Queue;
  idempotency: IdempotencyStore;
  metrics: Pick<ApiMetrics, 'enqueued' | 'readded'>;
  /** The request's logger: a lost job added again, or a missing one nothing can tell about, is logged. */
  log?: Pick<FastifyBaseLogger, 'warn'>;
}

export interface Intent {
  /** Key id of the client key (plugins/app/auth.ts); Idempotency-Keys are scoped by it. */
  clientId: string;
  idempotencyKey?: string;
}

export interface EnqueueResult {
  id: string;
  state: string;
  /** True when the answer is the stored outcome of an earlier request with the same Idempotency-Key. */
  replayed: boolean;
}

export async function enqueueJob(
  deps: EnqueueDeps,
  name: QueueName,
  req: EnqueueRequest,
  intent: Intent,
  parent: Context,
): Promise<EnqueueResult> {
  const { queue, idempotency } = deps;
  const freshState = req.delayMs ? 'delayed' : 'prioritized';
  const key = intent.idempotencyKey;
  if (!key) {
    const { job } = await addJob(deps, { queue: name, req, intent, parent, creates: true });
    return { id: String(job.id), state: freshState, replayed: false };
  }

  const claim = await idempotency.claim(name, intent.clientId, key, requestFingerprint(req));
  const { record } = claim;
  const markAdded = () => {
    // Not awaited: the answer does not depend on it (same connection, so it is sent before any later command), and
    // if it is lost a replay merely re-adds under the same id, which BullMQ turns into a no-op.
    void idempotency.markAdded(name, intent.clientId, key, record).catch(() => undefined);
  };
  let readd = false;
  if (claim.kind === 'replay') {
    const state = await queue.getJobState(record.jobId);
    if (state !== 'unknown') {
      // Written even when already marked: the replication check after this (routes/jobs.ts → confirmReplicated)
      // is a WAIT, which covers this connection's writes only, and the job's add may have come through another
      // API whose WAIT fell short (503). This write comes after that add in the master's replication stream, so
      // the WAIT covers it (campaign seed 105: a payment answered 202 on such a replay was lost by a failover).
      markAdded();
      return { id: record.jobId, state, replayed: true };
    }
    const evidence = await idempotency.missingJobEvidence(name, intent.clientId, key);
    // Stored once and gone: added again only when it provably never ran. Never known stored (the first add still
    // running, or its outcome unknown): added again unless it provably ran.
    if (evidence === 'processed' || (record.added && evidence === 'unknown')) {
      if (record.added && evidence === 'unknown') {
        deps.log?.warn({ queue: name, jobId: record.jobId }, 'idempotent replay: the job is in no state and nothing tells whether it ran (its record is older than what would prove it); not added again');
      }
      return { id: record.jobId, state, replayed: true };
    }
    readd = record.added;
  }
  const { job, created } = await addJob(deps, { queue: name, req, intent, parent, jobId: record.jobId, creates: claim.kind === 'new', readd });
  if (readd) {
    deps.log?.warn({ queue: name, jobId: record.jobId, readded: created }, 'idempotent replay: the job was lost from Redis before it ran; added again under its id');
  } else {
    markAdded();
  }
  if (claim.kind === 'new' || (readd && created)) return { id: String(job.id), state: freshState, replayed: readd };
  return { id: String(job.id), state: created ? freshState : await queue.getJobState(record.jobId), replayed: !created };
}

interface AddJobOptions {
  queue: QueueName;
  req: EnqueueRequest;
  intent: Intent;
  /** The request span: the producer span is its child. */
  parent: Context;
  /** The intent's job id (Idempotency-Key); none: BullMQ assigns one. */
  jobId?: string;
  /**
   * True when no job can exist under this id yet (no id, or a new claim's id), so this add creates the job.
   * False: BullMQ returns the existing job if there is one, and whether this add created it is read back from the
   * stored envelope's enqueueId.
   */
  creates: boolean;
  /** The intent's job was stored once and lost: a job this add creates counts as re-added, not enqueued. */
  readd?: boolean;
}

/** One add under the producer span. */
async function addJob(deps: EnqueueDeps, opts: AddJobOptions): Promise<{ job: Job<JobEnvelope>; created: boolean }> {
  const { queue: name, req, intent, parent, jobId, creates, readd = false } = opts;
  const span = tracer.startSpan(messagingSpanName('send', name), {
    kind: SpanKind.PRODUCER,
    attributes: messagingAttributes('send', name, jobId),
  }, parent);
  const sendContext = contextWith(span, parent);
  try {
    const enqueueId = randomUUID();
    const envelope: JobEnvelope = {
      payload: req.data,
      meta: {
        trace: injectTraceContext(sendContext),
        idempotencyKey: intent.idempotencyKey,
        clientId: intent.clientId,
        enqueueId,
      },
    };
    // In the send span's context, so an auto-instrumented Redis client (tracing.ts) nests its commands here.
    const job = (await context.with(sendContext, () => deps.queue.add(name, envelope, {
      jobId,
      priority: PRIORITIES[req.priority ?? DEFAULT_PRIORITY],
      delay: req.delayMs && req.delayMs > 0 ? req.delayMs : undefined,
    }))) as Job<JobEnvelope>;
    span.setAttribute(ATTR_MESSAGING_MESSAGE_ID, String(job.id));
    const created = creates || (jobId !== undefined && (await storedEnqueueId(deps.queue, jobId)) === enqueueId);
    if (created && readd) deps.metrics.readded(name);
    else if (created) deps.metrics.enqueued(name);
    return { job, created };
  } catch (err) {
    recordError(span, err);
    throw err;
  } finally {
    span.end();
  }
}

async function storedEnqueueId(queue: Queue, jobId: string): Promise<string | undefined> {
  const stored = await Job.fromId<JobEnvelope>(queue, jobId);
  return stored?.data?.meta?.enqueueId;
}
