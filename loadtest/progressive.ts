/**
 * Progressive suite: light → medium → heavy → extreme (scenarios.json "progressive"), stopping at the first run
 * whose thresholds fail. Each run's summary goes to loadtest-results/progressive-<time>/<scenario>.json and one
 * markdown report compares them (report.md). Runs k6 when it is installed (`--runner k6`, remote write with
 * `--remote-write URL`), else the no-k6 runner (`--runner node`). Each run is judged on both sides: HTTP, and the
 * jobs (verdict.ts: drained, failure ratio, e2e p95), unless --http-only.
 *
 *   npm run loadtest:progressive -- --api-key KEY [--base-url URL] [--runner k6|node] [--duration 30s]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadScenarios, LOADTEST_DIR } from './lib/scenarios';
import { runLoad } from './run';
import type { QueueResult } from './lib/verdict';
import { judgeJobs, markJobs, type JobsReport, type JobsVerdictOptions } from './verdict';
import { durationFlag, httpUrl, oneOf, parseFlags, positiveNumber, UsageError } from '../scripts/lib/cli';

export interface RunSummary {
  scenario: string;
  vus: number;
  requests: number;
  rps: number;
  queues: QueueResult[];
  passed: boolean;
  /** The thresholds this run crossed, in words (empty when it passed). */
  failed: string[];
  /** The jobs' side, when judged. */
  jobs?: JobsReport;
}

export interface ProgressiveOptions {
  baseUrl: string;
  apiKey: string;
  webhookUrl: string;
  runner: 'k6' | 'node';
  duration?: string;
  /** Node runner only: multiplies VUs (k6 runs the scenarios as written). */
  scale?: number;
  remoteWrite?: string;
  outRoot?: string;
  quiet?: boolean;
  /** Judge each run's jobs too (verdict.ts); unset: HTTP only. */
  jobs?: JobsVerdictOptions;
}

function k6Run(o: ProgressiveOptions, scenario: string, dir: string): RunSummary {
  const testid = `${path.basename(dir)}-${scenario}`;
  const args = ['run', ...(o.remoteWrite ? ['-o', 'experimental-prometheus-rw'] : []), path.join(LOADTEST_DIR, 'k6', 'script.js')];
  const res = spawnSync('k6', args, {
    stdio: o.quiet ? 'ignore' : 'inherit',
    env: {
      ...process.env,
      SCENARIO: scenario,
      TESTID: testid,
      BASE_URL: o.baseUrl,
      API_KEY: o.apiKey,
      WEBHOOK_TARGET_URL: o.webhookUrl,
      RESULTS_DIR: dir,
      ...(o.remoteWrite ? { K6_PROMETHEUS_RW_SERVER_URL: o.remoteWrite, K6_PROMETHEUS_RW_TREND_STATS: 'p(95),p(99),avg' } : {}),
    },
  });
  if (res.error) throw new Error(`could not run k6 (${res.error.message}); install k6 or use --runner node`);
  const summaryFile = path.join(dir, `${testid}.json`);
  // k6 exits 99 when a threshold fails (also after abortOnFail); any other non-zero code is a broken run.
  if (res.status !== 0 && res.status !== 99 && !existsSync(summaryFile)) throw new Error(`k6 ${scenario} exited ${res.status ?? res.signal} without a summary`);
  return summaryFromK6(scenario, JSON.parse(readFileSync(summaryFile, 'utf8')) as K6SummaryData, res.status === 0);
}

/** The parts of k6's handleSummary data read here: each metric's aggregated `values` and, where set, `thresholds`. */
export interface K6SummaryData {
  metrics: Record<string, { values: Record<string, number | undefined>; thresholds?: Record<string, { ok: boolean }> } | undefined>;
}

/** A run summary from k6's handleSummary data (metrics with `values` and, where set, `thresholds`). */
export function summaryFromK6(scenario: string, data: K6SummaryData, exitedZero: boolean): RunSummary {
  const m = data.metrics;
  const value = (metric: string, stat: string) => m[metric]?.values[stat] ?? 0;
  const queues: QueueResult[] = Object.keys(m)
    .filter((k) => k.startsWith('http_req_duration{queue:'))
    .map((k) => {
      const queue = k.slice('http_req_duration{queue:'.length, -1);
      const failed = `http_req_failed{queue:${queue}}`;
      // http_req_failed is a Rate: "passes" are the failed requests, "fails" the successful ones.
      const errors = value(failed, 'passes');
      return { queue, requests: errors + value(failed, 'fails'), errors, p50: value(k, 'med'), p95: value(k, 'p(95)'), p99: value(k, 'p(99)') };
    });
  const failed: string[] = [];
  for (const [name, metric] of Object.entries(m)) {
    for (const [expr, r] of Object.entries(metric?.thresholds ?? {})) if (!r.ok) failed.push(`${name} ${expr}`);
  }
  return {
    scenario,
    vus: value('vus_max', 'max'),
    requests: value('http_reqs', 'count'),
    rps: value('http_reqs', 'rate'),
    queues,
    passed: exitedZero && failed.length === 0,
    failed,
  };
}

export async function runProgressive(o: ProgressiveOptions): Promise<{ dir: string; runs: RunSummary[]; report: string }> {
  const file = loadScenarios();
  const dir = path.join(o.outRoot ?? path.join(LOADTEST_DIR, '..', 'loadtest-results'), `progressive-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  mkdirSync(dir, { recursive: true });
  const runs: RunSummary[] = [];
  for (const scenario of file.progressive) {
    let summary: RunSummary;
    if (o.runner === 'k6') {
      const mark = o.jobs ? await markJobs(o.jobs) : undefined;
      summary = k6Run(o, scenario, dir);
      if (o.jobs && mark) summary = withJobs(summary, await judgeJobs(o.jobs, mark, file.mix.map((m) => m.queue)));
    } else {
      const r = await runLoad({ scenario, baseUrl: o.baseUrl, apiKey: o.apiKey, webhookUrl: o.webhookUrl, duration: o.duration, scale: o.scale, quiet: o.quiet, outDir: dir, jobs: o.jobs });
      const requests = r.queues.reduce((a, q) => a + q.requests, 0);
      summary = {
        scenario,
        vus: Math.round(Math.max(...file.scenarios[scenario]!.stages.map((s) => s.target)) * (o.scale ?? 1)),
        requests,
        rps: requests / (r.durationMs / 1000),
        queues: r.queues,
        passed: r.passed,
        failed: [...r.verdicts, ...(r.jobs?.verdicts ?? [])].filter((v) => !v.pass).map((v) => `${v.queue} ${v.check} ${v.actual} (limit ${v.limit})`),
        jobs: r.jobs,
      };
    }
    writeFileSync(path.join(dir, `${scenario}.json`), JSON.stringify(summary, null, 2));
    runs.push(summary);
    if (!summary.passed) break;
  }
  const report = markdownReport(runs, file.progressive);
  writeFileSync(path.join(dir, 'report.md'), report);
  return { dir, runs, report };
}

/** A k6 run's summary with its jobs' verdicts added. */
function withJobs(summary: RunSummary, jobs: JobsReport): RunSummary {
  const failedJobs = jobs.verdicts.filter((v) => !v.pass).map((v) => `${v.queue} ${v.check} ${v.actual} (limit ${v.limit})`);
  return { ...summary, jobs, passed: summary.passed && jobs.passed, failed: [...summary.failed, ...failedJobs] };
}

export function markdownReport(runs: RunSummary[], planned: string[]): string {
  const passedRuns = runs.filter((r) => r.passed);
  const best = passedRuns[passedRuns.length - 1];
  const lines = [
    '# Progressive load test',
    '',
    `Runner stopped ${runs.length && runs.every((r) => r.passed) ? 'after the last scenario: every threshold held' : `at **${runs[runs.length - 1]?.scenario}**: thresholds failed`}.`,
    best ? `Highest load that held every threshold: **${best.scenario}** (${best.vus} VUs, ${best.rps.toFixed(0)} req/s).` : 'No scenario held every threshold.',
    '',
    '| scenario | VUs | requests | req/s | queue | p50 ms | p95 ms | p99 ms | errors | verdict |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of runs) {
    for (const q of r.queues) {
      lines.push(`| ${r.scenario} | ${r.vus} | ${r.requests} | ${r.rps.toFixed(0)} | ${q.queue} | ${q.p50.toFixed(1)} | ${q.p95.toFixed(1)} | ${q.p99.toFixed(1)} | ${q.errors} | ${r.passed ? 'pass' : 'FAIL'} |`);
    }
  }
  const judged = runs.filter((r) => r.jobs);
  if (judged.length) {
    lines.push('', 'Jobs (after the load, once the backlog drained):', '', '| scenario | queue | completed | failed | failure ratio | e2e p95 s | drained |', '|---|---|---|---|---|---|---|');
    for (const r of judged) {
      for (const q of r.jobs!.queues) {
        lines.push(`| ${r.scenario} | ${q.queue} | ${q.completed} | ${q.failed} | ${q.failureRatio.toFixed(4)} | ${q.e2eP95Seconds === null ? '-' : q.e2eP95Seconds.toFixed(3)} | ${q.drained ? 'yes' : `no (${q.backlog} left)`} |`);
      }
    }
  }
  for (const r of runs.filter((x) => x.failed.length)) lines.push('', `Thresholds crossed in ${r.scenario}:`, ...r.failed.map((f) => `- ${f}`));
  const skipped = planned.slice(runs.length);
  if (skipped.length) lines.push('', `Not run: ${skipped.join(', ')}.`);
  return lines.join('\n') + '\n';
}

const USAGE = `usage: npm run loadtest:progressive -- [--api-key KEY] [--base-url URL] [--webhook-url URL]
       [--runner k6|node] [--remote-write URL] [--duration 30s] [--scale 0.5] [--out DIR]
       [--prometheus-url URL] [--http-only]
  env fallbacks: API_KEY, BASE_URL, WEBHOOK_TARGET_URL, K6_PROMETHEUS_RW_SERVER_URL (remote write, k6 only),
                 PROMETHEUS_URL
  --prometheus-url  judge the jobs from this Prometheus; else from the API's /queue/metrics
  --http-only   judge HTTP only (no jobs verdict)
  --runner      k6 when it is installed, else node (the no-k6 runner)
  --duration    node runner: every run this long;  --scale  node runner: multiply the VUs
  report: <out, default loadtest-results>/progressive-<time>/report.md; exit 0 all held, 1 stopped early, 2 error
`;

/** Flags, then the same environment names as the k6 script and the no-k6 runner. */
export function parseProgressiveArgs(argv: string[], env: Record<string, string | undefined>, hasK6: boolean): ProgressiveOptions | 'help' {
  const flags = parseFlags(
    argv,
    {
      'api-key': { type: 'string' },
      'base-url': { type: 'string' },
      'webhook-url': { type: 'string' },
      runner: { type: 'string' },
      'remote-write': { type: 'string' },
      duration: { type: 'string' },
      scale: { type: 'string' },
      out: { type: 'string' },
      'prometheus-url': { type: 'string' },
      'http-only': { type: 'boolean' },
      help: { type: 'boolean' },
    },
    USAGE,
  );
  if (flags.help) return 'help';
  const apiKey = flags['api-key'] ?? env.API_KEY;
  if (!apiKey) throw new UsageError("--api-key (or API_KEY) is required: one of the API's API_KEYS", USAGE);
  const runner = oneOf('runner', flags.runner ?? (hasK6 ? 'k6' : 'node'), ['k6', 'node'] as const, USAGE);
  durationFlag('duration', flags.duration, USAGE); // checked here; the stages read it again
  const remoteWrite = flags['remote-write'] ?? env.K6_PROMETHEUS_RW_SERVER_URL;
  const baseUrl = httpUrl('base-url', flags['base-url'] ?? env.BASE_URL ?? 'http://127.0.0.1:3000', USAGE);
  const prometheusUrl = flags['prometheus-url'] ?? env.PROMETHEUS_URL;
  return {
    baseUrl,
    apiKey,
    webhookUrl: httpUrl('webhook-url', flags['webhook-url'] ?? env.WEBHOOK_TARGET_URL ?? 'http://127.0.0.1:8099/hooks', USAGE),
    runner,
    duration: flags.duration,
    scale: positiveNumber('scale', flags.scale, USAGE),
    remoteWrite: remoteWrite === undefined ? undefined : httpUrl('remote-write', remoteWrite, USAGE),
    outRoot: flags.out,
    jobs: flags['http-only'] ? undefined : { baseUrl, prometheusUrl: prometheusUrl === undefined ? undefined : httpUrl('prometheus-url', prometheusUrl, USAGE) },
  };
}

if (require.main === module) {
  const hasK6 = spawnSync('k6', ['version'], { stdio: 'ignore' }).status === 0;
  let options: ProgressiveOptions | 'help';
  try {
    options = parseProgressiveArgs(process.argv.slice(2), process.env, hasK6);
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  process.stdout.write(`progressive suite with the ${options.runner} runner${options.runner === 'node' && !hasK6 ? ' (k6 not found)' : ''}\n`);
  runProgressive(options).then(
    ({ dir, runs, report }) => {
      process.stdout.write(`\n${report}\nreport: ${path.join(dir, 'report.md')}\n`);
      process.exitCode = runs.every((r) => r.passed) ? 0 : 1;
    },
    (err: Error) => {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = 2;
    },
  );
}
