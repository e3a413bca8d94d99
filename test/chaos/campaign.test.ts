/**
 * The short chaos campaign of every CI run: `npm run chaos` itself (dist/scripts/chaos/main.js) for 60 s with a
 * fixed seed on the single topology — Redis with AOF in its own network namespace, 2 APIs, 2 workers, every fault
 * kind that topology supports — then the invariants from its report.json. A failure prints the summary line
 * (first failing job, faults around it) and the report folder; replay with the same seed.
 */
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CampaignReport } from '../../scripts/chaos/report';
import { buildSchedule, kindsFor } from '../../scripts/chaos/schedule';

const ROOT = path.resolve(__dirname, '..', '..');
const SEED = 20261203;
// 60 s of load: with start-up and the drain the file stays inside tap's 240 s on a loaded 2-core box.
const DURATION_S = 60;

t.test(`chaos campaign: seed ${SEED}, single topology, ${DURATION_S} s`, { skip: process.getuid?.() !== 0 ? 'needs root (ip netns)' : false }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chaos-ci-'));
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      ['dist/scripts/chaos/main.js', '--duration', `${DURATION_S}s`, '--seed', String(SEED), '--topology', 'single', '--report', dir, '--rate', '20'],
      { cwd: ROOT, timeout: 200_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr }),
    );
  });
  t.comment(stdout.trim());
  t.ok(existsSync(path.join(dir, 'report.json')), `report written (${dir}); stderr tail:\n${stderr.split('\n').slice(-15).join('\n')}`);
  const r = JSON.parse(readFileSync(path.join(dir, 'report.json'), 'utf8')) as CampaignReport;
  t.equal(code, r.ok ? 0 : 1, 'exit code follows the invariants');
  t.match(stdout, /^chaos (PASS|FAIL) seed=20261203 topology=single/m, 'one summary line');

  t.equal(r.seed, SEED);
  t.equal(r.durationS, DURATION_S);
  t.same(r.schedule, buildSchedule({ seed: SEED, durationS: DURATION_S, topology: 'single', workers: 2, apis: 2 }), 'the schedule printed is the seed\'s');
  const injected = Object.keys(r.faults).sort();
  const scheduled = new Set(r.schedule.map((f) => f.kind));
  t.ok(injected.every((k) => scheduled.has(k as never)), 'only scheduled kinds were injected');
  // A fault whose lane is still busy when the load ends is skipped (a very slow machine); most kinds must run.
  t.ok(injected.length >= kindsFor('single').length - 2, `kinds injected: ${injected.join(', ')}`);
  t.ok(r.requests.accepted > 0.9 * r.requests.sent, `accepted ${r.requests.accepted} of ${r.requests.sent}`);
  for (const inv of r.invariants) t.ok(inv.ok, `${inv.name}: ${inv.detail}`);
  t.equal(r.lost, 0, 'lost');
  t.equal(r.doubleCharged, 0, 'double-charged');
  t.equal(r.orphanCharges, 0, 'orphan charges');
  for (const [kind, rec] of Object.entries(r.recoveryS)) t.ok(rec && rec.max >= 0 && rec.p95 <= rec.max, `${kind}: recovery p95 ${rec?.p95} s, max ${rec?.max} s`);
  if (!r.ok) t.comment(`first failure: ${JSON.stringify(r.firstFailure)}`);
});
