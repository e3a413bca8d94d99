/**
 * SLOs from thresholds.yaml `slo`: SLI recording rules and multi-window, multi-burn-rate alerts as in the SRE
 * workbook ("Alerting on SLOs", table 5-8): a page when the budget burns fast over both a long and a short
 * window, a ticket when it burns slowly. The short window makes an alert resolve soon after the burn stops.
 *
 * Error SLI: failed / (completed + failed) jobs (bullmq_jobs_*_total count final outcomes only, not retried
 * attempts). Latency SLI: the share of *completed* jobs slower than the bound, from bullmq_job_e2e_seconds
 * (eligible → final outcome); failed jobs are left out because they already spend the error budget.
 */
import type { QueueSlo, Thresholds } from '../../services/common/thresholds';
import { failureLinks, type FailureLinks } from './links';

/** The SRE workbook's windows; the shipped rules always use these. */
export const SLO_WINDOWS = ['5m', '30m', '1h', '2h', '6h', '1d', '3d'] as const;
export type SloWindow = (typeof SLO_WINDOWS)[number];

export interface BurnRateAlert {
  severity: 'critical' | 'warning';
  /** page or ticket, in the workbook's words. */
  kind: 'page' | 'ticket';
  long: SloWindow;
  short: SloWindow;
  /** Burn rate (multiple of the sustainable rate) both windows must reach. */
  burnRate: number;
  /** How long both must hold (kubernetes-mixin's values for the same pairs). */
  for: string;
}

export const BURN_RATE_ALERTS: readonly BurnRateAlert[] = [
  { severity: 'critical', kind: 'page', long: '1h', short: '5m', burnRate: 14.4, for: '2m' },
  { severity: 'critical', kind: 'page', long: '6h', short: '30m', burnRate: 6, for: '15m' },
  { severity: 'warning', kind: 'ticket', long: '1d', short: '2h', burnRate: 3, for: '1h' },
  { severity: 'warning', kind: 'ticket', long: '3d', short: '6h', burnRate: 1, for: '3h' },
];

/**
 * Drill-only windows (the live drill in test/live, `writeDrillRules`): hours and days cannot burn inside a
 * test, so the drill evaluates each window over seconds. Names (ratio_rate1h…) stay those of the shipped
 * rules so dashboards and alerts read the same series; the `long_window`/`short_window` labels and the
 * descriptions show the windows actually evaluated. Never shipped.
 */
export const DRILL_SLO_WINDOWS: Record<SloWindow | 'period', string> = {
  '5m': '10s',
  '30m': '20s',
  '1h': '30s',
  '2h': '40s',
  '6h': '1m',
  '1d': '90s',
  '3d': '2m',
  period: '5m',
};

export type SloKind = 'errors' | 'slow';

export const SLO_ALERT = { errors: 'BullMQSLOErrorBudgetBurn', slow: 'BullMQSLOLatencyBudgetBurn' } as const;

export const S = {
  /** SLI: share of jobs that failed / completed jobs slower than the bound, over a window. */
  ratio: (kind: SloKind, w: string) => `queue:bullmq_slo_${kind}:ratio_rate${w}`,
  /** The budget itself (1 - objective), one constant series per queue: dashboards divide by it. */
  budget: (kind: SloKind) => `queue:bullmq_slo_${kind === 'errors' ? 'error' : 'latency'}_budget:ratio`,
  /** Share of the period's budget not yet spent (negative once overspent). */
  remaining: (kind: SloKind) => `queue:bullmq_slo_${kind === 'errors' ? 'error' : 'latency'}_budget:remaining`,
} as const;

/** 1 - objective without binary noise (1 - 0.999 is 0.0010000000000000009). */
export function budgetOf(objective: number): number {
  return Number((1 - objective).toPrecision(12));
}

export function objective(s: QueueSlo, kind: SloKind): number {
  return kind === 'errors' ? s.success : s.latency;
}

/**
 * The `le` label of a bound. prom-client writes 1 as "1"; Prometheus 3 normalises classic-histogram `le` to
 * "1.0" on ingestion: match both so the rules survive an upgrade.
 */
export function leMatcher(bound: number): string {
  const text = String(bound).replace('.', '\\\\.');
  return Number.isInteger(bound) ? `le=~"${text}|${text}\\\\.0"` : `le=~"${text}"`;
}

export interface SloRuleOptions {
  /** Drill windows (DRILL_SLO_WINDOWS); shipped rules evaluate the names as written. */
  windows?: Record<SloWindow | 'period', string>;
  forOverride?: string;
}

const evaluated = (o: SloRuleOptions, w: SloWindow | 'period', t: Thresholds) => o.windows?.[w] ?? (w === 'period' ? t.slo.period : w);

type RecordingRule = { record: string; expr: string; labels?: Record<string, string> };

/**
 * `windows`: the SLIs over the alerting windows and the budgets; `period`: the SLIs over the whole period and
 * the budget left, which read 30 days of raw counters and change slowly, so their group runs once a minute
 * (SLO_PERIOD_GROUP_INTERVAL) instead of at every evaluation.
 */
export function sloRecordingRules(t: Thresholds, o: SloRuleOptions = {}): { windows: RecordingRule[]; period: RecordingRule[] } {
  const rules: RecordingRule[] = [];
  const periodRules: RecordingRule[] = [];
  const windows: (SloWindow | 'period')[] = [...SLO_WINDOWS, 'period'];
  const into = (w: SloWindow | 'period') => (w === 'period' ? periodRules : rules);
  for (const w of windows) {
    const name = w === 'period' ? t.slo.period : w;
    const r = evaluated(o, w, t);
    const failed = `sum by (queue) (rate(bullmq_jobs_failed_total[${r}]))`;
    into(w).push({
      record: S.ratio('errors', name),
      expr: `${failed} / (sum by (queue) (rate(bullmq_jobs_completed_total[${r}])) + ${failed})`,
    });
  }
  for (const w of windows) {
    const name = w === 'period' ? t.slo.period : w;
    const r = evaluated(o, w, t);
    // One rule per queue: each reads the bucket of its own bound.
    for (const [queue, s] of Object.entries(t.slo.queues)) {
      const sel = `queue="${queue}",status="completed"`;
      into(w).push({
        record: S.ratio('slow', name),
        labels: { queue },
        expr: `1 - sum by (queue) (rate(bullmq_job_e2e_seconds_bucket{${sel},${leMatcher(s.latency_bound_seconds)}}[${r}])) / sum by (queue) (rate(bullmq_job_e2e_seconds_count{${sel}}[${r}]))`,
      });
    }
  }
  for (const kind of ['errors', 'slow'] as const) {
    for (const [queue, s] of Object.entries(t.slo.queues)) {
      rules.push({ record: S.budget(kind), expr: `vector(${budgetOf(objective(s, kind))})`, labels: { queue } });
    }
    periodRules.push({ record: S.remaining(kind), expr: `1 - ${S.ratio(kind, t.slo.period)} / on (queue) ${S.budget(kind)}` });
  }
  return { windows: rules, period: periodRules };
}

export const SLO_PERIOD_GROUP_INTERVAL = '1m';

const pct = (ratio: number) => `${Number((ratio * 100).toPrecision(10))}%`;

/** What each SLO promises, in words (descriptions, docs, OpenSLO). */
export function sloStatement(t: Thresholds, queue: string, kind: SloKind, period = t.slo.period): string {
  const s = t.slo.queues[queue]!;
  return kind === 'errors'
    ? `${pct(s.success)} of ${queue} jobs succeed over ${period}`
    : `${pct(s.latency)} of completed ${queue} jobs finish within ${s.latency_bound_seconds}s of becoming eligible over ${period}`;
}

export interface SloAlertRule {
  alert: (typeof SLO_ALERT)[SloKind];
  expr: string;
  for: string;
  labels: { queue: string; severity: 'critical' | 'warning'; long_window: string; short_window: string };
  annotations: { summary: string; description: string; burn_rate: string; budget_remaining: string; runbook_url: string; dashboard_url: string } & FailureLinks;
}

export const SLO_DASHBOARD_UID = 'bullmq-slo';

export function sloAlertRules(t: Thresholds, o: SloRuleOptions = {}): SloAlertRule[] {
  const out: SloAlertRule[] = [];
  for (const kind of ['errors', 'slow'] as const) {
    const alert = SLO_ALERT[kind];
    const budgetWord = kind === 'errors' ? 'error' : 'latency';
    for (const a of BURN_RATE_ALERTS) {
      const long = evaluated(o, a.long, t);
      const short = evaluated(o, a.short, t);
      const period = evaluated(o, 'period', t);
      for (const [queue, s] of Object.entries(t.slo.queues)) {
        const budget = budgetOf(objective(s, kind));
        const burn = (w: SloWindow) => `${S.ratio(kind, w)}{queue="${queue}"} / ${budget} >= ${a.burnRate}`;
        const remaining = `{{ with query "${S.remaining(kind).replace(/"/g, '\\"')}{queue=\\"${queue}\\"}" }}{{ . | first | value | humanizePercentage }}{{ else }}unknown{{ end }}`;
        out.push({
          alert,
          // $value is the long-window burn rate (the left side of `and`).
          expr: `${burn(a.long)} and ${burn(a.short)}`,
          for: o.forOverride ?? a.for,
          // `queue` also tells the per-queue rules of one name apart (promtool --lint duplicates).
          labels: { queue, severity: a.severity, long_window: long, short_window: short },
          annotations: {
            summary: `{{ $labels.queue }} is burning its ${budgetWord} budget (${a.kind})`,
            description:
              `SLO: ${sloStatement(t, queue, kind, period)}. {{ $labels.queue }} spends its ${budgetWord} budget {{ $value | printf "%.1f" }}x as fast as the SLO allows over ${long}, ` +
              `and at least ${a.burnRate}x over ${short} too (${a.kind} threshold ${a.burnRate}x). ${budgetWord[0]!.toUpperCase()}${budgetWord.slice(1)} budget left over ${period}: ${remaining}.`,
            burn_rate: '{{ $value | printf "%.2f" }}',
            budget_remaining: remaining,
            runbook_url: `${t.links.runbook_base_url}#${alert.toLowerCase()}`,
            dashboard_url: `${t.links.grafana_base_url}/d/${SLO_DASHBOARD_UID}`,
            ...failureLinks(t),
          },
        });
      }
    }
  }
  return out;
}
