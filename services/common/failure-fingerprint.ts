/**
 * Fingerprint of a failure: what makes two failed jobs "the same problem". The message is masked so that values
 * which differ from job to job (UUIDs, hex ids and digests, numbers) do not split a cause into thousands of
 * groups — "timeout after 10000 ms on job 123" and "… job 456" are one group — and the fingerprint is a stable
 * hash of reason + masked message, the same in every API replica and across restarts.
 */
import { createHash } from 'node:crypto';
import type { FailureReason } from './failure-reason';

/** Longest message kept for grouping and display; a failure reason is a line, not a payload. */
export const MAX_MESSAGE_CHARS = 500;

const UUID = /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi;
// Hex runs of 8+ characters mixing digits and letters (ids, digests, trace ids), whole words or behind a prefix
// such as "ch_" or "idem-". All-digit runs are numbers (so "job 123" and "job 12345678" stay one group) and a
// word like "deadbeef" without digits is left alone.
const HEX = /(?<![0-9a-z])(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{8,}(?![0-9a-z])/gi;
// Numbers anywhere, also glued to letters ("job123", "10000ms", "v2"), with decimals.
const NUMBER = /\d+(?:\.\d+)?/g;

/** The message with its variable parts replaced by placeholders. */
export function maskMessage(message: string): string {
  return message
    .slice(0, MAX_MESSAGE_CHARS)
    .replace(UUID, '<uuid>')
    .replace(HEX, '<hex>')
    .replace(NUMBER, '<n>')
    .replace(/\s+/g, ' ')
    .trim();
}

/** 16 hex characters of sha256(reason, masked message): stable, short enough for a URL or a Slack message. */
export function failureFingerprint(reason: FailureReason, message: string): string {
  return createHash('sha256').update(`${reason}\n${maskMessage(message)}`).digest('hex').slice(0, 16);
}
