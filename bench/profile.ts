/**
 * `--profile`: API and workers run with `node --cpu-prof` (one directory per kind); after the run their
 * .cpuprofile files are reduced to the hottest functions by self time, for the report. The hot spots are thus
 * always those of the code that was measured, never a list written down once.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ROOT } from './stack';

/** The hottest functions of one service kind, from its CPU profiles (--profile). */
export interface ProfileSummary {
  kind: 'api' | 'worker';
  files: number;
  totalMs: number;
  /** Share of samples in V8's garbage collector. */
  gcPct: number;
  top: { fn: string; where: string; selfPct: number }[];
}

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples: number[];
  timeDeltas: number[];
}

const NOT_CODE = new Set(['(idle)', '(program)', '(root)']);

/** A script URL as a short repository-relative path (node_modules/<pkg>/… for dependencies). */
function where(url: string, line: number): string {
  if (!url) return 'native';
  const file = url.replace(/^file:\/\//, '');
  const rel = file.startsWith(ROOT) ? path.relative(ROOT, file) : file;
  return `${rel}:${line + 1}`;
}

/** Summarizes every profile of one service kind under `dir/<kind>`; undefined when there is none. */
export function summarizeProfiles(dir: string, kind: 'api' | 'worker', top = 12): ProfileSummary | undefined {
  const kindDir = path.join(dir, kind);
  if (!existsSync(kindDir)) return undefined;
  const files = readdirSync(kindDir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) return undefined;
  const selfUs = new Map<string, { fn: string; where: string; us: number }>();
  let codeUs = 0;
  let gcUs = 0;
  let totalUs = 0;
  for (const f of files) {
    const profile = JSON.parse(readFileSync(path.join(kindDir, f), 'utf8')) as CpuProfile;
    const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    profile.samples.forEach((id, i) => {
      const us = profile.timeDeltas[i] ?? 0;
      totalUs += us;
      const frame = byId.get(id);
      if (!frame || NOT_CODE.has(frame.functionName)) return;
      codeUs += us;
      if (frame.functionName === '(garbage collector)') gcUs += us;
      const fn = frame.functionName || '(anonymous)';
      const at = where(frame.url, frame.lineNumber);
      const key = `${fn} ${at}`;
      const entry = selfUs.get(key) ?? { fn, where: at, us: 0 };
      entry.us += us;
      selfUs.set(key, entry);
    });
  }
  const pct = (us: number) => (codeUs ? (us / codeUs) * 100 : 0);
  return {
    kind,
    files: files.length,
    totalMs: totalUs / 1000,
    gcPct: pct(gcUs),
    top: [...selfUs.values()].sort((a, b) => b.us - a.us).slice(0, top).map((e) => ({ fn: e.fn, where: e.where, selfPct: pct(e.us) })),
  };
}

/** Where a job's CPU goes, by component — the explanation of the cost ratio (bench/stages/cost.ts). */
export const COMPONENTS = ['http', 'redis client', 'bullmq', 'telemetry: metrics', 'telemetry: spans', 'telemetry: span export', 'app', 'logging', 'gc', 'node runtime'] as const;
export type Component = (typeof COMPONENTS)[number];
/** The components that exist only because of telemetry (their sum is telemetry's own CPU). */
export const TELEMETRY_COMPONENTS = ['telemetry: metrics', 'telemetry: spans', 'telemetry: span export'] as const satisfies readonly Component[];

/** Matched from the sampled frame up to the root: the nearest frame of a known component names the sample. */
const COMPONENT_OF: [Component, RegExp][] = [
  ['telemetry: span export', /@opentelemetry\/(otlp-|exporter-)/],
  ['telemetry: metrics', /\/prom-client\/|services\/common\/telemetry\/(registry|[a-z-]*metrics)/],
  ['telemetry: spans', /@opentelemetry\/|services\/common\/telemetry\/|services\/api\/plugins\/app\/telemetry/],
  ['bullmq', /\/node_modules\/(bullmq|msgpackr)\//],
  ['redis client', /\/node_modules\/(ioredis|@ioredis|redis-parser|denque|cluster-key-slot)\//],
  ['logging', /\/node_modules\/(pino|sonic-boom|thread-stream|pino-std-serializers)\//],
  ['http', /^node:_http|\/node_modules\/(fastify|@fastify|find-my-way|avvio|light-my-request|secure-json-parse|fast-json-stringify|ajv|fast-uri|@sinclair|fast-querystring|toad-cache|rfdc|content-type)\//],
  ['app', /\/dist\/(services|bench)\//],
];

export interface ComponentShares {
  /** Profiles summarized (one per process). */
  files: number;
  /** Share (%) of the samples that ran code after start-up, per component. */
  shares: Record<Component, number>;
}

/**
 * Shares of CPU per component over every .cpuprofile in `dir`. Samples under module loading (start-up) and idle
 * samples are left out; a native frame (a socket write, a hash) counts for the component that called it.
 */
export function componentShares(dir: string): ComponentShares | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) return undefined;
  const us = Object.fromEntries(COMPONENTS.map((c) => [c, 0])) as Record<Component, number>;
  let total = 0;
  for (const f of files) {
    const profile = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as CpuProfile & { nodes: { id: number; children?: number[] }[] };
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
    const component = new Map<number, Component | 'startup'>();
    const classify = (id: number): Component | 'startup' => {
      const known = component.get(id);
      if (known) return known;
      let found: Component | 'startup' = 'node runtime';
      for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
        const url = byId.get(at)?.url ?? '';
        if (url.startsWith('node:internal/modules')) {
          found = 'startup';
          break;
        }
        const hit: [Component, RegExp] | undefined = found === 'node runtime' ? COMPONENT_OF.find(([, re]) => re.test(url)) : undefined;
        if (hit) found = hit[0]; // keep walking: a start-up ancestor still wins
      }
      component.set(id, found);
      return found;
    };
    profile.samples.forEach((id, i) => {
      const name = byId.get(id)?.functionName ?? '';
      if (NOT_CODE.has(name)) return;
      const c = name === '(garbage collector)' ? 'gc' : classify(id);
      if (c === 'startup') return;
      const t = profile.timeDeltas[i] ?? 0;
      us[c] += t;
      total += t;
    });
  }
  const shares = Object.fromEntries(COMPONENTS.map((c) => [c, total ? (us[c] / total) * 100 : 0])) as Record<Component, number>;
  return { files: files.length, shares };
}
