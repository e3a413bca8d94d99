/** Worker memory limits: soft → warned and counted once per crossing; hard → drain active jobs, exit 0 for a restart. */
import t from 'tap';
import { Counter, Registry } from 'prom-client';
import { startMemoryGuard } from '../../services/worker/memory-guard';
import { startPipeline } from '../helpers/pipeline';
import { waitFor } from '../helpers/wait';

t.test('guard: soft once per crossing, hard once', async (t) => {
  const registry = new Registry();
  const events = new Counter({ name: 'e', help: 'e', labelNames: ['level'] as const, registers: [registry] });
  let rss = 100;
  const soft: number[] = [];
  const hard: number[] = [];
  const stop = startMemoryGuard({ softLimitBytes: 200, hardLimitBytes: 400, intervalMs: 5, rss: () => rss, events, onSoft: (v) => soft.push(v), onHard: (v) => hard.push(v) });
  t.teardown(stop);
  const tick = () => new Promise((r) => setTimeout(r, 20));
  await tick();
  t.same([soft.length, hard.length], [0, 0], 'below both limits: nothing');
  rss = 250;
  await tick();
  await tick();
  t.same(soft, [250], 'soft crossed: warned once, not on every sample');
  rss = 150;
  await tick();
  rss = 300;
  await tick();
  t.equal(soft.length, 2, 'a new crossing warns again');
  rss = 500;
  await tick();
  await tick();
  t.same(hard, [500], 'hard limit fires once');
  const values = (await events.get()).values;
  t.equal(values.find((v) => v.labels.level === 'soft')?.value, 2);
  t.equal(values.find((v) => v.labels.level === 'hard')?.value, 1);
});

t.test('a worker over its hard limit finishes its active jobs and exits 0', async (t) => {
  const p = await startPipeline(t);
  await p.setFaults('payments', { latencyMs: 2500 });
  const id = await p.enqueue('payments', { data: { amount: 1, currency: 'EUR', account: 'a' } });
  // Hard limit of 1 byte: exceeded at the first sample (every 5 s).
  const worker = await p.startWorker({ WORKER_QUEUES: 'payments', WORKER_MEMORY_SOFT_LIMIT_BYTES: '1', WORKER_MEMORY_HARD_LIMIT_BYTES: '2' });
  await waitFor(async () => (await p.app.queues.payments.getJobCounts('active')).active === 1, { what: 'active job' });
  const code = await worker.exited;
  t.equal(code, 0, 'exit 0 so the supervisor restarts it');
  t.ok(worker.logs.some((l) => /above hard limit/.test(String(l.msg))), 'logged why');
  t.equal((await p.job('payments', id)).state, 'completed', 'the active job finished before exit');
});
