/**
 * Reads a queue's failed jobs newest first, straight from BullMQ's Redis structures: the `failed` sorted set
 * (scored by failure time) and, per job, only the hash fields grouping needs (HMGET, pipelined in pages) — not
 * whole jobs, whose data and stack traces can be large. At most MAX_SCANNED jobs are read per call, so one
 * request costs a bounded amount of Redis and API time whatever the backlog.
 */
import type { Queue } from 'bullmq';
import { queueRedisClient } from '../../common/queue-stats';
import { type FailureReason, storedFailureReason } from '../../common/failure-reason';
import { failureFingerprint, maskMessage } from '../../common/failure-fingerprint';

/** Newest failed jobs one request reads (the contract of GET /v1/admin/queues/:queue/failures). */
export const MAX_SCANNED = 10_000;
const PAGE = 500;

export interface FailedJobSummary {
  id: string;
  reason: FailureReason;
  /** failedReason with variable parts masked (services/common/failure-fingerprint.ts). */
  message: string;
  fingerprint: string;
  /** When the job failed for good (BullMQ finishedOn), ms since epoch. */
  failedAt: number;
  /** Trace id of the producer span the job carries (job.data.meta.trace.traceparent), if any. */
  traceId?: string;
}

const TRACEPARENT = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/;

function traceIdOf(rawData: string | null): string | undefined {
  if (!rawData) return undefined;
  try {
    const data = JSON.parse(rawData) as { meta?: { trace?: { traceparent?: unknown } } };
    const tp = data?.meta?.trace?.traceparent;
    const id = typeof tp === 'string' ? TRACEPARENT.exec(tp)?.[1] : undefined;
    return id && !/^0+$/.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

function stacktraceOf(raw: string | null): string[] {
  if (!raw) return [];
  try {
    const parsed = JSON.parse(raw) as unknown;
    return Array.isArray(parsed) ? parsed.filter((s): s is string => typeof s === 'string') : [];
  } catch {
    return [];
  }
}

/** Summary of one stored job hash; undefined when the job is gone (removed by retention since it was listed). */
export function summarize(id: string, fields: (string | null)[]): FailedJobSummary | undefined {
  const [failedReason, stacktrace, finishedOn, timestamp, data] = fields;
  if (failedReason === null && finishedOn === null && data === null) return undefined;
  const message = failedReason ?? '';
  const reason = storedFailureReason({ failedReason: message, stacktrace: stacktraceOf(stacktrace ?? null) });
  return {
    id,
    reason,
    message: maskMessage(message),
    fingerprint: failureFingerprint(reason, message),
    failedAt: Number(finishedOn ?? timestamp ?? 0),
    traceId: traceIdOf(data ?? null),
  };
}

const FIELDS = ['failedReason', 'stacktrace', 'finishedOn', 'timestamp', 'data'] as const;

/** Summaries of the given job ids (in order; missing jobs left out). */
export async function readJobSummaries(queue: Queue, ids: readonly string[]): Promise<FailedJobSummary[]> {
  const client = await queueRedisClient(queue);
  const out: FailedJobSummary[] = [];
  for (let i = 0; i < ids.length; i += PAGE) {
    const page = ids.slice(i, i + PAGE);
    const pipeline = client.pipeline();
    for (const id of page) pipeline.hmget(queue.toKey(id), ...FIELDS);
    const results = (await pipeline.exec()) ?? [];
    page.forEach((id, j) => {
      const [err, fields] = results[j] ?? [];
      if (err) throw err;
      const summary = summarize(id, fields as (string | null)[]);
      if (summary) out.push(summary);
    });
  }
  return out;
}

/**
 * Visits failed jobs newest first, page by page, until `visit` returns false or MAX_SCANNED ids were read.
 * Returns how many job ids were read from the failed set.
 */
export async function scanFailed(queue: Queue, visit: (job: FailedJobSummary) => boolean | void): Promise<number> {
  const client = await queueRedisClient(queue);
  const failedKey = queue.toKey('failed');
  let scanned = 0;
  while (scanned < MAX_SCANNED) {
    const wanted = Math.min(PAGE, MAX_SCANNED - scanned);
    const ids = await client.zrevrange(failedKey, scanned, scanned + wanted - 1);
    scanned += ids.length;
    for (const job of await readJobSummaries(queue, ids)) {
      if (visit(job) === false) return scanned;
    }
    if (ids.length < wanted) break; // reached the oldest failed job
  }
  return scanned;
}
