/**
 * The campaign's report: report.json (the field names are a contract: test/chaos/campaign.test.ts and
 * docs/reliability.md's table read them), report.md for people, and one summary line for the terminal and CI.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { CheckResult } from './checker';
import type { FaultRecord } from './faults';
import { describeSchedule, FAULT_KINDS, type FaultKind, type ScheduledFault, type Topology } from './schedule';

export interface CampaignReport {
  seed: number;
  topology: Topology;
  durationS: number;
  faults: Partial<Record<FaultKind, number>>;
  requests: { sent: number; accepted: number; refused: number; attempts: number; refusedReasons: Record<string, number>; answers: Record<string, number> };
  lost: number;
  doubleCharged: number;
  orphanCharges: number;
  duplicateDeliveries: number;
  recoveryS: Partial<Record<FaultKind, { max: number; p95: number }>>;
  invariants: { name: string; ok: boolean; detail: string }[];
  ok: boolean;
  firstFailure?: CheckResult['firstFailure'];
  schedule: ScheduledFault[];
  faultLog: FaultRecord[];
  drainS: number;
  redis: string;
  settings: Record<string, string | number>;
  /**
   * Starts the supervisor had to repeat (scripts/chaos/services.ts): a process that exited while starting or was not
   * ready within 45 s. Not an invariant (the API exits by design when Redis is unreachable at boot); atMs is ms since
   * the load started (negative: before it).
   */
  restarts: { name: string; atMs: number; why: string; lastOutput: string }[];
}

export function buildReport(o: {
  seed: number; topology: Topology; durationS: number; schedule: ScheduledFault[]; faultLog: FaultRecord[];
  result: CheckResult; drainS: number; redis: string; settings: Record<string, string | number>;
  restarts?: CampaignReport['restarts'];
}): CampaignReport {
  const faults: CampaignReport['faults'] = {};
  for (const f of o.faultLog.filter((x) => !x.skipped)) faults[f.kind] = (faults[f.kind] ?? 0) + 1;
  const recoveryS: CampaignReport['recoveryS'] = {};
  for (const [k, v] of Object.entries(o.result.recoveryS)) recoveryS[k as FaultKind] = { max: v.max, p95: v.p95 };
  return {
    seed: o.seed,
    topology: o.topology,
    durationS: o.durationS,
    faults,
    requests: o.result.requests,
    lost: o.result.lost,
    doubleCharged: o.result.doubleCharged,
    orphanCharges: o.result.orphanCharges,
    duplicateDeliveries: o.result.duplicateDeliveries,
    recoveryS,
    invariants: o.result.invariants,
    ok: o.result.invariants.every((i) => i.ok),
    firstFailure: o.result.firstFailure,
    schedule: o.schedule,
    faultLog: o.faultLog,
    drainS: o.drainS,
    redis: o.redis,
    settings: o.settings,
    restarts: o.restarts ?? [],
  };
}

export function summaryLine(r: CampaignReport): string {
  const faults = Object.values(r.faults).reduce((s, n) => s + (n ?? 0), 0);
  const head = `chaos ${r.ok ? 'PASS' : 'FAIL'} seed=${r.seed} topology=${r.topology} ${r.durationS}s: ${faults} faults, ${r.requests.sent} sent / ${r.requests.accepted} accepted / ${r.requests.refused} refused, lost ${r.lost}, double-charged ${r.doubleCharged}, orphan ${r.orphanCharges}, duplicate deliveries ${r.duplicateDeliveries}${r.restarts?.length ? `, supervisor restarts ${r.restarts.length}` : ''}`;
  if (r.ok || !r.firstFailure) return head;
  const f = r.firstFailure;
  return `${head}; first failing job ${f.jobId ?? '(none)'} (${f.queue} intent ${f.intent}, sent at ${f.sentAtS} s): ${f.why}; faults around it: ${f.faultsAround.join(', ') || 'none'}`;
}

export function renderMarkdown(r: CampaignReport): string {
  const lines = [
    `# Chaos campaign: seed ${r.seed}, ${r.topology}, ${r.durationS} s — ${r.ok ? 'PASS' : 'FAIL'}`,
    '',
    `Replay: \`npm run chaos -- --seed ${r.seed} --topology ${r.topology} --duration ${r.durationS}s\``,
    '',
    `Redis: ${r.redis}. Settings: ${Object.entries(r.settings).map(([k, v]) => `${k}=${v}`).join(', ')}. Drain after the load: ${r.drainS} s.`,
    '',
    '## Invariants',
    '',
    '| invariant | ok | detail |',
    '|---|---|---|',
    ...r.invariants.map((i) => `| ${i.name} | ${i.ok ? 'yes' : '**NO**'} | ${i.detail} |`),
    '',
  ];
  if (r.firstFailure) {
    const f = r.firstFailure;
    lines.push(`**First failing job:** ${f.jobId ?? '(no job)'} — ${f.queue} intent \`${f.intent}\` sent at ${f.sentAtS} s: ${f.why}.`, `Faults within 15 s: ${f.faultsAround.join(', ') || 'none'}.`, '');
  }
  lines.push(
    '## Requests',
    '',
    `sent ${r.requests.sent} intents (${r.requests.attempts} HTTP attempts), accepted ${r.requests.accepted}, refused ${r.requests.refused}` +
      (r.requests.refused ? ` (${Object.entries(r.requests.refusedReasons).map(([k, v]) => `${k}: ${v}`).join(', ')})` : ''),
    '',
    '| answer | count |',
    '|---|---|',
    ...Object.entries(r.requests.answers).sort((a, b) => b[1] - a[1]).map(([k, v]) => `| ${k} | ${v} |`),
    '',
    `lost **${r.lost}**, double-charged **${r.doubleCharged}**, orphan charges **${r.orphanCharges}**, duplicate deliveries **${r.duplicateDeliveries}**`,
    '',
    '## Faults and recovery',
    '',
    'Recovery: from the heal (restart ready, SIGCONT, link up, settings cleared) to the first 202 and the first job finished after it.',
    '',
    '| kind | injected | recovery p95 (s) | recovery max (s) |',
    '|---|---|---|---|',
    ...FAULT_KINDS.filter((k) => r.faults[k]).map((k) => `| ${k} | ${r.faults[k]} | ${r.recoveryS[k]?.p95 ?? '–'} | ${r.recoveryS[k]?.max ?? '–'} |`),
    '',
    '## Restarts by the supervisor',
    '',
    ...(r.restarts.length
      ? r.restarts.map((x) => `- ${(x.atMs / 1000).toFixed(1)} s ${x.name}: ${x.why} — ${x.lastOutput.split('\n').at(-1)?.slice(0, 200) ?? ''}`)
      : ['none: every start was ready first time']),
    '',
    '## Schedule (a function of the seed)',
    '',
    '```',
    ...describeSchedule(r.schedule),
    '```',
    '',
    '## What happened',
    '',
    '```',
    ...r.faultLog.map((f) => `${(f.startedMs / 1000).toFixed(1).padStart(6)}–${((f.healedMs ?? f.startedMs) / 1000).toFixed(1).padStart(6)} s  ${f.kind.padEnd(15)} ${f.target}${f.skipped ? `  skipped (${f.skipReason ?? 'lane busy past the load'})` : ''}${f.error ? `  ERROR ${f.error.split('\n')[0]}` : ''}`),
    '```',
    '',
  );
  return lines.join('\n');
}

export function writeReport(dir: string, r: CampaignReport): void {
  writeFileSync(path.join(dir, 'report.json'), `${JSON.stringify(r, null, 2)}\n`);
  writeFileSync(path.join(dir, 'report.md'), renderMarkdown(r));
}
