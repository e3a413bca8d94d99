/**
 * An idempotent replay whose job is gone from Redis (found by the fault campaign, docs/reliability.md): the
 * Idempotency-Key record survived a failover that lost the job, and the replay answered 202 for a job that no longer
 * existed, so the payment was never charged. services/api/enqueue.ts now checks the job on every replay and, when it
 * is in no state, asks the payments ledger whether it ran: a lost job is added again under its id and charged once; a
 * job that completed and was removed by retention is not added again.
 *
 * "Lost" is made faithfully: every key of the queue is put back to its state from before the add (DUMP/RESTORE, new
 * keys deleted) — the job hash, the prioritized set, the priority counter, the events stream — while the intent's
 * record, written on the same node but outside the queue's keys, stays: what a replica promoted before it received
 * the add holds, when the record reached it (or was written there again).
 */
import t, { type Test } from 'tap';
import type { Queue } from 'bullmq';
import type { RedisClient } from '../../services/common/redis';
import { ledgerEntryKey, ledgerKeyFor } from '../../services/common/ledger-keys';
import { startPipeline, type Pipeline } from '../helpers/pipeline';
import { captureLogs } from '../helpers/log-capture';
import { parseMetrics, valueOf } from '../helpers/http';
import { SHARED_REDIS_URL } from '../helpers/redis';
import { ledgerEntries, providerCharges } from '../helpers/charges';
import { notification, payment, redisClient } from './lib';
import { RETENTION } from '../../services/common/queue-catalog';

interface Snapshot {
  pattern: string;
  keys: Map<string, { dump: Buffer; pttl: number }>;
}

/** Every key of the queue (`<prefix>:<queue>:*`) with its value and TTL. */
async function snapshotQueue(redis: RedisClient, queue: Queue): Promise<Snapshot> {
  const pattern = `${queue.toKey('')}*`;
  const keys = new Map<string, { dump: Buffer; pttl: number }>();
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of found) {
      const dump = await redis.dumpBuffer(key);
      if (dump) keys.set(key, { dump, pttl: await redis.pttl(key) });
    }
  } while (cursor !== '0');
  return { pattern, keys };
}

/** Puts the queue's keys back to the snapshot: the writes made since never happened. Returns the keys deleted. */
async function restoreQueue(redis: RedisClient, snapshot: Snapshot): Promise<string[]> {
  const deleted: string[] = [];
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', snapshot.pattern, 'COUNT', 1000);
    cursor = next;
    for (const key of found) {
      if (snapshot.keys.has(key)) continue;
      await redis.del(key);
      deleted.push(key);
    }
  } while (cursor !== '0');
  for (const [key, { dump, pttl }] of snapshot.keys) await redis.restore(key, pttl > 0 ? pttl : 0, dump, 'REPLACE');
  return deleted;
}

const metric = async (p: Pipeline, name: string, queue: string) => valueOf(parseMetrics(await p.registry.metrics()), name, { queue });

async function post(p: Pipeline, queue: 'payments' | 'notifications', body: object, key: string) {
  const res = await p.app.inject({ method: 'POST', url: `/v1/queues/${queue}/jobs`, headers: { ...p.auth, 'idempotency-key': key }, payload: body });
  return { status: res.statusCode, body: res.json(), replayed: res.headers['idempotent-replayed'] };
}

async function setUp(t: Test) {
  const logs = captureLogs();
  const p = await startPipeline(t, {}, { logger: logs.logger });
  return { p, logs, redis: redisClient(t, SHARED_REDIS_URL) };
}

t.test('a payment lost from Redis before it ran: the replay adds it again under its id, and it is charged once', async (t) => {
  const { p, logs, redis } = await setUp(t);
  const queue = p.app.queues.payments;
  const body = payment(1, 'lost');
  const key = 'pay-lost-1';

  const before = await snapshotQueue(redis, queue);
  const first = await post(p, 'payments', body, key);
  t.equal(first.status, 202, 'accepted');
  const id = String(first.body.id);
  const stored = await queue.getJob(id);
  t.ok(stored, 'its job is in Redis');
  const deleted = await restoreQueue(redis, before);
  t.ok(deleted.includes(queue.toKey(id)), `the failover lost the add: ${deleted.length} new keys gone, the job hash among them`);
  t.equal(await queue.getJobState(id), 'unknown', 'the job is in no state');

  const replay = await post(p, 'payments', body, key);
  t.equal(replay.status, 202, 'the replay with the same key and body → 202');
  t.same(replay.body, { id, queue: 'payments', state: 'prioritized' }, 'answered as the first answer was: same id, a fresh state');
  t.equal(replay.replayed, 'true', 'Idempotent-Replayed: true');
  const readded = await queue.getJob(id);
  t.ok(readded, 'the job exists again under its id');
  t.same(readded!.data.payload, stored!.data.payload, 'with the data bound to the key');
  t.match(readded!.data.meta, { idempotencyKey: key, clientId: stored!.data.meta.clientId });
  t.equal(await metric(p, 'bullmq_jobs_readded_total', 'payments'), 1, 'bullmq_jobs_readded_total{queue="payments"} 1');
  t.equal(await metric(p, 'bullmq_jobs_enqueued_total', 'payments'), 1, 'bullmq_jobs_enqueued_total still 1: one accepted intent');
  t.ok(logs.lines.some((l) => l.msg === 'idempotent replay: the job was lost from Redis before it ran; added again under its id' && l.jobId === id && l.readded === true), 'logged');

  const again = await post(p, 'payments', body, key);
  t.same([again.status, again.body.id, again.body.state], [202, id, 'prioritized'], 'a further replay finds the job: nothing added');
  t.equal(await metric(p, 'bullmq_jobs_readded_total', 'payments'), 1, 'still 1 re-add');

  await p.startWorker({ WORKER_QUEUES: 'payments' });
  const done = await p.waitForState('payments', id, 'completed');
  t.equal(done.attemptsMade, 1, 'processed once');
  const charges = await providerCharges(redis, p.prefix);
  t.equal(Object.keys(charges).length, 1, 'one charge');
  t.equal(done.returnValue.chargeId, Object.values(charges)[0], 'the job completed with that charge');
  t.comment(`lost job ${id}: ${deleted.length} keys restored away, replay → 202 ${replay.body.state}, re-added, completed with 1 charge`);
});

t.test('a payment that completed (charged) and was removed by retention is not added again', async (t) => {
  const { p, redis } = await setUp(t);
  const queue = p.app.queues.payments;
  await p.startWorker({ WORKER_QUEUES: 'payments' });
  const body = payment(2, 'cleaned');
  const key = 'pay-cleaned-2';
  const first = await post(p, 'payments', body, key);
  const id = String(first.body.id);
  await p.waitForState('payments', id, 'completed');
  // What removeOnComplete does once the job is past its age or count (common/job-options.ts).
  t.same(await queue.clean(0, 100, 'completed'), [id], 'retention removed the completed job');

  const replay = await post(p, 'payments', body, key);
  t.same([replay.status, replay.body.id, replay.replayed], [202, id, 'true'], 'the replay → 202, same id');
  t.equal(replay.body.state, 'unknown', 'state unknown: the job is gone, as before this fix');
  t.equal(await queue.getJob(id), undefined, 'not added again');
  t.equal(await metric(p, 'bullmq_jobs_readded_total', 'payments'), 0, 'no re-add counted');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(Object.keys(await providerCharges(redis, p.prefix)).length, 1, 'still one charge');
});

t.test('a payment charged whose job and ledger entry were both lost: added again, the provider keeps it at one charge', async (t) => {
  const { p, redis } = await setUp(t);
  const queue = p.app.queues.payments;
  await p.startWorker({ WORKER_QUEUES: 'payments' });
  const body = payment(3, 'charged');
  const key = 'pay-charged-3';
  const first = await post(p, 'payments', body, key);
  const id = String(first.body.id);
  const done = await p.waitForState('payments', id, 'completed');
  const clientId = (await queue.getJob(id))!.data.meta.clientId as string;
  // The failover lost the job and the ledger write; the provider's record of the charge is outside our Redis.
  await queue.clean(0, 100, 'completed');
  t.equal(await redis.del(ledgerEntryKey(p.prefix, ledgerKeyFor({}, { clientId, idempotencyKey: key }))), 1, 'ledger entry lost');

  const replay = await post(p, 'payments', body, key);
  t.same([replay.status, replay.body.id, replay.body.state], [202, id, 'prioritized'], 'nothing says it ran: added again');
  const rerun = await p.waitForState('payments', id, 'completed');
  t.same(rerun.returnValue, { chargeId: done.returnValue.chargeId, replayed: true }, 'the provider answered with the first charge');
  const charges = await providerCharges(redis, p.prefix);
  t.equal(Object.keys(charges).length, 1, 'one charge in all');
  t.equal(Object.keys(await ledgerEntries(redis, p.prefix)).length, 1, 'the ledger has it again');
});

t.test('a keyed notification lost from Redis: within the completed retention the replay adds it again (at-least-once); past it, nothing tells and it is not (logged)', async (t) => {
  const { p, logs, redis } = await setUp(t);
  const queue = p.app.queues.notifications;
  const body = notification(4);
  const key = 'notify-lost-4';
  const before = await snapshotQueue(redis, queue);
  const first = await post(p, 'notifications', body, key);
  const id = String(first.body.id);
  await restoreQueue(redis, before);

  const replay = await post(p, 'notifications', body, key);
  t.same([replay.status, replay.body.id], [202, id], 'the replay → 202 with the first id');
  t.ok((await queue.getJob(id))?.data, 'added again: had it finished, retention would still keep it');
  t.same((await queue.getJob(id))!.data.payload, (body as { data: unknown }).data, 'with the data the key is bound to');
  t.equal(await metric(p, 'bullmq_jobs_readded_total', 'notifications'), 1, 'counted as re-added');
  await p.startWorker({ WORKER_QUEUES: 'notifications' });
  await p.waitForState('notifications', id, 'completed');

  // An older intent: its record has lived longer than a completed job is kept, so a missing job may have run.
  const oldBody = notification(5);
  const oldKey = 'notify-old-5';
  const beforeOld = await snapshotQueue(redis, queue);
  const oldFirst = await post(p, 'notifications', oldBody, oldKey);
  const oldId = String(oldFirst.body.id);
  await restoreQueue(redis, beforeOld);
  const recordKeys = await redis.keys(`*idempotency:notifications:*`);
  let aged = 0;
  for (const k of recordKeys) {
    const record = JSON.parse((await redis.get(k)) ?? '{}') as { jobId?: string };
    if (record.jobId !== oldId) continue;
    // age = IDEMPOTENCY_TTL_S − remaining: leave less than that minus the completed retention
    await redis.pexpire(k, (86_400 - RETENTION.completed.age - 60) * 1000);
    aged++;
  }
  t.equal(aged, 1, 'the older intent\'s record found and aged');
  const oldReplay = await post(p, 'notifications', oldBody, oldKey);
  t.same([oldReplay.status, oldReplay.body.id, oldReplay.body.state], [202, oldId, 'unknown'], 'the replay → 202, state unknown');
  t.equal(await queue.getJob(oldId), undefined, 'not added again: it may have run and been removed');
  t.equal(await metric(p, 'bullmq_jobs_readded_total', 'notifications'), 1, 'not counted');
  t.ok(logs.lines.some((l) => l.level === 40 && l.jobId === oldId && /nothing tells whether it ran/.test(String(l.msg))), 'a warning names the job');
});
