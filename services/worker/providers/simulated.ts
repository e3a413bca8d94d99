/**
 * The simulated provider: behaves like a remote API whose latency, failures, timeouts and 429s are injected at
 * runtime through PUT /v1/admin/faults/:queue (read from Redis by every replica). Charges are durable and
 * idempotent per key in Redis (one expiring key each) — like a real PSP — so at-most-once can be proven across
 * worker crashes.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisClient } from '../../common/redis';
import type { FaultSettings } from '../../common/faults';
import type { QueueName } from '../../common/queue-catalog';
import { ProviderError, RateLimitedError, UnrecoverableError } from '../errors';
import type { ChargeRequest, ChargeResult, NotificationProvider, NotificationRequest, OutboundCallOptions, PaymentProvider } from './provider';
import { LEDGER_TTL_SECONDS } from '../payment-ledger';

export const SIMULATED_RETRY_AFTER_MS = 1_000;

/** Where the simulated providers read their faults: CachedFaults, or NO_FAULTS when FAULTS_ENABLED=false. */
export interface FaultSource {
  get(queue: QueueName): FaultSettings;
}

/** Applies the queue's injected faults to one call; resolves when the call "succeeds". */
export async function simulateCall(faults: FaultSettings, signal?: AbortSignal, random: () => number = Math.random): Promise<void> {
  if (faults.latencyMs > 0) await sleep(faults.latencyMs, undefined, { signal });
  if (random() < faults.rateLimitRate) throw new RateLimitedError(SIMULATED_RETRY_AFTER_MS, 'simulated provider: 429 Too Many Requests');
  if (random() < faults.timeoutRate) {
    // Hang like an unresponsive upstream until the attempt's signal aborts it (without one: for good, as a real
    // upstream without a client timeout would).
    await new Promise((_, reject) =>
      signal?.addEventListener('abort', () => reject(signal.reason instanceof Error ? signal.reason : new Error('aborted')), { once: true }),
    );
  }
  if (random() < faults.failureRate) throw new ProviderError('simulated provider: 503 Service Unavailable', 503);
  signal?.throwIfAborted();
}

/** The provider's record of one applied charge: the charge and the parameters it was applied with. */
interface AppliedCharge {
  chargeId: string;
  amount: number;
  currency: string;
  account: string;
}

export class SimulatedPaymentProvider implements PaymentProvider {
  constructor(
    private readonly redis: RedisClient,
    private readonly prefix: string,
    private readonly faults: FaultSource,
    private readonly queue: QueueName = 'payments',
  ) {}

  /** The provider's own record of an applied charge (what "applied once" is checked against), one key each. */
  chargeKey(idempotencyKey: string): string {
    return `${this.prefix}:simulated-provider:charges:${idempotencyKey}`;
  }

  async charge(req: ChargeRequest, opts: OutboundCallOptions = {}): Promise<ChargeResult> {
    await simulateCall(this.faults.get(this.queue), opts.signal);
    const applied: AppliedCharge = { chargeId: `ch_${randomUUID()}`, amount: req.amount, currency: req.currency, account: req.account };
    // Like a PSP's idempotency window: kept as long as our ledger, then forgotten (bounded memory).
    const key = this.chargeKey(req.idempotencyKey);
    const created = await this.redis.set(key, JSON.stringify(applied), 'EX', LEDGER_TTL_SECONDS, 'NX');
    if (created === 'OK') return { chargeId: applied.chargeId, replayed: false };
    const existing = await this.redis.get(key);
    if (!existing) throw new ProviderError('simulated provider: idempotency record vanished, retry');
    const first = JSON.parse(existing) as AppliedCharge;
    // As real PSPs do (Stripe answers 400 on a key reused with other parameters): one key, one payment.
    if (first.amount !== req.amount || first.currency !== req.currency || first.account !== req.account) {
      throw new UnrecoverableError('simulated provider: 400 idempotency key already used with different parameters');
    }
    return { chargeId: first.chargeId, replayed: true };
  }
}

export class SimulatedNotificationProvider implements NotificationProvider {
  constructor(private readonly faults: FaultSource, private readonly queue: QueueName = 'notifications') {}

  async send(_req: NotificationRequest, opts: OutboundCallOptions = {}): Promise<{ messageId: string }> {
    await simulateCall(this.faults.get(this.queue), opts.signal);
    return { messageId: `msg_${randomUUID()}` };
  }
}
