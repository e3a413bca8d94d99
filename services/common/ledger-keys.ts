/**
 * Where the payments ledger (services/worker/payment-ledger.ts) keeps an intent's charge, and for how long: shared
 * by the worker, which writes it, and the API, which reads it to tell a payment that ran (and whose job retention
 * has since removed) from one whose job was lost before it ran (services/api/idempotency.ts).
 */
import type { JobMeta } from './job-envelope';

export const LEDGER_TTL_SECONDS = 8 * 24 * 3600;

/**
 * The intent's ledger key, also the provider's idempotency key: `idem:<clientId>:<Idempotency-Key>`
 * (`idem:-:<key>` for jobs enqueued before the API recorded the client), else `job:<job id>`.
 */
export function ledgerKeyFor(job: { id?: string }, meta: Pick<JobMeta, 'idempotencyKey' | 'clientId'>): string {
  if (meta.idempotencyKey) return `idem:${meta.clientId ?? '-'}:${meta.idempotencyKey}`;
  return `job:${job.id}`;
}

/** The Redis key of a ledger entry: `<QUEUE_PREFIX>:ledger:payments:<ledger key>`. */
export const ledgerEntryKey = (queuePrefix: string, ledgerKey: string) => `${queuePrefix}:ledger:payments:${ledgerKey}`;
