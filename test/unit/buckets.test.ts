/**
 * The end-to-end histogram has a bucket boundary at every latency objective and threshold of the one threshold
 * source, so "share of jobs within the objective" is an exact bucket ratio. Scans observability/thresholds.yaml
 * for every number under a latency key measured in seconds, whatever section holds it.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { BUCKETS } from '../../services/common/telemetry/registry';

function latencySeconds(node: unknown, keys: string[] = [], out: { at: string; value: number }[] = []) {
  if (typeof node === 'number') {
    if (keys.some((k) => k.includes('latency')) && keys.some((k) => k.includes('seconds'))) out.push({ at: keys.join('.'), value: node });
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) latencySeconds(v, [...keys, k], out);
  }
  return out;
}

t.test('every latency threshold in thresholds.yaml is a bullmq_job_e2e_seconds bucket boundary', async (t) => {
  const thresholds = YAML.parse(readFileSync(path.join(__dirname, '..', '..', 'observability', 'thresholds.yaml'), 'utf8'));
  const found = latencySeconds(thresholds);
  t.ok(found.length >= 8, `latency thresholds found (${found.length})`);
  const bounds: readonly number[] = BUCKETS.jobE2e;
  for (const { at, value } of found) t.ok(bounds.includes(value), `${at} = ${value} s is a boundary`);
  // The objectives named by the SLO contract (payments 1.5 s, notifications 1 s, webhooks 3 s) in any case.
  for (const v of [1.5, 1, 3, 0.6, 0.8, 2]) t.ok(bounds.includes(v), `${v} s is a boundary`);
  t.same([...bounds].sort((a, b) => a - b), bounds, 'boundaries ascending');
  t.ok(bounds[bounds.length - 1]! >= 600, 'reaches 10 minutes (a real backlog)');
});
