/**
 * Failures grouped by cause: GET /v1/admin/queues/:queue/failures. One group per fingerprint (reason + masked
 * message), with its count, first/last failure time and a few job and trace ids to open in the console and in
 * the trace backend. Groups are sorted by count, largest first (ties: most recent first).
 */
import type { Queue } from 'bullmq';
import type { FailureReason } from '../../common/failure-reason';
import { scanFailed } from './scan';

export const MAX_SAMPLES = 5;

export interface FailureGroup {
  fingerprint: string;
  reason: FailureReason;
  message: string;
  count: number;
  firstSeen: string;
  lastSeen: string;
  sampleJobIds: string[];
  sampleTraceIds: string[];
}

export interface FailureGroups {
  queue: string;
  scanned: number;
  groups: FailureGroup[];
}

export async function groupFailures(queue: Queue): Promise<FailureGroups> {
  const groups = new Map<string, FailureGroup & { first: number; last: number }>();
  const scanned = await scanFailed(queue, (job) => {
    let group = groups.get(job.fingerprint);
    if (!group) {
      group = {
        fingerprint: job.fingerprint,
        reason: job.reason,
        message: job.message,
        count: 0,
        firstSeen: '',
        lastSeen: '',
        sampleJobIds: [],
        sampleTraceIds: [],
        first: job.failedAt,
        last: job.failedAt,
      };
      groups.set(job.fingerprint, group);
    }
    group.count += 1;
    group.first = Math.min(group.first, job.failedAt);
    group.last = Math.max(group.last, job.failedAt);
    // Scanned newest first: samples are the most recent failures of the group.
    if (group.sampleJobIds.length < MAX_SAMPLES) group.sampleJobIds.push(job.id);
    if (job.traceId && group.sampleTraceIds.length < MAX_SAMPLES && !group.sampleTraceIds.includes(job.traceId)) {
      group.sampleTraceIds.push(job.traceId);
    }
  });
  const sorted = [...groups.values()]
    .sort((a, b) => b.count - a.count || b.last - a.last)
    .map(({ first, last, ...group }) => ({ ...group, firstSeen: new Date(first).toISOString(), lastSeen: new Date(last).toISOString() }));
  return { queue: queue.name, scanned, groups: sorted };
}
