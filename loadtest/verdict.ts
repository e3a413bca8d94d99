/**
 * The load test's verdict on the jobs, not only on HTTP: after the load, wait (bounded) for each queue's backlog
 * to drain, then read how many of its jobs completed and failed during the run and their end-to-end p95, and fail
 * the queue whose failure ratio or e2e p95 reaches its critical threshold in observability/thresholds.yaml
 * (job_error_ratio, job_latency_p95_seconds: the levels that page), or that did not drain. A run where the API
 * accepted every request while every payment failed is a failed run.
 *
 * Two sources, the same verdicts:
 *   - Prometheus (--prometheus-url): increase() of bullmq_jobs_completed_total / bullmq_jobs_failed_total and of
 *     the bullmq_job_e2e_seconds buckets over the run, the backlog from bullmq_queue_jobs.
 *   - the API's queue endpoint (GET /queue/metrics, anonymous): completed/failed counts before and after (a
 *     mark taken at the start), the e2e p95 of the most recent completed jobs, the backlog counts. Counts are of
 *     retained jobs (completed: the last hour, at most 10,000 per queue): for longer or bigger runs use Prometheus.
 *
 * Used by the no-k6 runner (run.ts, RunOptions.jobs) and the progressive runner, and after k6 as a CLI:
 *   npm run loadtest:verdict -- --mark            before k6 (writes loadtest-results/jobs-mark.json)
 *   npm run loadtest:k6
 *   npm run loadtest:verdict                      after: exit 0 the jobs held, 1 a queue failed, 2 usage/run error
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { forQueue, loadThresholds, type Thresholds } from '../services/common/thresholds';
import type { Verdict } from './lib/verdict';
import { LOADTEST_DIR, loadScenarios } from './lib/scenarios';
import { durationFlag, httpUrl, parseFlags, UsageError } from '../scripts/lib/cli';

export interface JobsVerdictOptions {
  /** The API (its /queue/metrics endpoint): the source without Prometheus. */
  baseUrl: string;
  /** Read counts and latencies from this Prometheus instead of the API. */
  prometheusUrl?: string;
  /** How long to wait for the backlog to drain after the load (default 120 s). */
  drainTimeoutMs?: number;
  /** Backlog poll interval (default 1 s). */
  pollMs?: number;
}

/** Completed and failed jobs per queue at the start (API source; Prometheus needs only the time). */
export interface JobsMark {
  at: string;
  counts: Record<string, { completed: number; failed: number }>;
}

export interface JobQueueResult {
  queue: string;
  completed: number;
  failed: number;
  /** failed / (completed + failed); 1 when no job finished. */
  failureRatio: number;
  /** End-to-end p95 of the run's jobs (s); null when none completed. */
  e2eP95Seconds: number | null;
  drained: boolean;
  /** Jobs still waiting, prioritized, active or delayed when the verdict was taken. */
  backlog: number;
}

export interface JobsReport {
  source: 'prometheus' | 'api';
  /** Seconds from the mark to the verdict (the window the counts cover). */
  windowSeconds: number;
  queues: JobQueueResult[];
  verdicts: Verdict[];
  passed: boolean;
}

interface Reading {
  completed: number;
  failed: number;
  backlog: number;
  e2eP95Seconds: number | null;
}

/** One read of every queue, from the API's /queue/metrics. */
async function readApi(baseUrl: string): Promise<Record<string, Reading>> {
  const url = `${baseUrl.replace(/\/$/, '')}/queue/metrics`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
  const body = (await res.json().catch(() => ({}))) as { data?: { queueName: string; completedCount: number; failedCount: number; waitingCount: number; activeCount: number; delayedCount: number; p95Latency: number }[] };
  if (!Array.isArray(body.data)) throw new Error(`GET ${url} did not answer the API's queue metrics (no "data" list): point --base-url at the API, or judge HTTP alone with --http-only`);
  return Object.fromEntries(
    body.data.map((q) => [
      q.queueName,
      {
        completed: q.completedCount,
        failed: q.failedCount,
        backlog: q.waitingCount + q.activeCount + q.delayedCount,
        e2eP95Seconds: q.p95Latency > 0 ? q.p95Latency / 1000 : null,
      },
    ]),
  );
}

/** An instant query's value per queue label. */
async function promByQueue(prometheusUrl: string, query: string): Promise<Record<string, number>> {
  const url = `${prometheusUrl.replace(/\/$/, '')}/api/v1/query?query=${encodeURIComponent(query)}`;
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  const body = (await res.json()) as { status: string; error?: string; data?: { result: { metric: { queue?: string }; value: [number, string] }[] } };
  if (!res.ok || body.status !== 'success') throw new Error(`Prometheus query ${query} failed: ${body.error ?? res.status}`);
  const out: Record<string, number> = {};
  for (const r of body.data!.result) if (r.metric.queue) out[r.metric.queue] = Number(r.value[1]);
  return out;
}

async function readPrometheus(prometheusUrl: string, windowSeconds: number): Promise<Record<string, Reading>> {
  const w = `${Math.max(60, Math.ceil(windowSeconds))}s`;
  // Gauges read at scrape by every worker: max over replicas, as every rule does.
  const [completed, failed, backlog, p95] = await Promise.all([
    promByQueue(prometheusUrl, `sum by (queue) (increase(bullmq_jobs_completed_total[${w}]))`),
    promByQueue(prometheusUrl, `sum by (queue) (increase(bullmq_jobs_failed_total[${w}]))`),
    promByQueue(prometheusUrl, `sum by (queue) (max by (queue, state) (bullmq_queue_jobs{state=~"waiting|prioritized|active|delayed"}))`),
    promByQueue(prometheusUrl, `histogram_quantile(0.95, sum by (queue, le) (increase(bullmq_job_e2e_seconds_bucket[${w}])))`),
  ]);
  const queues = new Set([...Object.keys(completed), ...Object.keys(failed), ...Object.keys(backlog)]);
  return Object.fromEntries(
    [...queues].map((q) => [
      q,
      {
        completed: Math.round(completed[q] ?? 0),
        failed: Math.round(failed[q] ?? 0),
        backlog: backlog[q] ?? 0,
        e2eP95Seconds: Number.isFinite(p95[q]) ? p95[q]! : null,
      },
    ]),
  );
}

/** The start of a run: the time, and (API source) every queue's completed and failed counts. */
export async function markJobs(o: JobsVerdictOptions): Promise<JobsMark> {
  const at = new Date().toISOString();
  if (o.prometheusUrl) return { at, counts: {} };
  const now = await readApi(o.baseUrl);
  return { at, counts: Object.fromEntries(Object.entries(now).map(([q, r]) => [q, { completed: r.completed, failed: r.failed }])) };
}

/** Verdicts on one queue's jobs against its critical thresholds; a queue where no job finished fails. */
export function jobVerdicts(r: JobQueueResult, t: Thresholds): Verdict[] {
  const ratioLimit = forQueue(t, r.queue, 'job_error_ratio').critical;
  const p95Limit = forQueue(t, r.queue, 'job_latency_p95_seconds').critical;
  const finished = r.completed + r.failed;
  return [
    { queue: r.queue, check: 'jobs drained', limit: 0, actual: r.backlog, pass: r.drained },
    { queue: r.queue, check: 'job failure ratio', limit: ratioLimit, actual: Number(r.failureRatio.toFixed(4)), pass: finished > 0 && r.failureRatio < ratioLimit },
    // No completed job: no latency to judge, and the failure ratio (1) has failed the queue already.
    { queue: r.queue, check: 'job e2e p95 (s)', limit: p95Limit, actual: r.e2eP95Seconds ?? 0, pass: r.e2eP95Seconds === null ? r.completed === 0 : r.e2eP95Seconds < p95Limit },
  ];
}

/**
 * After the load: waits up to drainTimeoutMs for every judged queue's backlog to reach 0, then reads and judges.
 * `queues`: the queues the load sent to (others are not judged).
 */
export async function judgeJobs(o: JobsVerdictOptions, mark: JobsMark, queues: readonly string[], t: Thresholds = loadThresholds()): Promise<JobsReport> {
  const started = Date.parse(mark.at);
  const read = () => (o.prometheusUrl ? readPrometheus(o.prometheusUrl, (Date.now() - started) / 1000) : readApi(o.baseUrl));
  const deadline = Date.now() + (o.drainTimeoutMs ?? 120_000);
  let now = await read();
  while (queues.some((q) => (now[q]?.backlog ?? 0) > 0) && Date.now() < deadline) {
    await sleep(o.pollMs ?? 1_000);
    now = await read();
  }
  const results = queues.map((queue): JobQueueResult => {
    const r = now[queue] ?? { completed: 0, failed: 0, backlog: 0, e2eP95Seconds: null };
    const before = o.prometheusUrl ? { completed: 0, failed: 0 } : (mark.counts[queue] ?? { completed: 0, failed: 0 });
    // Retention trims the API's counts, so a delta can come out below zero: it then counts as none.
    const completed = Math.max(0, r.completed - before.completed);
    const failed = Math.max(0, r.failed - before.failed);
    return {
      queue,
      completed,
      failed,
      failureRatio: completed + failed > 0 ? failed / (completed + failed) : 1,
      e2eP95Seconds: completed > 0 ? r.e2eP95Seconds : null,
      drained: r.backlog === 0,
      backlog: r.backlog,
    };
  });
  const verdicts = results.flatMap((r) => jobVerdicts(r, t));
  return {
    source: o.prometheusUrl ? 'prometheus' : 'api',
    windowSeconds: Math.round((Date.now() - started) / 1000),
    queues: results,
    verdicts,
    passed: verdicts.every((v) => v.pass),
  };
}

export function formatJobsReport(r: JobsReport): string {
  const lines = [
    `jobs (from ${r.source === 'prometheus' ? 'Prometheus' : 'the API'}, over ${r.windowSeconds} s)`,
    'queue          completed  failed  failure ratio  e2e p95 s  backlog',
  ];
  for (const q of r.queues) {
    lines.push(
      `${q.queue.padEnd(14)} ${String(q.completed).padStart(9)} ${String(q.failed).padStart(7)} ${q.failureRatio.toFixed(4).padStart(14)} ` +
        `${(q.e2eP95Seconds === null ? '-' : q.e2eP95Seconds.toFixed(3)).padStart(10)} ${String(q.backlog).padStart(8)}`,
    );
  }
  for (const v of r.verdicts) lines.push(`${v.pass ? '✓' : '✗'} ${v.queue} ${v.check}: ${v.actual} (limit ${v.limit})`);
  const failing = [...new Set(r.verdicts.filter((v) => !v.pass).map((v) => v.queue))];
  lines.push(failing.length ? `JOBS FAIL: ${failing.join(', ')}` : 'JOBS PASS');
  return lines.join('\n') + '\n';
}

const DEFAULT_MARK = path.join(LOADTEST_DIR, '..', 'loadtest-results', 'jobs-mark.json');

const USAGE = `usage: npm run loadtest:verdict -- [--mark] [--base-url URL] [--prometheus-url URL] [--queues a,b]
                                [--mark-file FILE] [--drain-timeout 120s] [--out FILE]
  --mark            take the start mark (before k6) and exit; without it: judge the jobs since the mark
  --base-url        the API, whose GET /queue/metrics is read without Prometheus (default http://127.0.0.1:3000; env BASE_URL)
  --prometheus-url  read counts and e2e latency from this Prometheus instead (env PROMETHEUS_URL)
  --queues          the queues to judge (default: every queue of loadtest/scenarios.json's mix)
  --mark-file       where the mark is kept (default loadtest-results/jobs-mark.json)
  --drain-timeout   how long to wait for the backlog to drain (default 120s)
  --out             also write the jobs report as JSON here
exit code: 0 every queue's jobs held, 1 a queue failed (named), 2 usage or run error
`;

export interface VerdictCliArgs {
  options: JobsVerdictOptions;
  mark: boolean;
  markFile: string;
  queues?: string[];
  out?: string;
  help: boolean;
}

export function parseVerdictArgs(argv: string[], env: Record<string, string | undefined>): VerdictCliArgs {
  const flags = parseFlags(
    argv,
    {
      mark: { type: 'boolean' },
      'base-url': { type: 'string' },
      'prometheus-url': { type: 'string' },
      queues: { type: 'string' },
      'mark-file': { type: 'string' },
      'drain-timeout': { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean' },
    },
    USAGE,
  );
  const drainTimeoutMs = durationFlag('drain-timeout', flags['drain-timeout'], USAGE);
  const prometheusUrl = flags['prometheus-url'] ?? env.PROMETHEUS_URL;
  return {
    help: flags.help === true,
    mark: flags.mark === true,
    markFile: flags['mark-file'] ?? DEFAULT_MARK,
    queues: flags.queues?.split(',').map((q) => q.trim()).filter(Boolean),
    out: flags.out,
    options: {
      baseUrl: httpUrl('base-url', flags['base-url'] ?? env.BASE_URL ?? 'http://127.0.0.1:3000', USAGE),
      prometheusUrl: prometheusUrl === undefined ? undefined : httpUrl('prometheus-url', prometheusUrl, USAGE),
      drainTimeoutMs,
    },
  };
}

async function main(argv: string[]): Promise<number> {
  const args = parseVerdictArgs(argv, process.env);
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.mark) {
    mkdirSync(path.dirname(args.markFile), { recursive: true });
    writeFileSync(args.markFile, JSON.stringify(await markJobs(args.options), null, 2));
    process.stdout.write(`jobs mark written to ${args.markFile}\n`);
    return 0;
  }
  let mark: JobsMark;
  try {
    mark = JSON.parse(readFileSync(args.markFile, 'utf8')) as JobsMark;
  } catch {
    throw new UsageError(`no start mark in ${args.markFile}: run "npm run loadtest:verdict -- --mark" before the load`, USAGE);
  }
  const queues = args.queues ?? loadScenarios().mix.map((m) => m.queue);
  const report = await judgeJobs(args.options, mark, queues);
  process.stdout.write(formatJobsReport(report));
  if (args.out) writeFileSync(args.out, JSON.stringify(report, null, 2));
  return report.passed ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: Error) => {
      process.stderr.write(`${err instanceof UsageError ? '' : 'load-test verdict failed: '}${err.message}\n`);
      process.exitCode = 2;
    },
  );
}
