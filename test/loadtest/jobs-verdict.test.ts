/**
 * The load test judges the jobs (loadtest/verdict.ts), against a real API and worker: a healthy run passes on
 * both sides; with every payment job failing (fault injection through the admin API) a run whose HTTP answers
 * are all 202 fails, naming payments and no other queue — from the no-k6 runner and from the post-run CLI
 * (`npm run loadtest:verdict`, what follows k6).
 */
import t from 'tap';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { formatReport, runLoad } from '../../loadtest/run';
import { jobVerdicts, type JobQueueResult } from '../../loadtest/verdict';
import { loadThresholds } from '../../services/common/thresholds';
import { ADMIN_KEY, API_KEY, ROOT, baseEnv, startApi, startWorker } from '../helpers/services';
import { SHARED_REDIS_URL, deletePrefix, uniquePrefix } from '../helpers/redis';
import { call } from '../helpers/http';

t.test('job verdicts: drained, failure ratio and e2e p95 strictly below the critical thresholds', async (t) => {
  const th = loadThresholds();
  const ok: JobQueueResult = { queue: 'payments', completed: 100, failed: 0, failureRatio: 0, e2eP95Seconds: 0.2, drained: true, backlog: 0 };
  t.ok(jobVerdicts(ok, th).every((v) => v.pass), 'a healthy queue passes');
  const failing = (r: Partial<JobQueueResult>) => jobVerdicts({ ...ok, ...r }, th).filter((v) => !v.pass).map((v) => v.check);
  t.same(failing({ completed: 0, failed: 50, failureRatio: 1, e2eP95Seconds: null }), ['job failure ratio'], 'every job failed');
  t.same(failing({ completed: 0, failed: 0, failureRatio: 1, e2eP95Seconds: null }), ['job failure ratio'], 'no job finished is no pass');
  t.same(failing({ failureRatio: th.queues.payments?.job_error_ratio?.critical ?? th.defaults.job_error_ratio.critical }), ['job failure ratio'], 'at the limit fails');
  t.same(failing({ e2eP95Seconds: 1.5 }), ['job e2e p95 (s)'], 'payments e2e p95 at its critical 1.5 s fails');
  t.same(failing({ drained: false, backlog: 7 }), ['jobs drained'], 'a backlog left fails');
});

t.test('against the real API and worker', async (t) => {
  const prefix = uniquePrefix('jobs-verdict');
  t.teardown(() => deletePrefix(SHARED_REDIS_URL, prefix));
  const target = http.createServer((req, res) => req.resume().on('end', () => res.writeHead(200).end()));
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise((r) => target.close(r)));
  const webhookUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}/hooks`;
  const env = baseEnv(SHARED_REDIS_URL, prefix);
  const api = await startApi(env);
  t.teardown(() => api.stop());
  // The verdict is judged on jobs that fail for good: with the breaker on, a provider failing every call opens its
  // circuit and the payments wait for it instead (test/fault/circuit-outage.test.ts).
  const worker = await startWorker({ ...env, OUTBOUND_CIRCUIT_BREAKERS: 'false' });
  t.teardown(() => worker.stop());
  const run = () =>
    runLoad({ scenario: 'smoke', baseUrl: api.url!, apiKey: API_KEY, webhookUrl, duration: '4s', scale: 0.5, quiet: true, jobs: { baseUrl: api.url!, drainTimeoutMs: 90_000, pollMs: 250 } });

  // A first, unjudged run: a cold API and worker (first requests, first jobs) are not what the next runs measure.
  await runLoad({ scenario: 'smoke', baseUrl: api.url!, apiKey: API_KEY, webhookUrl, duration: '2s', scale: 0.3, quiet: true, jobs: { baseUrl: api.url!, drainTimeoutMs: 90_000, pollMs: 250 } });

  await t.test('a healthy run passes on the jobs side', async (t) => {
    const r = await run();
    t.ok(r.queues.every((q) => Object.keys(q.statuses ?? {}).every((s) => s === '202')), 'HTTP: every answer 202');
    t.ok(r.jobs, 'the jobs were judged');
    for (const q of r.jobs!.queues) t.ok(q.completed > 0 && q.failed === 0 && q.drained, `${q.queue}: ${q.completed} completed, none failed, drained`);
    t.ok(r.jobs!.passed, formatReport(r));
    // HTTP latency on a shared 2-core box is a benchmark figure, not asserted here; the run's verdict is both sides.
    t.equal(r.passed, r.verdicts.every((v) => v.pass) && r.jobs!.passed, 'the run passes when HTTP and jobs both hold');
  });

  await t.test('every payment job failing: HTTP all 202, the run fails naming payments', async (t) => {
    const put = await call('PUT', `${api.url}/v1/admin/faults/payments`, { failureRate: 1 }, { authorization: `Bearer ${ADMIN_KEY}` });
    t.equal(put.status, 200, 'fault injected: every payment attempt fails');
    const r = await run();
    t.ok(r.queues.every((q) => Object.keys(q.statuses ?? {}).every((s) => s === '202')), 'HTTP: every answer 202');
    t.notOk(r.passed, 'the run fails');
    t.same([...new Set(r.jobs!.verdicts.filter((v) => !v.pass).map((v) => v.queue))], ['payments'], 'payments, and only payments, fails');
    const payments = r.jobs!.queues.find((q) => q.queue === 'payments')!;
    // The worker reads fault settings through a 1 s cache (services/common/faults.ts): a payment or two at the very
    // start may still complete.
    t.ok(payments.failed > 0 && payments.failureRatio > 0.5, `payments: ${payments.failed} failed, ${payments.completed} completed`);
    t.match(formatReport(r), /JOBS FAIL: payments\n/, 'the report names payments');
  });

  await t.test('the post-run CLI (after k6): mark, load, verdict → exit 1 naming payments', async (t) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'jobs-verdict-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const markFile = path.join(dir, 'mark.json');
    const cli = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(process.execPath, ['dist/loadtest/verdict.js', '--base-url', api.url!, '--mark-file', markFile, ...args], { cwd: ROOT }, (err, stdout, stderr) =>
          resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        );
      });
    const noMark = await cli([]);
    t.equal(noMark.code, 2, 'no mark yet: usage error');
    t.match(noMark.stderr, /--mark/);
    t.equal((await cli(['--mark'])).code, 0, 'mark taken');
    for (let i = 0; i < 5; i++) {
      const res = await call('POST', `${api.url}/v1/queues/payments/jobs`, { data: { amount: 100 + i, currency: 'EUR', account: `acct_${i}` } }, { 'idempotency-key': `cli-${prefix}-${i}` });
      t.equal(res.status, 202);
    }
    const verdict = await cli(['--queues', 'payments', '--drain-timeout', '90s', '--out', path.join(dir, 'jobs.json')]);
    t.equal(verdict.code, 1, 'exit 1');
    t.match(verdict.stdout, /JOBS FAIL: payments\n/, 'names payments');
  });
});
