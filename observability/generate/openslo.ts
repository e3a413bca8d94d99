/**
 * The SLOs of thresholds.yaml as OpenSLO v1 documents (observability/slo/bullmq.openslo.yaml), for teams that
 * run Sloth, Pyrra or another OpenSLO consumer instead of (or next to) the rules generated here. Same
 * objectives, period and bounds as the burn-rate alerts; the queries are raw counters (`counter: true`): the
 * consumer picks its own rate windows.
 */
import { leMatcher, sloStatement } from './slo';
import type { Thresholds } from '../../services/common/thresholds';

const SERVICE = 'bullmq-jobs';

const prometheus = (query: string) => ({ metricSource: { type: 'Prometheus', spec: { query } } });

export function openSloDocuments(t: Thresholds): object[] {
  const docs: object[] = [
    {
      apiVersion: 'openslo/v1',
      kind: 'Service',
      metadata: { name: SERVICE, displayName: 'BullMQ jobs' },
      spec: { description: 'Background jobs of the BullMQ observability stack, one SLO pair per queue (observability/thresholds.yaml).' },
    },
  ];
  const timeWindow = [{ duration: t.slo.period, isRolling: true }];
  for (const [queue, s] of Object.entries(t.slo.queues)) {
    const completed = `sum(bullmq_jobs_completed_total{queue="${queue}"})`;
    const failed = `sum(bullmq_jobs_failed_total{queue="${queue}"})`;
    docs.push({
      apiVersion: 'openslo/v1',
      kind: 'SLO',
      metadata: { name: `${queue}-job-success`, displayName: `${queue}: jobs succeed` },
      spec: {
        description: `${sloStatement(t, queue, 'errors')}. Failed = no attempt left or not retryable (bullmq_jobs_failed_total).`,
        service: SERVICE,
        indicator: {
          metadata: { name: `${queue}-job-errors` },
          spec: { ratioMetric: { counter: true, bad: prometheus(failed), total: prometheus(`${completed} + ${failed}`) } },
        },
        timeWindow,
        budgetingMethod: 'Occurrences',
        objectives: [{ displayName: `${+(s.success * 100).toPrecision(10)}% succeed`, target: s.success }],
      },
    });
    const sel = `queue="${queue}",status="completed"`;
    docs.push({
      apiVersion: 'openslo/v1',
      kind: 'SLO',
      metadata: { name: `${queue}-job-latency`, displayName: `${queue}: jobs end within ${s.latency_bound_seconds}s` },
      spec: {
        description: `${sloStatement(t, queue, 'slow')}. From bullmq_job_e2e_seconds (eligible = enqueue + delay → final outcome).`,
        service: SERVICE,
        indicator: {
          metadata: { name: `${queue}-job-e2e-within-${String(s.latency_bound_seconds).replace('.', '-')}s` },
          spec: {
            ratioMetric: {
              counter: true,
              good: prometheus(`sum(bullmq_job_e2e_seconds_bucket{${sel},${leMatcher(s.latency_bound_seconds)}})`),
              total: prometheus(`sum(bullmq_job_e2e_seconds_count{${sel}})`),
            },
          },
        },
        timeWindow,
        budgetingMethod: 'Occurrences',
        objectives: [{ displayName: `${+(s.latency * 100).toPrecision(10)}% within ${s.latency_bound_seconds}s`, target: s.latency }],
      },
    });
  }
  return docs;
}
