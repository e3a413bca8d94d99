/**
 * `--profile`: API and workers run with `node --cpu-prof` (one directory per kind); after the run their
 * .cpuprofile files are reduced to the hottest functions by self time, for the report. The hot spots are thus
 * always those of the code that was measured, never a list written down once.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ProfileSummary } from './results';
import { ROOT } from './stack';

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
