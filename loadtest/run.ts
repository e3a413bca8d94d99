/**
 * The load runner that needs no k6 (autocannon): same scenarios file and thresholds as the k6 script, VU mode
 * (VUs with think time, like the k6 scenarios) or rate mode (--rate N req/s across the mix), live progress,
 * per-queue p50/p95/p99 and error ratio, the same verdicts, exit code 1 when a threshold fails. Then the jobs'
 * side (verdict.ts): the backlog drained, each queue's job failure ratio and e2e p95 within thresholds.yaml.
 *
 *   npm run loadtest -- --scenario smoke --base-url http://127.0.0.1:3000 --api-key KEY --webhook-url URL
 *   BASE_URL=… API_KEY=… WEBHOOK_TARGET_URL=… npm run loadtest -- --scenario smoke     (same names as k6)
 *
 * Each queue gets its own autocannon instance (connections by weight), so latencies are per queue; one latency
 * histogram per queue spans all stages. Stages run back to back at their target (autocannon does not ramp).
 * VU mode: one connection per VU, each sending one request per think time (a k6 VU that posts then sleeps).
 * Rate mode: autocannon paces each connection per second; the runner opens enough connections for requests
 * slower than 500 ms, which approximates an open loop, and reports the achieved rate next to the target (when
 * the API is slower than that, the achieved rate falls short and the report says so). k6's
 * constant-arrival-rate executor (RATE=… with loadtest/k6) is the exact open-loop tool.
 * Both modes split each queue into up to 20 autocannon instances started across the first second (lanes), so
 * the load arrives in small bursts every 50 ms rather than in one burst per second.
 */
import autocannon from 'autocannon';
import * as hdr from 'hdr-histogram-js';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { loadLoadThresholds, loadScenarios, parseDuration, payloadFor, splitByWeight, LOADTEST_DIR, type ScenarioFile } from './lib/scenarios';
import { verdicts, type QueueResult, type Verdict } from './lib/verdict';
import { formatJobsReport, judgeJobs, markJobs, type JobsReport, type JobsVerdictOptions } from './verdict';
import { httpUrl, parseFlags, positiveNumber, UsageError } from '../scripts/lib/cli';

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

interface QueueStats {
  histogram: hdr.Histogram;
  requests: number;
  errors: number;
  statuses: Record<string, number>;
}

/** Connections for one queue in rate mode: each connection paces ~2 req/s, so requests up to 500 ms keep up. */
export function rateConnections(rate: number): number {
  return Math.max(1, Math.min(Math.round(rate), Math.max(4, Math.ceil(rate / 2)), 1000));
}

/** Per-queue connections and per-second rates for one stage. */
export function stagePlan(file: ScenarioFile, target: number, rate: number | undefined): Record<string, { connections: number; rate: number }> {
  if (rate) {
    const rates = splitByWeight(file, rate);
    return Object.fromEntries(Object.entries(rates).map(([q, r]) => [q, { connections: rateConnections(r), rate: r }]));
  }
  const vus = splitByWeight(file, target);
  return Object.fromEntries(Object.entries(vus).map(([q, v]) => [q, { connections: v, rate: (v * 1000) / file.thinkTimeMs }]));
}

/**
 * Splits a queue's connections and rate into lanes started evenly across the first second. autocannon paces per
 * connection in one-second windows that all open together, so one instance sends each second's requests in a
 * single burst; staggered lanes turn that into LANES smaller bursts spread over the second.
 */
export const MAX_LANES = 20;
export function lanes(plan: { connections: number; rate: number }): { connections: number; rate: number; offsetMs: number }[] {
  const n = Math.max(1, Math.min(MAX_LANES, plan.connections, Math.floor(plan.rate)));
  return Array.from({ length: n }, (_, i) => ({
    connections: Math.floor(plan.connections / n) + (i < plan.connections % n ? 1 : 0),
    rate: plan.rate / n,
    offsetMs: Math.round((i * 1000) / n),
  }));
}

/** A new key for every request: each load-test payment is its own intent (Stripe-style keys are UUIDs too). */
export const newIdempotencyKey = (): string => `loadtest-${randomUUID()}`;

/**
 * autocannon's request for one queue. Queues listed in scenarios.json `idempotentQueues` get a fresh
 * Idempotency-Key per request through `setupRequest`, which autocannon calls every time it builds a request.
 */
export function laneRequest(baseUrl: string, apiKey: string, queue: string, body: string, idempotent: boolean): autocannon.Request {
  return {
    method: 'POST',
    path: `${new URL(baseUrl).pathname.replace(/\/$/, '')}/v1/queues/${queue}/jobs`,
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body,
    ...(idempotent ? { setupRequest: (req: autocannon.Request) => ({ ...req, headers: { ...req.headers, 'idempotency-key': newIdempotencyKey() } }) } : {}),
  };
}

function runLane(o: RunOptions, queue: string, request: autocannon.Request, lane: { connections: number; rate: number }, seconds: number, stats: QueueStats) {
  return new Promise<void>((resolve, reject) => {
    const instance = autocannon(
      {
        url: o.baseUrl,
        requests: [request],
        connections: lane.connections,
        overallRate: Math.max(1, Math.round(lane.rate)),
        duration: seconds,
        timeout: 10,
      },
      (err) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve()),
    );
    instance.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
      stats.requests++;
      stats.histogram.recordValue(Math.max(1, Math.round(responseTimeMs * 1000)));
      stats.statuses[statusCode] = (stats.statuses[statusCode] ?? 0) + 1;
      if (statusCode !== 202) stats.errors++;
    });
    instance.on('reqError', () => {
      stats.requests++;
      stats.errors++;
      stats.statuses.error = (stats.statuses.error ?? 0) + 1;
    });
  });
}

function runQueue(o: RunOptions, queue: string, request: autocannon.Request, plan: { connections: number; rate: number }, seconds: number, stats: QueueStats) {
  const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
  return Promise.all(lanes(plan).map((lane) => delay(lane.offsetMs).then(() => runLane(o, queue, request, lane, seconds, stats))));
}

export async function runLoad(o: RunOptions): Promise<RunReport> {
  const file = loadScenarios(o.scenariosFile);
  const sc = file.scenarios[o.scenario];
  if (!sc) throw new Error(`unknown scenario "${o.scenario}"; known: ${Object.keys(file.scenarios).join(', ')}`);
  if (o.rate !== undefined && !(o.rate > 0)) throw new Error('--rate must be a number of requests per second > 0');
  if (o.scale !== undefined && !(o.scale > 0)) throw new Error('--scale must be a number > 0');
  const stages = sc.stages.map((st) => ({ seconds: parseDuration(o.duration ?? st.duration) / 1000, target: Math.max(1, Math.round(st.target * (o.scale ?? 1))) }));
  const totalSeconds = stages.reduce((a, s) => a + s.seconds, 0);
  const stats: Record<string, QueueStats> = Object.fromEntries(
    file.mix.map(({ queue }) => [
      queue,
      { histogram: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 }), requests: 0, errors: 0, statuses: {} },
    ]),
  );
  const jobsMark = o.jobs ? await markJobs(o.jobs) : undefined;
  const started = Date.now();
  const log = (s: string) => o.quiet || process.stdout.write(s);
  const totals = () => Object.values(stats).reduce((a, s) => ({ requests: a.requests + s.requests, errors: a.errors + s.errors }), { requests: 0, errors: 0 });
  let last = { at: started, requests: 0 };
  const progress = setInterval(() => {
    const now = Date.now();
    const { requests, errors } = totals();
    const rps = ((requests - last.requests) * 1000) / Math.max(1, now - last.at);
    last = { at: now, requests };
    const perQueue = Object.entries(stats)
      .map(([q, s]) => `${q} ${s.requests}${s.errors ? ` (${s.errors} err)` : ''}`)
      .join(', ');
    log(`  ${((now - started) / 1000).toFixed(0)}s/${totalSeconds.toFixed(0)}s  ${requests} requests, ${rps.toFixed(0)} req/s now, ${errors} errors  [${perQueue}]\n`);
  }, o.progressMs ?? 5_000);
  let targetRequests = 0;
  try {
    for (const stage of stages) {
      const plan = stagePlan(file, stage.target, o.rate);
      const stageRps = Object.values(plan).reduce((a, p) => a + p.rate, 0);
      targetRequests += stageRps * stage.seconds;
      log(`stage ${stage.seconds}s: ${o.rate ? `${o.rate} req/s` : `${stage.target} VUs (≤ ${stageRps.toFixed(0)} req/s)`} — ${Object.entries(plan).map(([q, p]) => `${q} ${p.connections} conn ${p.rate.toFixed(0)} req/s`).join(', ')}\n`);
      await Promise.all(
        file.mix.map(({ queue }) => {
          const body = payloadFor(file, queue, { WEBHOOK_TARGET_URL: o.webhookUrl });
          const request = laneRequest(o.baseUrl, o.apiKey, queue, body, file.idempotentQueues.includes(queue));
          return runQueue(o, queue, request, plan[queue]!, stage.seconds, stats[queue]!);
        }),
      );
    }
  } finally {
    clearInterval(progress);
  }
  const durationMs = Date.now() - started;
  const ms = (h: hdr.Histogram, q: number) => (h.totalCount ? Math.round(h.getValueAtPercentile(q)) / 1000 : 0);
  const queues: QueueResult[] = Object.entries(stats).map(([queue, s]) => ({
    queue,
    requests: s.requests,
    errors: s.errors,
    p50: ms(s.histogram, 50),
    p95: ms(s.histogram, 95),
    p99: ms(s.histogram, 99),
    statuses: s.statuses,
  }));
  const v = verdicts(queues, loadLoadThresholds());
  const { requests } = totals();
  if (o.jobs) log(`waiting for the jobs to drain, then judging them (${o.jobs.prometheusUrl ? 'Prometheus' : 'the API'})\n`);
  const jobs = o.jobs && jobsMark ? await judgeJobs(o.jobs, jobsMark, file.mix.map((m) => m.queue)) : undefined;
  const targetRps = targetRequests / totalSeconds;
  // Over the time each lane was sending (the stages' durations), not the wall time with lane offsets and drain.
  const achievedRps = requests / totalSeconds;
  const warnings: string[] = [];
  if (o.rate && achievedRps < 0.9 * targetRps) {
    warnings.push(`achieved ${achievedRps.toFixed(0)} req/s of the ${targetRps.toFixed(0)} req/s target: the API answered too slowly for the open connections, so latencies are understated (use k6 with RATE for a strict open loop)`);
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
                        [--rate REQ_PER_S] [--duration 30s] [--scale 0.1] [--out DIR]
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
      help: { type: 'boolean' },
    },
    USAGE,
  );
  const help = flags.help === true;
  const apiKey = flags['api-key'] ?? env.API_KEY ?? '';
  if (!apiKey && !help) throw new UsageError("--api-key (or API_KEY) is required: one of the API's API_KEYS", USAGE);
  if (flags.duration) {
    try {
      parseDuration(flags.duration);
    } catch (err) {
      throw new UsageError(`--duration: ${(err as Error).message}`, USAGE);
    }
  }
  let drainTimeoutMs: number | undefined;
  if (flags['drain-timeout']) {
    try {
      drainTimeoutMs = parseDuration(flags['drain-timeout']);
    } catch (err) {
      throw new UsageError(`--drain-timeout: ${(err as Error).message}`, USAGE);
    }
  }
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
