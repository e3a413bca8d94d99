/**
 * The load runner that needs no k6: same scenarios file and thresholds as the k6 script, VU mode (VUs with think
 * time, like the k6 scenarios: closed loop) or rate mode (--rate N req/s across the mix: open loop, latency from
 * each request's due time, like k6's constant-arrival-rate), live progress, per-queue p50/p95/p99 and error
 * ratio, the same verdicts, exit code 1 when a threshold fails.
 * Then the jobs' side (verdict.ts): the backlog drained, each queue's job failure ratio and e2e p95 within
 * thresholds.yaml.
 *
 *   npm run loadtest -- --scenario smoke --base-url http://127.0.0.1:3000 --api-key KEY --webhook-url URL
 *   BASE_URL=… API_KEY=… WEBHOOK_TARGET_URL=… npm run loadtest -- --scenario smoke     (same names as k6)
 *
 * The load itself is the repository's one generator (scripts/lib/load-generator.ts): the mix's queues by weight,
 * stages back to back (no ramp), one latency histogram per queue spanning all stages.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadLoadThresholds, loadScenarios, payloadFor, LOADTEST_DIR, type ScenarioFile } from './lib/scenarios';
import { verdicts, type QueueResult, type Verdict } from './lib/verdict';
import { formatJobsReport, judgeJobs, markJobs, type JobsReport, type JobsVerdictOptions } from './verdict';
import { durationFlag, httpUrl, parseDuration, parseFlags, positiveNumber, UsageError } from '../scripts/lib/cli';
import { startLoad, type LoadStage, type LoadTally, type LoadTarget } from '../scripts/lib/load-generator';

export interface RunOptions {
  scenario: string;
  baseUrl: string;
  apiKey: string;
  webhookUrl: string;
  /** Rate mode: total requests per second instead of VUs. */
  rate?: number;
  /** Overrides every stage's duration (CI smoke). */
  duration?: string;
  /** Multiplies every stage's VUs (e.g. 0.1 for a small machine); default 1. */
  scale?: number;
  quiet?: boolean;
  outDir?: string;
  /** Scenarios file (default loadtest/scenarios.json). */
  scenariosFile?: string;
  /** Progress line interval, ms (default 5000). */
  progressMs?: number;
  /** Judge the jobs too (verdict.ts): marked before the load, judged after the backlog drained. */
  jobs?: JobsVerdictOptions;
}

export interface RunReport {
  scenario: string;
  mode: 'vus' | 'rate';
  startedAt: string;
  durationMs: number;
  /** Rate mode: the requested total rate; VU mode: what the VUs would send with instant answers. */
  targetRps: number;
  achievedRps: number;
  queues: QueueResult[];
  verdicts: Verdict[];
  /** The jobs' side, when judged (RunOptions.jobs). */
  jobs?: JobsReport;
  /** HTTP verdicts and, when judged, the jobs' verdicts all held. */
  passed: boolean;
  warnings: string[];
}

/** Each payment is its own intent: a new `Idempotency-Key: loadtest-<UUID>` per request (Stripe-style keys). */
export const IDEMPOTENCY_KEY_PREFIX = 'loadtest-';

/** The scenario's stages as generator stages: VUs with think time, or the total rate (open loop). */
export function loadStages(file: ScenarioFile, stages: { seconds: number; target: number }[], rate: number | undefined): LoadStage[] {
  return stages.map((st) => (rate ? { seconds: st.seconds, rate } : { seconds: st.seconds, users: st.target, thinkTimeMs: file.thinkTimeMs }));
}

/** One target per queue of the mix, weighted as the mix says; idempotent queues get a new key per request. */
export function loadTargets(file: ScenarioFile, baseUrl: string, webhookUrl: string): LoadTarget[] {
  const url = new URL(baseUrl);
  return file.mix.map(({ queue, weight }) => ({
    origin: url.origin,
    path: `${url.pathname.replace(/\/$/, '')}/v1/queues/${queue}/jobs`,
    body: payloadFor(file, queue, { WEBHOOK_TARGET_URL: webhookUrl }),
    label: queue,
    weight,
    ...(file.idempotentQueues.includes(queue) ? { idempotencyKeyPrefix: IDEMPOTENCY_KEY_PREFIX } : {}),
  }));
}

/**
 * Connections: one per VU (a k6 VU has its own); in rate mode enough for answers up to 500 ms to keep the pace
 * without waiting for a free connection (a wait still counts in the latency), capped at 1,000.
 */
export function connectionsFor(stages: LoadStage[]): number {
  return Math.max(...stages.map((st) => ('rate' in st ? Math.min(1000, Math.max(4, Math.ceil(st.rate / 2))) : st.users)));
}

/** A queue's result: every request sent counts; an answer other than 202, a lost or an unanswered one is an error. */
function queueResult(queue: string, t: LoadTally): QueueResult {
  const unanswered = t.sent - t.answered - t.errors;
  const statuses = { ...t.statuses, ...(t.errors ? { error: t.errors } : {}), ...(unanswered > 0 ? { unanswered } : {}) };
  return { queue, requests: t.sent, errors: t.sent - t.accepted, p50: t.latency.p50, p95: t.latency.p95, p99: t.latency.p99, statuses };
}

export async function runLoad(o: RunOptions): Promise<RunReport> {
  const file = loadScenarios(o.scenariosFile);
  const sc = file.scenarios[o.scenario];
  if (!sc) throw new Error(`unknown scenario "${o.scenario}"; known: ${Object.keys(file.scenarios).join(', ')}`);
  if (o.rate !== undefined && !(o.rate > 0)) throw new Error('--rate must be a number of requests per second > 0');
  if (o.scale !== undefined && !(o.scale > 0)) throw new Error('--scale must be a number > 0');
  const stages = sc.stages.map((st) => ({ seconds: parseDuration(o.duration ?? st.duration) / 1000, target: Math.max(1, Math.round(st.target * (o.scale ?? 1))) }));
  const totalSeconds = stages.reduce((a, s) => a + s.seconds, 0);
  const planned = loadStages(file, stages, o.rate);
  const jobsMark = o.jobs ? await markJobs(o.jobs) : undefined;
  const started = Date.now();
  const log = (s: string) => o.quiet || process.stdout.write(s);
  for (const st of planned) {
    log(`stage ${st.seconds}s: ${'rate' in st ? `${st.rate} req/s (open loop)` : `${st.users} VUs, ${file.thinkTimeMs} ms think time (≤ ${((st.users * 1000) / file.thinkTimeMs).toFixed(0)} req/s)`} — ${file.mix.map((m) => `${m.queue} ×${m.weight}`).join(', ')}\n`);
  }
  const load = startLoad({ targets: loadTargets(file, o.baseUrl, o.webhookUrl), apiKey: o.apiKey, stages: planned, connections: connectionsFor(planned) });
  let last = { at: started, answered: 0 };
  const progress = setInterval(() => {
    const now = Date.now();
    const p = load.progress();
    const done = p.answered + p.errors;
    const rps = ((done - last.answered) * 1000) / Math.max(1, now - last.at);
    last = { at: now, answered: done };
    const perQueue = Object.entries(p.byLabel)
      .map(([q, s]) => `${q} ${s.answered + s.errors}${s.errors ? ` (${s.errors} err)` : ''}`)
      .join(', ');
    log(`  ${((now - started) / 1000).toFixed(0)}s/${totalSeconds.toFixed(0)}s  ${done} requests, ${rps.toFixed(0)} req/s now, ${p.errors} errors  [${perQueue}]\n`);
  }, o.progressMs ?? 5_000);
  const result = await load.result.finally(() => clearInterval(progress));
  const durationMs = Date.now() - started;
  const queues: QueueResult[] = file.mix.map(({ queue }) => queueResult(queue, result.byLabel[queue]!));
  const v = verdicts(queues, loadLoadThresholds());
  if (o.jobs) log(`waiting for the jobs to drain, then judging them (${o.jobs.prometheusUrl ? 'Prometheus' : 'the API'})\n`);
  const jobs = o.jobs && jobsMark ? await judgeJobs(o.jobs, jobsMark, file.mix.map((m) => m.queue)) : undefined;
  // VU mode: what the VUs would send with instant answers; rate mode: the requested rate.
  const targetRps = planned.reduce((a, st) => a + ('rate' in st ? st.rate : (st.users * 1000) / file.thinkTimeMs) * st.seconds, 0) / totalSeconds;
  // Answers per second over the stages' durations, not the wall time with the wait for the last answers.
  const achievedRps = result.answered / totalSeconds;
  const warnings: string[] = [];
  if (o.rate && achievedRps < 0.9 * targetRps) {
    warnings.push(`the API answered ${achievedRps.toFixed(0)} req/s of the ${targetRps.toFixed(0)} req/s sent: requests queued, and their latency (counted from when each was due) includes that wait`);
  }
  if (result.maxScheduleLagMs > 100) {
    warnings.push(`the load generator fell up to ${result.maxScheduleLagMs.toFixed(0)} ms behind its schedule (its machine was busy): that delay counts in the latencies`);
  }
  const limited = queues.reduce((a, q) => a + (q.statuses?.['429'] ?? 0), 0);
  if (limited) {
    warnings.push(`${limited} answers were 429: the API's per-key rate limit (API_RATE_LIMIT_MAX, default 1,000 per second) rejected them, not a capacity limit; raise it (0 = off) or spread the load over several keys`);
  }
  const report: RunReport = {
    scenario: o.scenario,
    mode: o.rate ? 'rate' : 'vus',
    startedAt: new Date(started).toISOString(),
    durationMs,
    targetRps: Number(targetRps.toFixed(1)),
    achievedRps: Number(achievedRps.toFixed(1)),
    queues,
    verdicts: v,
    jobs,
    passed: v.every((x) => x.pass) && (jobs?.passed ?? true),
    warnings,
  };
  if (o.outDir) {
    mkdirSync(o.outDir, { recursive: true });
    writeFileSync(path.join(o.outDir, `${o.scenario}-node-${started}.json`), JSON.stringify(report, null, 2));
  }
  return report;
}

export function formatReport(r: RunReport): string {
  const lines = [
    `scenario ${r.scenario} (${r.mode}), ${(r.durationMs / 1000).toFixed(1)} s, ${r.achievedRps} req/s${r.mode === 'rate' ? ` (target ${r.targetRps})` : ''}`,
    'queue          requests  errors   p50 ms   p95 ms   p99 ms',
  ];
  for (const q of r.queues) {
    lines.push(`${q.queue.padEnd(14)} ${String(q.requests).padStart(8)} ${String(q.errors).padStart(7)} ${q.p50.toFixed(1).padStart(8)} ${q.p95.toFixed(1).padStart(8)} ${q.p99.toFixed(1).padStart(8)}`);
  }
  const odd = r.queues.filter((q) => q.statuses && Object.keys(q.statuses).some((s) => s !== '202'));
  for (const q of odd) lines.push(`  ${q.queue} statuses: ${Object.entries(q.statuses!).map(([s, n]) => `${s}×${n}`).join(' ')}`);
  for (const v of r.verdicts) lines.push(`${v.pass ? '✓' : '✗'} ${v.queue} ${v.check}: ${v.actual} (limit ${v.limit})`);
  if (r.jobs) lines.push(formatJobsReport(r.jobs).trimEnd());
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  lines.push(r.passed ? 'PASS' : 'FAIL: thresholds crossed');
  return lines.join('\n') + '\n';
}

const USAGE = `usage: npm run loadtest -- [--scenario NAME] [--base-url URL] [--api-key KEY] [--webhook-url URL]
                        [--rate REQ_PER_S] [--duration 30s] [--scale 0.1] [--out DIR] [--quiet]
                        [--prometheus-url URL] [--drain-timeout 120s] [--http-only]
  --scenario     a scenario of loadtest/scenarios.json (default smoke; env SCENARIO)
  --base-url     the API (default http://127.0.0.1:3000; env BASE_URL)
  --api-key      one of the API's API_KEYS (required; env API_KEY)
  --webhook-url  where webhook jobs deliver (default http://127.0.0.1:8099/hooks; env WEBHOOK_TARGET_URL)
  --rate         rate mode: total requests per second across the mix instead of VUs (env RATE)
  --duration     run every stage for this long instead of the scenario's durations
  --scale        multiply every stage's VUs (e.g. 0.1 on a small machine)
  --out          where the JSON summary goes (default loadtest-results/)
  --prometheus-url  judge the jobs from this Prometheus (env PROMETHEUS_URL); else from the API's /queue/metrics
  --drain-timeout   how long the backlog may take to drain after the load (default 120s)
  --http-only    judge HTTP only (an API stand-in without workers)
  --quiet        no stage and progress lines: only the report
exit code: 0 every threshold held (HTTP and jobs), 1 a threshold failed, 2 usage or run error
`;

export interface CliArgs {
  options: RunOptions;
  help: boolean;
}

/** Flags win over the environment (BASE_URL, API_KEY, WEBHOOK_TARGET_URL, SCENARIO, RATE: the k6 script's names). */
export function parseArgs(argv: string[], env: Record<string, string | undefined>): CliArgs {
  const flags = parseFlags(
    argv,
    {
      scenario: { type: 'string' },
      'base-url': { type: 'string' },
      'api-key': { type: 'string' },
      'webhook-url': { type: 'string' },
      rate: { type: 'string' },
      duration: { type: 'string' },
      scale: { type: 'string' },
      out: { type: 'string' },
      'prometheus-url': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'http-only': { type: 'boolean' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean' },
    },
    USAGE,
  );
  const help = flags.help === true;
  const apiKey = flags['api-key'] ?? env.API_KEY ?? '';
  if (!apiKey && !help) throw new UsageError("--api-key (or API_KEY) is required: one of the API's API_KEYS", USAGE);
  durationFlag('duration', flags.duration, USAGE); // checked here; the stages read it again
  const drainTimeoutMs = durationFlag('drain-timeout', flags['drain-timeout'], USAGE);
  const scenario = flags.scenario ?? env.SCENARIO ?? 'smoke';
  if (!help) {
    const known = Object.keys(loadScenarios().scenarios);
    if (!known.includes(scenario)) throw new UsageError(`--scenario must be one of ${known.join(', ')}, got "${scenario}"`, USAGE);
  }
  return {
    help,
    options: {
      scenario,
      baseUrl: httpUrl('base-url', flags['base-url'] ?? env.BASE_URL ?? 'http://127.0.0.1:3000', USAGE),
      apiKey,
      webhookUrl: httpUrl('webhook-url', flags['webhook-url'] ?? env.WEBHOOK_TARGET_URL ?? 'http://127.0.0.1:8099/hooks', USAGE),
      rate: positiveNumber('rate', flags.rate ?? env.RATE, USAGE),
      duration: flags.duration,
      scale: positiveNumber('scale', flags.scale, USAGE),
      outDir: flags.out ?? path.join(LOADTEST_DIR, '..', 'loadtest-results'),
      jobs: flags['http-only'] ? undefined : jobsOptions(flags['base-url'] ?? env.BASE_URL ?? 'http://127.0.0.1:3000', flags['prometheus-url'] ?? env.PROMETHEUS_URL, drainTimeoutMs),
      quiet: flags.quiet === true,
    },
  };
}

function jobsOptions(baseUrl: string, prometheusUrl: string | undefined, drainTimeoutMs: number | undefined): JobsVerdictOptions {
  return { baseUrl, prometheusUrl: prometheusUrl === undefined ? undefined : httpUrl('prometheus-url', prometheusUrl, USAGE), drainTimeoutMs };
}

async function main(argv: string[]): Promise<number> {
  const { options, help } = parseArgs(argv, process.env);
  if (help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const report = await runLoad(options);
  process.stdout.write(formatReport(report));
  return report.passed ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: Error) => {
      process.stderr.write(`${err instanceof UsageError ? '' : 'load test failed: '}${err.message}\n`);
      process.exitCode = 2;
    },
  );
}
