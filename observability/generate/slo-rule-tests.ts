/**
 * promtool tests of the SLO burn-rate alerts, for every window pair and SLI: fires at the pair's burn rate
 * (× 1.1), silent just below it (× 0.9), silent when only the long or only the short window burns. Inputs are
 * piecewise-constant traffic built from the objective, and what promtool must see is computed by evaluating
 * the rules' own logic over those inputs (every burn-rate rule of the name, with its `for:`), so a change of
 * objective, burn rate, window or `for:` moves inputs and expectations together.
 */
import { humanizePercentage } from './go-format';
import { BURN_RATE_ALERTS, type BurnRateAlert, budgetOf, objective, SLO_ALERT, sloAlertRules, type SloAlertRule, type SloKind } from './slo';
import { durationSeconds, type Thresholds } from '../../services/common/thresholds';
import { RULE_GROUP_ORDER } from './rules';

/** Traffic for `minutes` minutes: `total` jobs a minute of which `bad` fail (errors) or are slow (latency). */
interface Segment {
  minutes: number;
  total: number;
  bad: number;
}

const TOTAL = 100_000;
const minutes = (d: string) => durationSeconds(d) / 60;

/** promtool's expanding notation for a counter growing by `perMinute(segment)` each minute, from 0 at t = 0. */
function counterValues(segments: Segment[], perMinute: (s: Segment) => number): string {
  const parts: string[] = [];
  let value = 0;
  segments.forEach((s, i) => {
    const inc = perMinute(s);
    if (i === 0) {
      parts.push(`0+${inc}x${s.minutes}`);
      value = inc * s.minutes;
    } else {
      parts.push(s.minutes === 1 ? `${value + inc}` : `${value + inc}+${inc}x${s.minutes - 1}`);
      value += inc * s.minutes;
    }
  });
  return parts.join(' ');
}

/** Bad and total jobs in (from, to] minutes. */
function counts(segments: Segment[], from: number, to: number): { bad: number; total: number } {
  let start = 0;
  let bad = 0;
  let total = 0;
  for (const s of segments) {
    const a = Math.max(start, from);
    const b = Math.min(start + s.minutes, to);
    if (b > a) {
      bad += s.bad * (b - a);
      total += s.total * (b - a);
    }
    start += s.minutes;
  }
  return { bad, total };
}

/** Rule evaluation interval of the SLO test file (input samples stay 1 m apart): keeps promtool fast. */
export const SLO_TEST_EVALUATION_MINUTES = 5;

/**
 * The SLI over a window ending at minute `at`, as promtool computes it (recording groups first:
 * RULE_GROUP_ORDER). Every counter starts at 0 at t = 0 and is sampled each whole minute, so
 * rate()'s extrapolation is the same for all of them and cancels in the ratio. Undefined (NaN, never
 * alerting) before two samples or without traffic.
 */
function ratio(segments: Segment[], at: number, window: number): number {
  if (at < 1) return NaN;
  const c = counts(segments, Math.max(0, at - window), at);
  return c.total ? c.bad / c.total : NaN;
}

/** Which burn-rate rules of the SLI fire at minute `at`, replaying each evaluation for `for:`. */
function firing(segments: Segment[], budget: number, at: number): { a: BurnRateAlert; burn: number }[] {
  const out: { a: BurnRateAlert; burn: number }[] = [];
  for (const a of BURN_RATE_ALERTS) {
    const holds = (m: number) =>
      ratio(segments, m, minutes(a.long)) / budget >= a.burnRate && ratio(segments, m, minutes(a.short)) / budget >= a.burnRate;
    let since = -1;
    for (let m = 0; m <= at; m += SLO_TEST_EVALUATION_MINUTES) since = holds(m) ? (since < 0 ? m : since) : -1;
    if (since >= 0 && at - since >= minutes(a.for)) out.push({ a, burn: ratio(segments, at, minutes(a.long)) / budget });
  }
  return out;
}

function series(kind: SloKind, queue: string, bound: number, segments: Segment[]) {
  if (kind === 'errors') {
    return [
      { series: `bullmq_jobs_completed_total{job="worker",instance="w1",queue="${queue}"}`, values: counterValues(segments, (s) => s.total - s.bad) },
      { series: `bullmq_jobs_failed_total{job="worker",instance="w1",queue="${queue}",reason="provider_error"}`, values: counterValues(segments, (s) => s.bad) },
    ];
  }
  const labels = `job="worker",instance="w1",queue="${queue}",status="completed"`;
  return [
    { series: `bullmq_job_e2e_seconds_bucket{${labels},le="${bound}"}`, values: counterValues(segments, (s) => s.total - s.bad) },
    { series: `bullmq_job_e2e_seconds_bucket{${labels},le="+Inf"}`, values: counterValues(segments, (s) => s.total) },
    { series: `bullmq_job_e2e_seconds_count{${labels}}`, values: counterValues(segments, (s) => s.total) },
  ];
}

/** The annotation templates of slo.ts, expanded for a queue, a burn rate and the budget left. */
function expandSlo(template: string, queue: string, burn: number, remaining: number): string {
  return template
    .replace(/\{\{ with query .*? \}\}.*?\{\{ end \}\}/g, humanizePercentage(remaining))
    .replace(/\{\{ \$value \| printf "%\.(\d)f" \}\}/g, (_, d: string) => burn.toFixed(Number(d)))
    .replace(/\{\{ \$labels\.queue \}\}/g, queue);
}

interface Case {
  why: string;
  segments: Segment[];
  at: number;
}

/** Bad jobs a minute for a burn rate (rounded to whole jobs of TOTAL). */
const badFor = (burn: number, budget: number) => Math.round(burn * budget * TOTAL);

function cases(a: BurnRateAlert, budget: number): Case[] {
  const S = minutes(a.short);
  const F = minutes(a.for);
  const E = SLO_TEST_EVALUATION_MINUTES;
  // `for:` plus two evaluations, on an evaluation step.
  const settled = Math.ceil((F + 2 * E) / E) * E;
  const steady = (burn: number): Segment[] => [{ minutes: settled, total: TOTAL, bad: badFor(burn, budget) }];
  // Burned hard for 2 short windows, then clean for 2 (longer than the short window); the long window (12
  // short ones in every pair) holds all of it, so it averages to 1.1x the rate.
  const longOnly: Segment[] = [
    { minutes: 2 * S, total: TOTAL, bad: badFor(a.burnRate * 2.2, budget) },
    { minutes: 2 * S, total: TOTAL, bad: 0 },
  ];
  // Heavy clean traffic for 3 short windows, then the last short window burns at twice the rate with a tenth
  // of the traffic: the long window averages it down to 2/31 of the rate.
  const shortOnly: Segment[] = [
    { minutes: 3 * S, total: 10 * TOTAL, bad: 0 },
    { minutes: S, total: TOTAL, bad: badFor(a.burnRate * 2, budget) },
  ];
  return [
    { why: `fires when both windows burn at ${+(a.burnRate * 1.1).toFixed(2)}x`, segments: steady(a.burnRate * 1.1), at: settled },
    { why: `is silent when both windows burn just below, at ${+(a.burnRate * 0.9).toFixed(2)}x`, segments: steady(a.burnRate * 0.9), at: settled },
    { why: `is silent when only the long window burns (the short one is clean)`, segments: longOnly, at: 4 * S },
    { why: `is silent when only the short window burns (the long one stays below ${a.burnRate}x)`, segments: shortOnly, at: 4 * S },
  ];
}

export function sloRuleTestsFile(t: Thresholds, rulesPath: string) {
  return { rule_files: [rulesPath], evaluation_interval: `${SLO_TEST_EVALUATION_MINUTES}m`, group_eval_order: RULE_GROUP_ORDER, tests: sloRuleTests(t) };
}

export function sloRuleTests(t: Thresholds) {
  const rules = sloAlertRules(t);
  const queues = Object.keys(t.slo.queues);
  const tests: unknown[] = [];
  for (const kind of ['errors', 'slow'] as const) {
    const alertname = SLO_ALERT[kind];
    BURN_RATE_ALERTS.forEach((a, i) => {
      // Each pair against a different queue in turn (every queue's rules are exercised, the runtime stays low).
      const queue = queues[(i + (kind === 'slow' ? 1 : 0)) % queues.length]!;
      const s = t.slo.queues[queue]!;
      const budget = budgetOf(objective(s, kind));
      for (const c of cases(a, budget)) {
        const fired = firing(c.segments, budget, c.at);
        const remaining = 1 - ratio(c.segments, c.at, minutes(t.slo.period)) / budget;
        const rule = (p: BurnRateAlert): SloAlertRule =>
          rules.find((r) => r.alert === alertname && r.labels.long_window === p.long && r.expr.includes(`{queue="${queue}"}`))!;
        tests.push({
          name: `${alertname} (${a.severity}, ${a.long}/${a.short}) ${c.why} — ${queue}`,
          interval: '1m',
          input_series: series(kind, queue, s.latency_bound_seconds, c.segments),
          alert_rule_test: [
            {
              eval_time: `${c.at}m`,
              alertname,
              exp_alerts: fired.map(({ a: p, burn }) => ({
                exp_labels: { ...rule(p).labels },
                exp_annotations: Object.fromEntries(Object.entries(rule(p).annotations).map(([k, v]) => [k, expandSlo(String(v), queue, burn, remaining)])),
              })),
            },
          ],
        });
        // The case's own rule must (not) be among them, whatever the others do.
        const own = fired.some((f) => f.a === a);
        if (own !== c.why.startsWith('fires')) throw new Error(`slo rule test "${c.why}" for ${a.long}/${a.short}: inputs do not make the case`);
      }
    });
  }
  return tests;
}
