/**
 * The campaign's checker. It trusts nothing the code under test says about itself: it reads the client's own
 * history (every request, every answer), the simulated provider's charge records, the receiver's deliveries and
 * the final job states read from Redis after the drain, and decides each invariant from those. A pure function
 * of its input, so test/chaos/checker.test.ts can feed it a history with a double charge or a lost job.
 */
import type { Attempt, Intent } from './load';
import type { Delivery } from './receiver';
import { LANE_BUSY, type FaultRecord } from './faults';
import type { FaultKind } from './schedule';

export interface FinalJob {
  state: string;
  attemptsMade: number;
  /** ms since the load started */
  finishedMs?: number;
  /** What the payment job returned (its charge id), when completed. */
  chargeId?: string;
  failedReason?: string;
}

export interface Charge {
  /** The provider's idempotency key (the worker's ledger key: "idem:<client>:<Idempotency-Key>" or "job:<id>"). */
  key: string;
  chargeId: string;
  amount: number;
  currency: string;
  account: string;
}

export interface WorkerCounters {
  completed: number;
  failed: number;
  retries: number;
}

export interface CheckInput {
  intents: Intent[];
  history: Attempt[];
  /** By job id, for every job id a 202 named. */
  jobs: Record<string, FinalJob | undefined>;
  charges: Charge[];
  deliveries: Delivery[];
  /** Summed over every worker process's lifetime (last scrape before each kill, and at the end). */
  counters: WorkerCounters;
  /** Jobs that were active when a worker was killed: counts may differ by at most this many. */
  countTolerance: number;
  /**
   * Every finished job in Redis, accepted or not (a 503 can come after the add applied, and a client that gives
   * up never learns the job's id): what the worker counters count. Default: the accepted jobs' final states.
   */
  allFinished?: { completed: number; failed: number; retries: number };
  faults: FaultRecord[];
  /** ms since the load started when the load ended (recovery not seen by then is measured to it). */
  loadEndMs: number;
  /** Epoch ms of the load's start (deliveries carry epoch times). */
  loadStartMs: number;
  /** API or worker processes that exited without a fault killing them (atMs since the load started). */
  crashes?: { name: string; atMs: number; exit: string; lastOutput: string }[];
}

export interface Invariant {
  name: string;
  ok: boolean;
  detail: string;
}

export interface CheckResult {
  lost: number;
  doubleCharged: number;
  orphanCharges: number;
  duplicateDeliveries: number;
  requests: { sent: number; accepted: number; refused: number; attempts: number; refusedReasons: Record<string, number>; answers: Record<string, number> };
  recoveryS: Partial<Record<FaultKind, { max: number; p95: number; samples: number[] }>>;
  invariants: Invariant[];
  /** The first job (by send time) that broke an invariant, and the faults within 15 s of it. */
  firstFailure?: { intent: string; jobId?: string; queue: string; why: string; sentAtS: number; faultsAround: string[] };
}

const FINAL = new Set(['completed', 'failed']);
/** 503 is the API's documented answer when Redis is unavailable, frozen, full, or the API is closing. */
const DOCUMENTED_5XX = new Set([503]);

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** The client's Idempotency-Key in a ledger key "idem:<client id>:<key>" (client ids hold no colon). */
export function intentOfChargeKey(key: string): string | undefined {
  if (!key.startsWith('idem:')) return undefined;
  const rest = key.slice(5);
  const colon = rest.indexOf(':');
  return colon >= 0 ? rest.slice(colon + 1) : undefined;
}

export function check(input: CheckInput): CheckResult {
  const failures: { intent: Intent; why: string }[] = [];
  const fail = (intent: Intent, why: string) => failures.push({ intent, why });
  const accepted = input.intents.filter((i) => i.jobId !== undefined);
  const byIntent = new Map(input.intents.map((i) => [i.intent, i]));

  // 1. Every accepted job reached a final state.
  let lost = 0;
  for (const it of accepted) {
    const job = input.jobs[it.jobId!];
    if (!job || !FINAL.has(job.state)) {
      lost++;
      fail(it, job ? `job ${it.jobId} still ${job.state} after the drain` : `job ${it.jobId} missing from Redis`);
    }
  }

  // 2. Payments: a completed intent charged exactly once, with its amount and account; a failed one never;
  //    no charge without an accepted intent. Accounts are unique per intent, so a charge under another key
  //    for the same intent (a second charge the idempotency key would not catch) shows up by account.
  const chargesByAccount = new Map<string, Charge[]>();
  for (const c of input.charges) chargesByAccount.set(c.account, [...(chargesByAccount.get(c.account) ?? []), c]);
  let doubleCharged = 0;
  let wrongCharge = 0;
  let failedButCharged = 0;
  let uncharged = 0;
  for (const it of accepted.filter((i) => i.queue === 'payments')) {
    const data = (it.body as { data: { amount: number; account: string; currency: string } }).data;
    const charges = chargesByAccount.get(data.account) ?? [];
    const job = input.jobs[it.jobId!];
    if (charges.length > 1) {
      doubleCharged++;
      fail(it, `charged ${charges.length} times: ${charges.map((c) => c.chargeId).join(', ')}`);
    }
    for (const c of charges) {
      if (c.amount !== data.amount || c.currency !== data.currency || intentOfChargeKey(c.key) !== it.intent) {
        wrongCharge++;
        fail(it, `charge ${c.chargeId} has amount ${c.amount} ${c.currency}, key ${c.key}; the intent sent ${data.amount} ${data.currency}`);
      }
    }
    if (job?.state === 'completed') {
      if (charges.length === 0) {
        uncharged++;
        fail(it, `job ${it.jobId} completed but the provider holds no charge`);
      } else if (job.chargeId && !charges.some((c) => c.chargeId === job.chargeId)) {
        wrongCharge++;
        fail(it, `job ${it.jobId} returned charge ${job.chargeId}, the provider holds ${charges.map((c) => c.chargeId).join(', ')}`);
      }
    }
    if (job?.state === 'failed' && charges.length > 0) {
      failedButCharged++;
      fail(it, `job ${it.jobId} failed (${job.failedReason ?? '?'}) but was charged ${charges[0]!.chargeId}`);
    }
  }
  const acceptedPaymentAccounts = new Set(
    accepted.filter((i) => i.queue === 'payments').map((i) => (i.body as { data: { account: string } }).data.account),
  );
  const orphans = input.charges.filter((c) => !acceptedPaymentAccounts.has(c.account));
  for (const o of orphans) {
    const it = byIntent.get(intentOfChargeKey(o.key) ?? '');
    if (it) fail(it, `charge ${o.chargeId} exists but the client never got a 202 (${it.refused ?? 'no answer'})`);
  }

  // 3. Webhooks: every accepted one delivered at least once; duplicates counted (at-least-once is the contract).
  const deliveriesByIntent = new Map<string, number>();
  for (const d of input.deliveries) deliveriesByIntent.set(d.intent, (deliveriesByIntent.get(d.intent) ?? 0) + 1);
  let undelivered = 0;
  let duplicateDeliveries = 0;
  for (const it of accepted.filter((i) => i.queue === 'webhooks')) {
    const n = deliveriesByIntent.get(it.intent) ?? 0;
    const job = input.jobs[it.jobId!];
    if (n === 0 && job?.state !== 'failed') {
      undelivered++;
      fail(it, `webhook job ${it.jobId} ${job?.state ?? 'missing'} but never delivered`);
    }
    if (n > 1) duplicateDeliveries += n - 1;
  }
  const failedWebhooks = accepted.filter((i) => i.queue === 'webhooks' && input.jobs[i.jobId!]?.state === 'failed');
  const strangerDeliveries = input.deliveries.filter((d) => !byIntent.get(d.intent)?.jobId).length;

  // 4. Worker counters against the final states.
  const finalJobs = accepted.map((i) => input.jobs[i.jobId!]).filter((j): j is FinalJob => !!j);
  const completed = input.allFinished?.completed ?? finalJobs.filter((j) => j.state === 'completed').length;
  const failedJobs = input.allFinished?.failed ?? finalJobs.filter((j) => j.state === 'failed').length;
  const retries = input.allFinished?.retries ?? finalJobs.reduce((s, j) => s + Math.max(0, j.attemptsMade - 1), 0);
  const tol = input.countTolerance;
  const within = (a: number, b: number) => Math.abs(a - b) <= tol;

  // 5. Answers: no 5xx but the documented 503.
  const answers: Record<string, number> = {};
  for (const a of input.history) {
    const k = a.status === 0 ? `no answer (${a.error ?? '?'})` : `${a.status}${a.code ? ` ${a.code}` : ''}`;
    answers[k] = (answers[k] ?? 0) + 1;
  }
  const bad5xx = input.history.filter((a) => a.status >= 500 && !DOCUMENTED_5XX.has(a.status));
  for (const a of bad5xx.slice(0, 1)) {
    const it = byIntent.get(a.intent);
    if (it) fail(it, `answered ${a.status} ${a.code ?? ''}`);
  }
  const refusedReasons: Record<string, number> = {};
  for (const it of input.intents.filter((i) => i.refused)) refusedReasons[it.refused!] = (refusedReasons[it.refused!] ?? 0) + 1;
  const refused = Object.values(refusedReasons).reduce((s, n) => s + n, 0);

  // 6. Recovery after each fault, from its heal to the first sign the path it broke works again: a provider
  //    fault → the first job of that queue completed; a hanging target → the first delivery; a process or
  //    Redis fault → the first 202 and the first job completed (both).
  const recoveryS: CheckResult['recoveryS'] = {};
  const answeredAt = input.history.filter((a) => a.status === 202).map((a) => a.tMs + a.ms).sort((a, b) => a - b);
  const completedAt = (queue?: string) =>
    accepted
      .filter((i) => !queue || i.queue === queue)
      .map((i) => input.jobs[i.jobId!])
      .filter((j) => j?.state === 'completed' && j.finishedMs !== undefined)
      .map((j) => j!.finishedMs!)
      .sort((a, b) => a - b);
  const anyCompleted = completedAt();
  const deliveredAt = input.deliveries.map((d) => d.atMs - input.loadStartMs).sort((a, b) => a - b);
  const firstAfter = (xs: number[], t: number) => xs.find((x) => x >= t) ?? Math.max(t, input.loadEndMs);
  for (const f of input.faults) {
    if (f.healedMs === undefined || f.skipped) continue;
    const h = f.healedMs;
    const back =
      f.kind === 'provider_outage' || f.kind === 'provider_429' ? firstAfter(completedAt(f.target), h)
      : f.kind === 'webhook_hang' ? firstAfter(deliveredAt, h)
      : Math.max(firstAfter(answeredAt, h), firstAfter(anyCompleted, h));
    const entry = (recoveryS[f.kind] ??= { max: 0, p95: 0, samples: [] });
    entry.samples.push(Math.round(Math.max(0, back - h)) / 1_000);
  }
  for (const e of Object.values(recoveryS)) {
    e.max = Math.max(...e.samples);
    e.p95 = percentile(e.samples, 95);
  }
  const faultErrors = input.faults.filter((f) => f.error);

  const invariants: Invariant[] = [
    // A campaign in which the stack accepted nothing proves nothing about the rest: availability is checked too.
    {
      name: 'the stack accepted most requests (≥ 50 %)',
      ok: input.intents.length > 0 && accepted.length >= 0.5 * input.intents.length,
      detail: `${accepted.length} of ${input.intents.length} intents accepted`,
    },
    { name: 'every accepted job reached a final state', ok: lost === 0, detail: `${accepted.length} accepted, ${lost} not final (lost)` },
    {
      name: 'each accepted payment charged exactly once (completed) or never (failed), with its amount and account',
      ok: doubleCharged === 0 && wrongCharge === 0 && failedButCharged === 0 && uncharged === 0,
      detail: `${input.charges.length} charges; double-charged ${doubleCharged}, wrong amount/account/key ${wrongCharge}, failed but charged ${failedButCharged}, completed but uncharged ${uncharged}`,
    },
    { name: 'no charge without an accepted intent', ok: orphans.length === 0, detail: `${orphans.length} orphan charges` },
    {
      name: 'every accepted webhook delivered at least once',
      ok: undelivered === 0 && strangerDeliveries === 0,
      detail: `${input.deliveries.length} deliveries, ${undelivered} accepted and never delivered, ${failedWebhooks.length} failed for good, ${duplicateDeliveries} duplicates, ${strangerDeliveries} for no accepted intent`,
    },
    {
      name: 'worker counters agree with the final states',
      ok: within(input.counters.completed, completed) && within(input.counters.failed, failedJobs) && within(input.counters.retries, retries),
      detail: `completed ${input.counters.completed} counted / ${completed} in Redis, failed ${input.counters.failed} / ${failedJobs}, retries ${input.counters.retries} / ${retries} (attemptsMade − 1); tolerance ${tol} (jobs active at worker kills)`,
    },
    { name: 'no 5xx but the documented 503', ok: bad5xx.length === 0, detail: bad5xx.length ? `${bad5xx.length} answers: ${[...new Set(bad5xx.map((a) => `${a.status} ${a.code ?? ''}`))].join(', ')}` : 'none' },
    {
      name: 'no API or worker exited on its own',
      ok: (input.crashes ?? []).length === 0,
      detail: (input.crashes ?? []).length
        ? (input.crashes ?? []).map((c) => `${c.name} exited ${c.exit} at ${(c.atMs / 1000).toFixed(1)} s: ${c.lastOutput.split('\n').at(-1)?.slice(0, 300)}`).join('; ')
        : 'none',
    },
    { name: 'every scheduled fault was applied', ok: faultErrors.length === 0,
      detail: `${input.faults.filter((f) => !f.skipped && !f.error).length} applied, ${skippedDetail(input.faults)}` +
        (faultErrors.length ? `; failed: ${faultErrors.map((f) => `${f.kind}: ${f.error?.split('\n')[0]}`).join('; ')}` : ''),
    },
  ];

  let firstFailure: CheckResult['firstFailure'];
  const first = failures.sort((a, b) => a.intent.sentAtMs - b.intent.sentAtMs)[0];
  if (first) {
    const t = first.intent.sentAtMs;
    firstFailure = {
      intent: first.intent.intent,
      jobId: first.intent.jobId,
      queue: first.intent.queue,
      why: first.why,
      sentAtS: Math.round(t / 100) / 10,
      faultsAround: input.faults
        .filter((f) => f.startedMs <= t + 15_000 && (f.healedMs ?? f.startedMs) >= t - 15_000)
        .map((f) => `${f.kind} ${f.target} ${(f.startedMs / 1000).toFixed(1)}–${((f.healedMs ?? f.startedMs) / 1000).toFixed(1)} s`),
    };
  }
  return {
    lost,
    doubleCharged,
    orphanCharges: orphans.length,
    duplicateDeliveries,
    requests: { sent: input.intents.length, accepted: accepted.length, refused, attempts: input.history.length, refusedReasons, answers },
    recoveryS,
    invariants,
    firstFailure,
  };
}

/** "3 skipped (lane busy past the load ×2; redis_failover: payments master :7001 not failed over: …)". */
function skippedDetail(faults: readonly FaultRecord[]): string {
  const skipped = faults.filter((f) => f.skipped);
  if (!skipped.length) return '0 skipped';
  const reasons = new Map<string, number>();
  for (const f of skipped) {
    const reason = f.skipReason === undefined || f.skipReason === LANE_BUSY ? LANE_BUSY : `${f.kind}: ${f.skipReason.split('\n')[0]}`;
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  return `${skipped.length} skipped (${[...reasons].map(([r, n]) => (n > 1 ? `${r} ×${n}` : r)).join('; ')})`;
}
