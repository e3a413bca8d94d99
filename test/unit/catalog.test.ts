import t from 'tap';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { PRIORITIES, QUEUE_CATALOG, QUEUE_NAMES, RETENTION } from '../../services/common/queue-catalog';
import { loadProcessor } from '../../services/worker/queue-worker';

t.test('policy defaults are the operating guide table', async (t) => {
  const table = {
    payments: { concurrency: 5, attempts: 3, timeoutMs: 10_000 },
    notifications: { concurrency: 10, attempts: 2, timeoutMs: 5_000 },
    webhooks: { concurrency: 8, attempts: 5, timeoutMs: 30_000 },
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

t.test('every catalog queue has exactly one processor file exporting `processor`', async (t) => {
  for (const name of QUEUE_NAMES) {
    t.ok(existsSync(path.join(__dirname, '../../services/worker/processors', `${name}.ts`)), `${name}.ts exists`);
    t.type(loadProcessor(name), 'function', `${name} processor loads`);
  }
});
