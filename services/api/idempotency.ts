/**
 * Idempotency-Key, after the IETF draft "The Idempotency-Key HTTP Header Field": an intent is identified by
 * (client key id, queue, Idempotency-Key) and bound to its request's fingerprint. One record per intent in Redis:
 *
 *   <prefix>:idempotency:<queue>:<sha256(clientId:key)> = {"fp": <request fingerprint>, "jobId": ..., "added": bool}
 *
 * written with SET NX EX IDEMPOTENCY_TTL_S, so it lives independently of job retention, and exactly one of any
 * number of concurrent requests claims it. The claim fixes the job id (the intent's digest plus a per-claim
 * suffix, so a key reused after its record expired never lands on an old job), and BullMQ's atomic add never
 * stores two jobs under one id: a request that finds the record claimed but not yet marked "added" (the first
 * add still running, or timed out with an unknown outcome) adds again under the same id — a no-op when the job
 * exists — and so never answers 202 for a job that was not stored.
 *
 * A record can also outlive its job: a failover that promotes a replica which had the record but not the job
 * (asynchronous replication), or a job that finished and was removed by retention. A replay therefore checks that
 * the job still exists (any state), and when it does not asks `missingJobEvidence` which of the two it was: a
 * lost job is added again under the same id (services/api/enqueue.ts), one that ran never is.
 */
import { createHash, randomBytes } from 'node:crypto';
import stringify from 'safe-stable-stringify';
import type { RedisClient } from '../common/redis';
import { DEFAULT_PRIORITY, RETENTION, type PriorityName, type QueueName } from '../common/queue-catalog';
import { LEDGER_TTL_SECONDS, ledgerEntryKey, ledgerKeyFor } from '../common/ledger-keys';
import { ApiError } from './errors';

/** What a client asks to enqueue (the body of POST /v1/queues/<queue>/jobs): what an intent's fingerprint covers. */
export interface EnqueueRequest {
  data: Record<string, unknown>;
  priority?: PriorityName;
  delayMs?: number;
}

export interface IdempotencyRecord {
  /** sha256 of the canonical request. */
  fp: string;
  jobId: string;
  /** Set once the job is known to be stored. */
  added: boolean;
}

/**
 * Fingerprint of a request: sha256 of its canonical form (sorted keys; defaults made explicit, so omitting
 * "priority" and sending "normal" are the same request).
 */
export function requestFingerprint(req: EnqueueRequest): string {
  const canonical = stringify({ data: req.data, priority: req.priority ?? DEFAULT_PRIORITY, delayMs: req.delayMs ?? 0 });
  return createHash('sha256').update(canonical ?? '').digest('hex');
}

/** The intent's one encoding: its record's key and its jobs' ids are both derived from this digest. */
const intentDigest = (clientId: string, key: string) => createHash('sha256').update(`${clientId}:${key}`).digest('hex');

/** Job id of a claim of an intent. No ':' (BullMQ's key separator); fixed length whatever the key. */
const claimJobId = (digest: string) => `idem-${digest.slice(0, 40)}-${randomBytes(8).toString('hex')}`;

/** The job id a claim of (clientId, key) gets (bench/failed-memory.ts stores jobs shaped like the API's). */
export const idempotentJobId = (clientId: string, key: string) => claimJobId(intentDigest(clientId, key));

export const idempotencyKeyReused = (key: string) =>
  new ApiError(
    422,
    'IDEMPOTENCY_KEY_REUSED',
    `Idempotency-Key "${key}" was already used with a different request (body, priority or delayMs); use a new key for a new intent`,
  );

export const idempotencyKeyRequired = (queue: string) =>
  new ApiError(
    400,
    'IDEMPOTENCY_KEY_REQUIRED',
    `"${queue}" jobs need an Idempotency-Key header (1–255 visible ASCII characters) naming the intent, so a retry is never a second job`,
  );

export type Claim =
  /** This request owns the intent: add the job, then markAdded. */
  | { kind: 'new'; record: IdempotencyRecord }
  /** Same intent seen before; `added` says whether its job is known to be stored. */
  | { kind: 'replay'; record: IdempotencyRecord };

/**
 * What Redis holds about an intent whose job is gone: `processed` — it ran (a payment's ledger entry), so retention
 * removed it after it finished; `lost` — it provably never ran (a payment with no ledger entry while any entry
 * written for it would still be kept), or, for the at-least-once queues, it would still be kept had it finished;
 * `unknown` — nothing tells (a record older than what would have kept the proof).
 */
export type MissingJobEvidence = 'processed' | 'lost' | 'unknown';

export class IdempotencyStore {
  /**
   * @param keyPrefix The queue's key prefix (services/common/queue-keys.ts): QUEUE_PREFIX on one node; on a Redis
   * Cluster the queue's hash tag, so an intent's record lives on the queue's master — one failover loses or keeps
   * both together, and REDIS_WAIT_REPLICAS (WAIT on that node after the add) covers the record too.
   */
  constructor(
    private readonly redis: RedisClient,
    private readonly keyPrefix: (queue: QueueName) => string,
    private readonly ttlS: number,
    /** QUEUE_PREFIX, under which the worker keeps the payments ledger (common/ledger-keys.ts). */
    private readonly ledgerPrefix: string,
  ) {}

  private recordKey(queue: QueueName, digest: string): string {
    return `${this.keyPrefix(queue)}:idempotency:${queue}:${digest}`;
  }

  /** Claims the intent or returns its record; 422 IDEMPOTENCY_KEY_REUSED (nothing stored) on a different request. */
  async claim(queue: QueueName, clientId: string, key: string, fp: string): Promise<Claim> {
    const digest = intentDigest(clientId, key);
    const redisKey = this.recordKey(queue, digest);
    const record: IdempotencyRecord = { fp, jobId: claimJobId(digest), added: false };
    // SET NX ... GET: claims atomically and returns the previous record in the same round trip (Redis ≥ 7.0).
    const previous = (await this.redis.call('SET', redisKey, JSON.stringify(record), 'NX', 'EX', this.ttlS, 'GET')) as string | null;
    if (previous === null) return { kind: 'new', record };
    const stored = JSON.parse(previous) as IdempotencyRecord;
    if (stored.fp !== fp) throw idempotencyKeyReused(key);
    return { kind: 'replay', record: stored };
  }

  /**
   * For an intent whose job is in no state of its queue: did it run (removed by retention after it finished) or was
   * it lost before it ran?
   * - payments leave a record of having run — the ledger entry every completed payment has (the charge, or the
   *   earlier charge it found), kept LEDGER_TTL_SECONDS from the charge, so from after the claim: while the intent's
   *   record is younger than that, no entry means the payment never ran;
   * - notifications and webhooks keep none, but a finished job is kept RETENTION.completed.age (a failed one far
   *   longer): while the record is younger than that, a missing job was lost — unless the count bound trimmed it
   *   early, and then the re-run is a duplicate, which their at-least-once contract allows (a webhook's delivery
   *   id is its job id: receivers dedupe by it). Losing an accepted job is the failure that contract forbids.
   */
  async missingJobEvidence(queue: QueueName, clientId: string, key: string): Promise<MissingJobEvidence> {
    if (queue === 'payments') {
      const entry = await this.redis.exists(ledgerEntryKey(this.ledgerPrefix, ledgerKeyFor({}, { clientId, idempotencyKey: key })));
      if (entry > 0) return 'processed';
    }
    const remainingMs = await this.redis.pttl(this.recordKey(queue, intentDigest(clientId, key)));
    if (remainingMs < 0) return 'unknown';
    const ageS = this.ttlS - remainingMs / 1000;
    const keptS = queue === 'payments' ? LEDGER_TTL_SECONDS : RETENTION.completed.age;
    return ageS < keptS ? 'lost' : 'unknown';
  }

  /** Records that the intent's job is stored (best effort: a replay re-adds under the same id otherwise). */
  async markAdded(queue: QueueName, clientId: string, key: string, record: IdempotencyRecord): Promise<void> {
    await this.redis.set(this.recordKey(queue, intentDigest(clientId, key)), JSON.stringify({ ...record, added: true }), 'KEEPTTL', 'XX');
  }
}
