/**
 * Replay of failed jobs: POST /v1/admin/queues/:queue/failures/retry. Selects failed jobs by fingerprint, reason
 * and/or explicit ids (all given filters must match), newest first, at most `limit`, and retries each with
 * BullMQ's Job#retry('failed', { resetAttemptsMade: true }): the job keeps its id and data (so its Idempotency-Key
 * and ledger key: a payment that was charged before it failed is not charged again, see
 * services/worker/payment-ledger.ts) and gets the queue's full set of attempts again. `attemptsStarted` is kept,
 * so the wait-time histogram does not count days of dead-letter time as queue wait.
 *
 * Job#retry runs one Lua script that checks the job is still in `failed`, so a job retried meanwhile (by another
 * request, the console, or a second replica) is skipped, never run twice.
 */
import { Job, type Queue } from 'bullmq';
import type { FailureReason } from '../../common/failure-reason';
import { type FailedJobSummary, readJobSummaries, scanFailed } from './scan';

export const DEFAULT_REPLAY_LIMIT = 100;
export const MAX_REPLAY_LIMIT = 1000;
const CONCURRENCY = 25;

export interface ReplaySelection {
  fingerprint?: string;
  reason?: FailureReason;
  jobIds?: string[];
  limit?: number;
}

export interface ReplayResult {
  /** Ids retried, in selection order (newest failure first when selected by scan). */
  jobIds: string[];
  /** Selected ids not retried: gone, no longer failed (retried or removed meanwhile), or not matching the filters. */
  skipped: string[];
}

const matches = (job: FailedJobSummary, s: ReplaySelection) =>
  (s.fingerprint === undefined || job.fingerprint === s.fingerprint) && (s.reason === undefined || job.reason === s.reason);

/** BullMQ's answers for "this job is not (or no longer) in the failed set" (scripts.finishedErrors codes -1, -3). */
const NOT_FAILED = /Missing key for job|is not in the failed state/;

/** Retries one failed job (same id, fresh attempts); false when it is gone or no longer failed. */
export async function retryFailedJob(queue: Queue, id: string): Promise<boolean> {
  const job = await Job.fromId(queue, id);
  if (!job) return false;
  try {
    await job.retry('failed', { resetAttemptsMade: true });
    return true;
  } catch (err) {
    if (NOT_FAILED.test((err as Error).message)) return false;
    throw err;
  }
}

export async function replayFailures(queue: Queue, selection: ReplaySelection): Promise<ReplayResult> {
  const limit = selection.limit ?? DEFAULT_REPLAY_LIMIT;
  /** Every id considered, in request (or newest-failure-first) order; `selected` are the ones to try. */
  let considered: string[];
  const selected: string[] = [];

  if (selection.jobIds) {
    considered = [...new Set(selection.jobIds)];
    const found = new Map((await readJobSummaries(queue, considered)).map((job) => [job.id, job]));
    for (const id of considered) {
      const job = found.get(id);
      // Gone or not matching the filters: skipped. Past the limit: left as it is, and reported as skipped.
      if (job && matches(job, selection) && selected.length < limit) selected.push(id);
    }
  } else {
    await scanFailed(queue, (job) => {
      if (matches(job, selection)) selected.push(job.id);
      return selected.length < limit;
    });
    considered = selected;
  }

  const retried = new Set<string>();
  for (let i = 0; i < selected.length; i += CONCURRENCY) {
    const batch = selected.slice(i, i + CONCURRENCY);
    const outcomes = await Promise.all(batch.map((id) => retryFailedJob(queue, id)));
    batch.forEach((id, j) => outcomes[j] && retried.add(id));
  }
  return { jobIds: selected.filter((id) => retried.has(id)), skipped: considered.filter((id) => !retried.has(id)) };
}
