/** Reads loadtest/scenarios.json and loadtest/thresholds.json (generated from observability/thresholds.yaml). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDuration } from '../../scripts/lib/cli';

export interface Stage {
  duration: string;
  target: number;
}

export interface ScenarioFile {
  thinkTimeMs: number;
  mix: { queue: string; weight: number }[];
  /** Queues whose every request carries a new Idempotency-Key (each payment is a new intent). */
  idempotentQueues: string[];
  payloads: Record<string, unknown>;
  scenarios: Record<string, { description: string; stages: Stage[] }>;
  progressive: string[];
}

export interface LoadThresholds {
  error_ratio: number;
  default_http_p95_ms: number;
  queues: Record<string, { http_p95_ms: number }>;
}

export const LOADTEST_DIR = path.resolve(__dirname, '..', __dirname.includes(`${path.sep}dist${path.sep}`) ? '../../loadtest' : '');

export function loadScenarios(file = path.join(LOADTEST_DIR, 'scenarios.json')): ScenarioFile {
  return validateScenarios(JSON.parse(readFileSync(file, 'utf8')) as ScenarioFile, file);
}

/** Checks the scenarios file's shape; every runner fails early with a message naming the bad entry. */
export function validateScenarios(s: ScenarioFile, where = 'scenarios.json'): ScenarioFile {
  const fail = (msg: string): never => {
    throw new Error(`${where}: ${msg}`);
  };
  if (!(typeof s.thinkTimeMs === 'number' && s.thinkTimeMs > 0)) fail('thinkTimeMs must be a number > 0');
  if (!Array.isArray(s.mix) || !s.mix.length) fail('mix must list at least one queue');
  for (const m of s.mix) if (!(typeof m.weight === 'number' && m.weight >= 0)) fail(`mix weight of "${m.queue}" must be a number >= 0`);
  const total = s.mix.reduce((a, m) => a + m.weight, 0);
  if (total <= 0) fail('mix weights must add up to more than 0');
  for (const m of s.mix) if (!s.payloads?.[m.queue]) fail(`no payload for queue "${m.queue}"`);
  if (!Array.isArray(s.idempotentQueues)) fail('idempotentQueues must list the queues that get a new Idempotency-Key per request ([] for none)');
  for (const q of s.idempotentQueues) if (!s.mix.some((m) => m.queue === q)) fail(`idempotentQueues names "${q}", which is not in the mix`);
  if (!s.scenarios || !Object.keys(s.scenarios).length) fail('no scenarios');
  for (const [name, sc] of Object.entries(s.scenarios)) {
    if (!sc.stages?.length) fail(`scenario "${name}" has no stages`);
    for (const st of sc.stages) {
      try {
        parseDuration(st.duration);
      } catch (err) {
        fail(`scenario "${name}": ${(err as Error).message}`);
      }
      if (!(Number.isInteger(st.target) && st.target > 0)) fail(`scenario "${name}": target must be an integer > 0`);
    }
  }
  for (const p of s.progressive ?? []) if (!s.scenarios[p]) fail(`progressive names unknown scenario "${p}"`);
  return s;
}

export function loadLoadThresholds(file = path.join(LOADTEST_DIR, 'thresholds.json')): LoadThresholds {
  return JSON.parse(readFileSync(file, 'utf8')) as LoadThresholds;
}

/** Payload for a queue with ${VARS} replaced. */
export function payloadFor(s: ScenarioFile, queue: string, vars: Record<string, string>): string {
  return JSON.stringify(s.payloads[queue]).replace(/\$\{(\w+)\}/g, (_, k: string) => {
    if (vars[k] === undefined) throw new Error(`payload for ${queue} needs ${k}`);
    return vars[k];
  });
}
