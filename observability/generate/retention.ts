/**
 * Prometheus retention from the rules: at least the longest range any shipped rule reads (the SLO period, 30d),
 * plus a margin, so the error-budget panels and the slow-burn alerts never see a window cut short. compose.yaml
 * and the native stack (scripts/stack/stack.ts) run Prometheus with `--storage.tsdb.retention.time` set to this;
 * test/observability/retention.test.ts fails when a rule's window grows past what they keep.
 */
import { durationSeconds, type Thresholds } from '../../services/common/thresholds';
import { rulesFile } from './rules';

/** Kept beyond the longest window: a period's first samples stay readable while the period rolls. */
export const RETENTION_MARGIN_DAYS = 5;

/** Range selectors and subquery ranges in PromQL: `[30d]`, `[5m:1m]`, `[1h:]`. */
const RANGE = /\[(\d+[smhdw])(?::\d*[smhdw]?)?\]/g;

/** The longest range (seconds) any expression reads. */
export function longestRangeSeconds(exprs: readonly string[]): number {
  let longest = 0;
  for (const e of exprs) for (const m of e.matchAll(RANGE)) longest = Math.max(longest, durationSeconds(m[1]!));
  return longest;
}

/** Every expression of the shipped rule file (recording and alerting). */
export function ruleExpressions(t: Thresholds): string[] {
  return rulesFile(t).groups.flatMap((g) => (g.rules as { expr: string }[]).map((r) => r.expr));
}

/** `--storage.tsdb.retention.time` for the shipped rules: the longest window, in whole days, plus the margin. */
export function prometheusRetention(t: Thresholds): string {
  return `${Math.ceil(longestRangeSeconds(ruleExpressions(t)) / 86_400) + RETENTION_MARGIN_DAYS}d`;
}
