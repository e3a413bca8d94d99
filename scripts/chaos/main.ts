/**
 * npm run chaos -- [--duration 5m] [--seed N] [--topology single|replicated|cluster] [--report DIR] [--rate N]
 *
 * A randomized fault campaign against the native stack with an independent exactly-once checker (campaign.ts).
 * Prints one summary line; exit 0 when every invariant holds, 1 when one fails (naming the first failing job and
 * the faults around it), 2 on bad usage. Bounded: the whole run is aborted (and cleaned up) after the duration
 * plus 6 minutes; SIGINT/SIGTERM clean up too (processes, namespace, veths).
 */
import path from 'node:path';
import { integerIn, oneOf, parseFlags, positiveNumber, UsageError } from '../lib/cli';
import { killStartedProcesses } from '../lib/process';
import { repoPath } from '../lib/repo-root';
import { Cleanup, runCampaign } from './campaign';
import { summaryLine } from './report';
import { TOPOLOGIES, type Topology } from './schedule';

const USAGE = `usage: npm run chaos -- [--duration 5m] [--seed N] [--topology ${TOPOLOGIES.join('|')}] [--report DIR] [--rate REQ_PER_S]
  --duration  load time: 90s, 5m or seconds (default 5m); faults stop 10 s before its end, then the stack drains
  --seed      0..4294967295 (default: random, printed); the same seed replays the same fault schedule
  --topology  single (default): one Redis with AOF in its own netns; replicated: primary + replica + Sentinel;
              cluster: 3 masters + 3 replicas
  --report    folder for report.md, report.json, history.jsonl, truth.json, logs/ (default chaos-report/)
  --rate      requests per second (default 25)`;

export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--duration must look like 90s, 5m or 120, got "${text}"`, USAGE);
  const s = Number(m[1]) * (m[2] === 'm' ? 60 : 1);
  if (s < 20 || s > 3_600) throw new UsageError(`--duration must be between 20 s and 60 m, got "${text}"`, USAGE);
  return Math.round(s);
}

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2), {
    duration: { type: 'string', default: '5m' },
    seed: { type: 'string' },
    topology: { type: 'string', default: 'single' },
    report: { type: 'string', default: 'chaos-report' },
    rate: { type: 'string' },
  }, USAGE);
  const durationS = parseDuration(flags.duration);
  const seed = integerIn('seed', flags.seed, 0, 4_294_967_295, USAGE) ?? Math.floor(Math.random() * 4_294_967_296);
  const topology: Topology = oneOf('topology', flags.topology, TOPOLOGIES, USAGE);
  const ratePerS = positiveNumber('rate', flags.rate, USAGE) ?? 25;
  const reportDir = path.resolve(repoPath(), flags.report);
  if (process.getuid?.() !== 0 && topology === 'single') {
    process.stderr.write('chaos: the single topology puts Redis in its own network namespace (ip netns): run as root\n');
    return 2;
  }

  const cleanup = new Cleanup();
  const abort = (why: string, code: number) => {
    process.stderr.write(`chaos: ${why}; cleaning up\n`);
    void cleanup.run().finally(() => {
      killStartedProcesses();
      process.exit(code);
    });
  };
  process.once('SIGINT', () => abort('interrupted', 130));
  process.once('SIGTERM', () => abort('terminated', 143));
  const bound = setTimeout(() => abort(`still running ${durationS + 360} s after the start`, 1), (durationS + 360) * 1_000);
  bound.unref();
  try {
    const report = await runCampaign({ seed, durationS, topology, reportDir, ratePerS, log: (l) => process.stderr.write(`${l}\n`) }, cleanup);
    process.stdout.write(`${summaryLine(report)}\n`);
    return report.ok ? 0 : 1;
  } finally {
    await cleanup.run();
  }
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof UsageError ? err.message : `chaos: ${(err as Error).stack ?? String(err)}`}\n`);
      process.exit(err instanceof UsageError ? 2 : 1);
    },
  );
}
