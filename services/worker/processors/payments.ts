import type { Processor } from './types';
import { UnrecoverableError } from '../errors';
import { ledgerKeyFor, sameDetails } from '../payment-ledger';

/**
 * Charges once per intent, however many times the job runs (payment-ledger.ts). A replayed intent returns its
 * charge; an intent or a reference reused for a different payment fails for good ("rejected"), never charged.
 */
export const processor: Processor<'payments'> = async (job, deps) => {
  const { payload, meta } = job.data;
  const key = ledgerKeyFor(job, meta);
  const details = { amount: payload.amount, currency: payload.currency, account: payload.account };
  const recorded = await deps.ledger.get(key);
  if (recorded) {
    if (!sameDetails(recorded, details)) {
      throw new UnrecoverableError(
        `Idempotency-Key already used for a different payment (job ${recorded.jobId}, charge ${recorded.chargeId}); not charged`,
      );
    }
    return { chargeId: recorded.chargeId, replayed: true };
  }

  if (payload.reference) {
    const claim = await deps.ledger.claimReference({
      ...details,
      reference: payload.reference,
      ledgerKey: key,
      jobId: String(job.id),
      at: Date.now(),
    });
    if (claim.ledgerKey !== key) {
      throw new UnrecoverableError(
        `reference ${JSON.stringify(payload.reference)} is already used on this account by another payment (job ${claim.jobId}); not charged`,
      );
    }
    if (!sameDetails(claim, details)) {
      throw new UnrecoverableError(
        `Idempotency-Key and reference already used for a different payment (job ${claim.jobId}); not charged`,
      );
    }
  }

  const charge = await deps.paymentProvider.charge({ ...details, idempotencyKey: key }, { signal: deps.signal, traceContext: deps.traceContext });
  // The provider refuses one key for two different payments, so whatever entry stands here is this payment's.
  const entry = await deps.ledger.record(key, { chargeId: charge.chargeId, jobId: String(job.id), ...details, at: Date.now() });
  return { chargeId: entry.chargeId, replayed: charge.replayed };
};
