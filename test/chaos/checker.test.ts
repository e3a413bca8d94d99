/**
 * The checker must fail on the histories it exists to catch: a double charge, a lost job, an orphan charge, a
 * webhook never delivered, a 500. Each case starts from a clean synthetic history that passes.
 */
import t from 'tap';
import { check, type CheckInput, type Charge } from '../../scripts/chaos/checker';
import { intentBody, type Intent } from '../../scripts/chaos/load';

const RECEIVER = 'http://127.0.0.1:9/hooks';

function cleanHistory(): CheckInput {
  const intents: Intent[] = [];
  const input: CheckInput = {
    intents, history: [], jobs: {}, charges: [], deliveries: [], counters: { completed: 0, failed: 0, retries: 0 },
    countTolerance: 0, faults: [{ kind: 'worker_kill', target: '0', plannedAtS: 1, startedMs: 1_000, healedMs: 2_000 }], loadEndMs: 10_000, loadStartMs: 1_700_000_000_000,
  };
  (['payments', 'notifications', 'webhooks'] as const).forEach((queue, k) => {
    for (let n = 0; n < 3; n++) {
      const intent = `c1-${k * 3 + n}`;
      const jobId = `job-${intent}`;
      intents.push({ intent, queue, body: intentBody(queue, intent, n, RECEIVER), sentAtMs: 100 * n, jobId, acceptedAtMs: 100 * n + 5 });
      input.history.push({ tMs: 100 * n, intent, queue, attempt: 1, api: 0, status: 202, jobId, ms: 5 });
      input.jobs[jobId] = { state: 'completed', attemptsMade: 1, finishedMs: 3_000 + n, chargeId: queue === 'payments' ? `ch_${intent}` : undefined };
      input.counters.completed++;
      if (queue === 'payments') {
        const data = (intentBody(queue, intent, n, RECEIVER) as { data: { amount: number; account: string } }).data;
        input.charges.push({ key: `idem:k1:${intent}`, chargeId: `ch_${intent}`, amount: data.amount, currency: 'EUR', account: data.account });
      }
      if (queue === 'webhooks') input.deliveries.push({ intent, deliveryId: jobId, atMs: input.loadStartMs + 3_000 });
    }
  });
  // A replayed 202 after the fault's heal (2 s): with the first completion at 3 s, recovery is 1 s.
  input.history.push({ tMs: 2_400, intent: 'c1-3', queue: 'notifications', attempt: 2, api: 1, status: 202, jobId: 'job-c1-3', replayed: true, ms: 100 });
  return input;
}

const failed = (r: ReturnType<typeof check>) => r.invariants.filter((i) => !i.ok).map((i) => i.name);

t.test('a clean history passes, with recovery measured from the heal', async (t) => {
  const r = check(cleanHistory());
  t.same(failed(r), [], 'every invariant holds');
  t.same([r.lost, r.doubleCharged, r.orphanCharges, r.duplicateDeliveries], [0, 0, 0, 0]);
  t.same(r.requests.sent, 9);
  t.equal(r.recoveryS.worker_kill?.max, 1, 'first job completed 1 s after the restart');
  t.equal(r.firstFailure, undefined);
});

t.test('a double charge fails, naming the job and the fault around it', async (t) => {
  const input = cleanHistory();
  const first = input.charges[0]!;
  // A second charge for the same intent under another provider key (e.g. a job re-enqueued without its key).
  input.charges.push({ ...first, key: 'job:other', chargeId: 'ch_second' } satisfies Charge);
  const r = check(input);
  t.equal(r.doubleCharged, 1);
  t.match(failed(r), [/charged exactly once/]);
  t.equal(r.firstFailure?.jobId, 'job-c1-0');
  t.match(r.firstFailure?.why, /charged 2 times/);
  t.same(r.firstFailure?.faultsAround, ['worker_kill 0 1.0–2.0 s']);
});

t.test('a lost job fails: missing from Redis, or never final', async (t) => {
  const input = cleanHistory();
  delete input.jobs['job-c1-3'];
  input.jobs['job-c1-4'] = { state: 'active', attemptsMade: 0 };
  const r = check(input);
  t.equal(r.lost, 2);
  t.ok(failed(r).includes('every accepted job reached a final state'));
  t.match(r.firstFailure?.why, /missing from Redis/);
});

t.test('an orphan charge, a wrong amount, a failed-but-charged payment and an undelivered webhook each fail', async (t) => {
  const orphan = cleanHistory();
  orphan.charges.push({ key: 'idem:k1:never-sent', chargeId: 'ch_x', amount: 1, currency: 'EUR', account: 'acct-never-sent' });
  t.equal(check(orphan).orphanCharges, 1);
  t.ok(failed(check(orphan)).includes('no charge without an accepted intent'));

  const wrong = cleanHistory();
  wrong.charges[1]!.amount += 1;
  t.match(failed(check(wrong)), [/charged exactly once/]);

  const failedCharged = cleanHistory();
  failedCharged.jobs['job-c1-2'] = { state: 'failed', attemptsMade: 3, failedReason: 'timeout' };
  failedCharged.counters = { completed: 8, failed: 1, retries: 2 };
  t.match(check(failedCharged).firstFailure?.why, /failed \(timeout\) but was charged/);

  const undelivered = cleanHistory();
  undelivered.deliveries.pop();
  t.ok(failed(check(undelivered)).includes('every accepted webhook delivered at least once'));
  const dup = cleanHistory();
  dup.deliveries.push({ ...dup.deliveries[0]! });
  t.same(failed(check(dup)), [], 'a duplicate delivery is allowed (at least once)…');
  t.equal(check(dup).duplicateDeliveries, 1, '…and counted');
});

t.test('a 500 fails; a 503 does not; counters off by more than the tolerance fail', async (t) => {
  const five = cleanHistory();
  five.history.push({ tMs: 50, intent: 'c1-0', queue: 'payments', attempt: 0, api: 1, status: 503, code: 'REDIS_UNAVAILABLE', ms: 400 });
  t.same(failed(check(five)), []);
  five.history.push({ tMs: 60, intent: 'c1-1', queue: 'payments', attempt: 0, api: 1, status: 500, code: 'INTERNAL', ms: 3 });
  t.same(failed(check(five)), ['no 5xx but the documented 503']);

  const counts = cleanHistory();
  counts.counters.completed -= 2;
  counts.countTolerance = 1;
  t.same(failed(check(counts)), ['worker counters agree with the final states']);
  counts.countTolerance = 2;
  t.same(failed(check(counts)), [], 'within the jobs in flight at a kill');
});

t.test('a campaign in which nothing was accepted fails (it proves nothing)', async (t) => {
  const input = cleanHistory();
  for (const it of input.intents) {
    delete it.jobId;
    it.refused = 'gave_up';
  }
  input.history = input.history.map((a) => ({ ...a, status: 503, code: 'REDIS_UNAVAILABLE', jobId: undefined }));
  input.charges = [];
  input.deliveries = [];
  input.counters = { completed: 0, failed: 0, retries: 0 };
  const r = check(input);
  t.same(failed(r), ['the stack accepted most requests (≥ 50 %)']);
  t.same(r.requests.refusedReasons, { gave_up: 9 });
});

t.test('a skipped fault (its precondition did not hold) passes and is counted with its reason; an error fails', async (t) => {
  const input = cleanHistory();
  const why = 'payments master :7001 not failed over: timed out after 30000 ms waiting for a replica of :7001 in sync: no replica of :7001 in sync (:7004 master_link_status:down)';
  input.faults.push(
    { kind: 'redis_failover', target: 'redis', plannedAtS: 4, startedMs: 4_000, healedMs: 34_000, skipped: true, skipReason: why },
    { kind: 'redis_freeze', target: 'redis', plannedAtS: 9, startedMs: 11_000, skipped: true, skipReason: 'lane busy past the load' },
  );
  let r = check(input);
  t.same(failed(r), [], 'a skip is not a failure');
  const applied = r.invariants.find((i) => i.name === 'every scheduled fault was applied');
  t.match(applied?.detail, /1 applied, 2 skipped \(redis_failover: payments master :7001 not failed over: .*master_link_status:down\); lane busy past the load\)/);
  input.faults.push({ kind: 'redis_failover', target: 'redis', plannedAtS: 40, startedMs: 40_000, healedMs: 70_000, error: 'timed out' });
  r = check(input);
  t.same(failed(r), ['every scheduled fault was applied']);
});
