/**
 * The payments ledger: a durable record of every charge this system applied, keyed by the client's
 * Idempotency-Key, else the payment reference, else the job id. BullMQ delivers at least once — a job whose
 * worker died mid-charge runs again — so the processor consults the ledger before charging and passes the same
 * key to the provider, which refuses to apply a key twice. Together: each payment applied at most once.
 *
 * One Redis key per entry, expiring after LEDGER_TTL_SECONDS (7 days: longer than any retry, the 24 h failed
 * retention and the longest allowed delay), so the ledger cannot grow without bound under noeviction.
 */
import type { RedisClient } from '../common/redis';

export const LEDGER_TTL_SECONDS = 7 * 24 * 3600;

export interface LedgerEntry {
  chargeId: string;
  jobId: string;
  amount: number;
  currency: string;
  at: number;
}

export class PaymentLedger {
  private readonly prefix: string;
  constructor(private readonly redis: RedisClient, prefix: string) {
    this.prefix = `${prefix}:ledger:payments:`;
  }

  async get(ledgerKey: string): Promise<LedgerEntry | undefined> {
    const raw = await this.redis.get(this.prefix + ledgerKey);
    return raw ? (JSON.parse(raw) as LedgerEntry) : undefined;
  }

  /** Records the charge unless one is already recorded for this key; returns the entry that stands. */
  async record(ledgerKey: string, entry: LedgerEntry): Promise<LedgerEntry> {
    const created = await this.redis.set(this.prefix + ledgerKey, JSON.stringify(entry), 'EX', LEDGER_TTL_SECONDS, 'NX');
    return created === 'OK' ? entry : ((await this.get(ledgerKey)) ?? entry);
  }
}

export function ledgerKeyFor(job: { id?: string }, payload: { reference?: string }, idempotencyKey?: string): string {
  if (idempotencyKey) return `idem:${idempotencyKey}`;
  if (payload.reference) return `ref:${payload.reference}`;
  return `job:${job.id}`;
}
