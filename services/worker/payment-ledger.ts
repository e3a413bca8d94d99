/**
 * The payments ledger: a durable record of every charge this system applied.
 *
 * A charge is identified by its intent — the client's Idempotency-Key, scoped to the client that sent it
 * (`meta.clientId`, a digest of its API key: two clients may pick the same key) — and bound to the payment's
 * details (amount, currency, account). BullMQ delivers at least once — a job whose worker died mid-charge runs
 * again, and a client may send its intent again — so the processor consults the ledger before charging and
 * passes the intent key to the provider, which refuses to apply a key twice or to a different payment. A job
 * without an Idempotency-Key (enqueued around the API) is its own intent: its job id.
 *
 * `reference` is unique per account: the first intent to use it claims it (SET NX: of two concurrent payments,
 * exactly one wins) before any charge. The same intent may come back to it (a replay); another intent using it is
 * refused for good, whatever its details — a second charge under one order reference is what the reference exists
 * to prevent, and answering with the first charge would make two payments share one charge id.
 *
 * One Redis key per entry, expiring after LEDGER_TTL_SECONDS, so the ledger cannot grow without bound under
 * noeviction. 8 days: a charged job that then failed stays replayable for at most FAILED_RETENTION_S (7 days at
 * most, services/common/config/shared.ts) after its last attempt, and the day on top covers the attempts and their
 * backoff — so a replay from the console or the failures API always finds its charge.
 */
import { createHash } from 'node:crypto';
import type { RedisClient } from '../common/redis';
import { LEDGER_TTL_SECONDS, ledgerEntryKey } from '../common/ledger-keys';

// Key names and TTL live in common/ledger-keys.ts: the API reads the ledger too (a replay of a lost job).
export { LEDGER_TTL_SECONDS, ledgerKeyFor } from '../common/ledger-keys';

/** What binds an intent: the same intent with other details is a different payment, never merged. */
export interface PaymentDetails {
  amount: number;
  currency: string;
  account: string;
}

export interface LedgerEntry extends Partial<PaymentDetails> {
  chargeId: string;
  jobId: string;
  at: number;
}

/** Who holds an account's reference: the intent (ledger key) and the details it was claimed with. */
export interface ReferenceClaim extends PaymentDetails {
  ledgerKey: string;
  jobId: string;
  reference: string;
  at: number;
}

export function sameDetails(a: Partial<PaymentDetails>, b: PaymentDetails): boolean {
  // Entries written before the account was recorded compare on what they hold.
  return a.amount === b.amount && a.currency === b.currency && (a.account === undefined || a.account === b.account);
}

export class PaymentLedger {
  private readonly referencePrefix: string;
  constructor(private readonly redis: RedisClient, private readonly prefix: string) {
    this.referencePrefix = `${prefix}:ledger:references:`;
  }

  async get(ledgerKey: string): Promise<LedgerEntry | undefined> {
    const raw = await this.redis.get(ledgerEntryKey(this.prefix, ledgerKey));
    return raw ? (JSON.parse(raw) as LedgerEntry) : undefined;
  }

  /** Records the charge unless one is already recorded for this key; returns the entry that stands. */
  async record(ledgerKey: string, entry: LedgerEntry): Promise<LedgerEntry> {
    const created = await this.redis.set(ledgerEntryKey(this.prefix, ledgerKey), JSON.stringify(entry), 'EX', LEDGER_TTL_SECONDS, 'NX');
    return created === 'OK' ? entry : ((await this.get(ledgerKey)) ?? entry);
  }

  /**
   * Claims (account, reference) for this intent unless another holds it; returns the claim that stands — this
   * one, or the earlier one. SET NX is atomic: of concurrent claims exactly one is stored.
   */
  async claimReference(claim: ReferenceClaim): Promise<ReferenceClaim> {
    const key = this.referencePrefix + referenceDigest(claim.account, claim.reference);
    for (;;) {
      const created = await this.redis.set(key, JSON.stringify(claim), 'EX', LEDGER_TTL_SECONDS, 'NX');
      if (created === 'OK') return claim;
      const raw = await this.redis.get(key);
      if (raw) return JSON.parse(raw) as ReferenceClaim;
      // Expired between SET NX and GET: claim again.
    }
  }
}

/** Account and reference are free text (':' included): a digest keeps the Redis key unambiguous and bounded. */
function referenceDigest(account: string, reference: string): string {
  return createHash('sha256').update(JSON.stringify([account, reference])).digest('hex');
}
