import type { Processor } from './types';
import { ledgerKeyFor } from '../payment-ledger';

/** Charges once per ledger key, however many times the job runs. */
export const processor: Processor<'payments'> = async (job, deps) => {
  const { payload, meta } = job.data;
  const key = ledgerKeyFor(job, payload, meta.idempotencyKey);
  const recorded = await deps.ledger.get(key);
  if (recorded) return { chargeId: recorded.chargeId, replayed: true };

  const charge = await deps.paymentProvider.charge(
    { amount: payload.amount, currency: payload.currency, account: payload.account, idempotencyKey: key },
    deps.signal,
  );
  const entry = await deps.ledger.record(key, {
    chargeId: charge.chargeId,
    jobId: String(job.id),
    amount: payload.amount,
    currency: payload.currency,
    at: Date.now(),
  });
  return { chargeId: entry.chargeId, replayed: charge.replayed };
};
