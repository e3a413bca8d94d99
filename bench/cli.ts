/**
 * `npm run bench -- [options]`: parsed once with node:util parseArgs; a bad value is a usage error (exit 2),
 * never a silent default.
 */
import { parseArgs } from 'node:util';

export const STAGES = ['baseline', 'fixed', 'capacity', 'overhead', 'cost', 'outbound', 'cluster'] as const;
export type Stage = (typeof STAGES)[number];

export interface BenchOptions {
  /** ≤ 3 min: the cost stage's ratios only (other stages with --only, in shorter windows), instead of ≈ 25 min. */
  quick: boolean;
  stages: Stage[];
  /** Worker concurrency per queue (WORKER_CONCURRENCY_PAYMENTS / _NOTIFICATIONS). */
  concurrency: number;
  /** Run API and workers with --cpu-prof and summarize their profiles in the report. */
  profile: boolean;
  /** Where the Markdown report is written (--out); without it, docs/benchmarks.md for complete full runs only. */
  out: string | undefined;
  /** Also save the raw results (JSON) here, so the page can be rendered again with --render. */
  json: string | undefined;
  /** Render the report from saved results instead of measuring. */
  render: string | undefined;
  /** Exit 1 when CPU per job, stack ÷ bare reference, is above this (the CI regression guard). */
  failAbove: number | undefined;
}

export const USAGE = `usage: npm run bench -- [options]

  --quick             ≤ 3 min: only the cost stage's ratios (stack ÷ bare, ÷ typical, ÷ plain BullMQ,
                      telemetry on ÷ off) and the outbound boundary's cost per job, in shorter windows;
                      with --only, those stages in short windows
                      (default: the full run of every stage, ≈ 25 min)
  --only LIST         stages to run, comma-separated: ${STAGES.join(',')} (default: all)
  --concurrency N     worker concurrency per queue, a positive integer (default 50)
  --profile           run API and workers with --cpu-prof; the report lists their hottest functions
  --out FILE          write the Markdown report to FILE (default: docs/benchmarks.md when the results are
                      of a full run of every stage; a quick or partial run is only printed)
  --json FILE         also save the raw results as JSON
  --render FILE       measure nothing: render the report from results saved with --json
  --fail-above RATIO  exit 1 when CPU per job, stack ÷ bare Fastify + BullMQ, is above RATIO (a number > 1;
                      the CI regression guard: npm run bench -- --quick --fail-above 1.6)
  -h, --help          this text`;

export class UsageError extends Error {
  override name = 'UsageError';
}

function positiveInt(name: string, raw: string): number {
  if (!/^[1-9]\d*$/.test(raw)) throw new UsageError(`--${name} must be a positive integer, got "${raw}"`);
  return Number(raw);
}

function ratioBound(raw: string): number {
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !(n > 1)) throw new UsageError(`--fail-above must be a ratio above 1 (e.g. 1.6), got "${raw}"`);
  return n;
}

function stageList(raw: string): Stage[] {
  const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new UsageError(`--only needs at least one stage of ${STAGES.join(', ')}`);
  for (const s of list) {
    if (!(STAGES as readonly string[]).includes(s)) throw new UsageError(`--only: unknown stage "${s}"; known: ${STAGES.join(', ')}`);
  }
  return STAGES.filter((s) => list.includes(s));
}

/** Parses argv (without node and script). Returns undefined for --help; throws UsageError on bad input. */
export function parseBenchArgs(argv: string[]): BenchOptions | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        concurrency: { type: 'string', default: '50' },
        profile: { type: 'boolean', default: false },
        out: { type: 'string' },
        json: { type: 'string' },
        render: { type: 'string' },
        'fail-above': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    // parseArgs' own messages name the bad option ("Unknown option '--x'", "Option '--out <value>' argument missing").
    throw new UsageError((err as Error).message);
  }
  if (values.help) return undefined;
  for (const name of ['out', 'json', 'render'] as const) {
    const v = values[name];
    if (v !== undefined && (v === '' || v.startsWith('-'))) throw new UsageError(`--${name} needs a file name, got "${v}"`);
  }
  const failAbove = values['fail-above'] === undefined ? undefined : ratioBound(values['fail-above']);
  const stages: Stage[] = values.only === undefined ? (values.quick ? ['cost', 'outbound'] : [...STAGES]) : stageList(values.only);
  if (failAbove !== undefined && !stages.includes('cost') && values.render === undefined) throw new UsageError('--fail-above needs the cost stage (it measures stack ÷ bare)');
  return {
    quick: values.quick,
    stages,
    concurrency: positiveInt('concurrency', values.concurrency),
    profile: values.profile,
    out: values.out,
    json: values.json,
    render: values.render,
    failAbove,
  };
}
