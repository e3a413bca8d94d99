import t from 'tap';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PRIORITIES, QUEUE_CATALOG, QUEUE_NAMES, RETENTION } from '../../services/common/queue-catalog';
import { PROCESSORS } from '../../services/worker/processors';

t.test('policy defaults are the operating guide table (but webhooks concurrency)', async (t) => {
  const table = {
    payments: { concurrency: 5, attempts: 3, timeoutMs: 10_000 },
    notifications: { concurrency: 10, attempts: 2, timeoutMs: 5_000 },
    // The guide's 8 let 8 hanging customer endpoints hold every slot; 64 with 2 per host (docs/reliability.md, T4).
    webhooks: { concurrency: 64, attempts: 5, timeoutMs: 30_000 },
  };
  t.same(QUEUE_NAMES, Object.keys(table));
  for (const [name, expected] of Object.entries(table)) {
    const p = QUEUE_CATALOG[name as keyof typeof table].policy;
    t.match(p, expected, name);
    t.ok(p.backoffJitter > 0 && p.backoffJitter <= 1, `${name} backoff has jitter`);
    t.ok(p.lockDurationMs > 0 && p.stalledIntervalMs > 0, `${name} has explicit stall settings`);
  }
  t.same(PRIORITIES, { critical: 1, high: 3, normal: 5, low: 7, background: 10 });
  t.equal(RETENTION.completed.age, 3600);
  t.ok(RETENTION.completed.count > 0, 'completed retention bounded by count');
  t.equal(RETENTION.failed.age, 7 * 24 * 3600, 'failed jobs kept 7 days by default (FAILED_RETENTION_S)');
  t.ok(RETENTION.failed.count > 0, 'failed retention bounded by count');
});

t.test('every catalog queue has its processor file, registered in the typed map', async (t) => {
  t.same(Object.keys(PROCESSORS).sort(), [...QUEUE_NAMES].sort(), 'one processor per catalog queue, no extra');
  for (const name of QUEUE_NAMES) {
    t.ok(existsSync(path.join(__dirname, '../../services/worker/processors', `${name}.ts`)), `${name}.ts exists`);
    t.type(PROCESSORS[name], 'function', `${name} processor registered`);
  }
});

t.test('payload schemas are plain JSON Schema that any validator accepts', async (t) => {
  // Fastify compiles them with ajv; the load tests and the bench validate their generated bodies with them too.
  for (const name of QUEUE_NAMES) {
    const schema = JSON.parse(JSON.stringify(QUEUE_CATALOG[name].payloadSchema)) as { type: string; additionalProperties: boolean };
    t.equal(schema.type, 'object', `${name} payload is an object`);
    t.equal(schema.additionalProperties, false, `${name} rejects unknown fields`);
  }
});
