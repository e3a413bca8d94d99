/**
 * Every alert threshold is one the shipped deployments can reach. Worker slots per queue are derived from the
 * files that deploy them — compose.yaml (replicas), the native stack (scripts/stack: its default and maximum
 * worker count), deploy/kubernetes (per-queue Deployments, KEDA and HPA replica bounds) — with each worker's
 * concurrency from its environment through the services' own config parser; worker memory from their limits.
 * An alert on a count of active jobs above the slots a deployment runs, or on a memory its container never
 * reaches, could never fire there.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { parseConfig } from '../../services/common/config';
import { QUEUE_NAMES } from '../../services/common/queue-catalog';
import { loadThresholds } from '../../services/common/thresholds';
import { REPO_ROOT } from '../../scripts/lib/repo-root';
import { rulesFile } from '../../observability/generate/rules';

interface Deployment {
  name: string;
  /** Worker slots per queue at the smallest and the largest scale. */
  slots: Record<string, { min: number; max: number }>;
  /** The worker container's memory limit (bytes), when it has one. */
  memoryLimitBytes?: number;
}

const read = (rel: string) => readFileSync(path.join(REPO_ROOT, rel), 'utf8');
const docs = (rel: string) => YAML.parseAllDocuments(read(rel)).map((d) => d.toJS());
const concurrencyEnv = (env: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(env).filter(([k]) => k === 'WORKER_QUEUES' || k.startsWith('WORKER_CONCURRENCY_')).map(([k, v]) => [k, String(v)]));
/** The slots one worker process runs per queue it consumes, as the worker itself would parse its env. */
function slotsOf(env: Record<string, unknown>): Record<string, number> {
  const config = parseConfig(concurrencyEnv(env));
  return Object.fromEntries(config.worker.queues.map((q) => [q, config.worker.policies[q].concurrency]));
}
const bytes = (v: string) => {
  const m = /^(\d+)(m|Mi|g|Gi)$/.exec(v);
  if (!m) throw new Error(`memory limit ${v} not understood`);
  return Number(m[1]) * (m[2]!.startsWith('g') || m[2] === 'Gi' ? 1024 ** 3 : 1024 ** 2);
};
const scaled = (perReplica: Record<string, number>, min: number, max: number) =>
  Object.fromEntries(Object.entries(perReplica).map(([q, n]) => [q, { min: n * min, max: n * max }]));

export function shippedDeployments(): Deployment[] {
  const compose = YAML.parse(read('compose.yaml'));
  const worker = compose.services.worker;
  const replicas = Number(worker.deploy.replicas);
  const out: Deployment[] = [
    { name: 'compose', slots: scaled(slotsOf(worker.environment ?? {}), replicas, replicas), memoryLimitBytes: bytes(worker.deploy.resources.limits.memory) },
  ];
  // The native stack: `--workers N`, its bounds and default in the CLI's usage text.
  const usage = /--workers N\s+worker processes, (\d+) to (\d+) \(default (\d+)/.exec(read('scripts/stack/main.ts'));
  if (!usage) throw new Error('scripts/stack/main.ts: the --workers bounds are no longer in its usage text');
  out.push({ name: 'native stack', slots: scaled(slotsOf({}), Number(usage[3]), Number(usage[2])) });

  const manifests = ['deploy/kubernetes/workers.yaml', 'deploy/kubernetes/config.yaml', 'deploy/kubernetes/keda/scaledobjects.yaml', 'deploy/kubernetes/hpa/worker-hpas.yaml'].flatMap(docs);
  const configMap = manifests.find((d) => d.kind === 'ConfigMap')!.data as Record<string, string>;
  for (const scaler of ['ScaledObject', 'HorizontalPodAutoscaler'] as const) {
    const slots: Deployment['slots'] = {};
    let memoryLimitBytes = Infinity;
    for (const d of manifests.filter((m) => m.kind === 'Deployment')) {
      const c = d.spec.template.spec.containers[0];
      const env = { ...configMap, ...Object.fromEntries((c.env ?? []).filter((e: { value?: string }) => e.value !== undefined).map((e: { name: string; value: string }) => [e.name, e.value])) };
      const s = manifests.find((m) => m.kind === scaler && m.spec.scaleTargetRef.name === d.metadata.name);
      if (!s) throw new Error(`no ${scaler} for ${d.metadata.name}`);
      const [min, max] = scaler === 'ScaledObject' ? [s.spec.minReplicaCount, s.spec.maxReplicaCount] : [s.spec.minReplicas, s.spec.maxReplicas];
      for (const [q, n] of Object.entries(slotsOf(env))) slots[q] = { min: (slots[q]?.min ?? 0) + n * min, max: (slots[q]?.max ?? 0) + n * max };
      memoryLimitBytes = Math.min(memoryLimitBytes, bytes(c.resources.limits.memory));
    }
    out.push({ name: `kubernetes (${scaler === 'ScaledObject' ? 'KEDA' : 'HPA'})`, slots, memoryLimitBytes });
  }
  return out;
}

/** Alert thresholds some deployment can never reach, one line each. */
export function unreachable(alerts: { alert: string; expr: string }[], deployments: Deployment[]): string[] {
  const out: string[] = [];
  const active = /(?:queue:bullmq_queue_active:max|bullmq_queue_jobs\{[^}]*state="active"[^}]*\})(?:\{queue="(\w+)"\})?\s*>=?\s*([\d.e+]+)/g;
  const saturation = /queue:bullmq_worker_saturation:ratio(?:\{[^}]*\})?\s*>=?\s*([\d.e+]+)/g;
  const memory = /process_resident_memory_bytes\{job="worker"\}\s*>\s*([\d.e+]+)/g;
  for (const a of alerts) {
    for (const d of deployments) {
      for (const m of a.expr.matchAll(active)) {
        for (const q of m[1] ? [m[1]] : QUEUE_NAMES) {
          const s = d.slots[q];
          if (s && Number(m[2]) >= s.max) out.push(`${a.alert}: ${m[2]} active ${q} jobs, ${d.name} runs at most ${s.max} slots`);
        }
      }
      for (const m of a.expr.matchAll(saturation)) {
        for (const [q, s] of Object.entries(d.slots)) {
          if (Math.ceil(Number(m[1]) * s.min) > s.min) out.push(`${a.alert}: ${m[1]} of the slots busy, ${d.name} ${q} at its smallest (${s.min} slots) cannot be that busy`);
        }
      }
      for (const m of a.expr.matchAll(memory)) {
        if (d.memoryLimitBytes !== undefined && Number(m[1]) >= d.memoryLimitBytes) out.push(`${a.alert}: ${m[1]} bytes RSS, ${d.name} workers are limited to ${d.memoryLimitBytes}`);
      }
    }
  }
  return out;
}

const alerts = () => rulesFile(loadThresholds()).groups.flatMap((g) => (g.rules as { alert?: string; expr: string }[]).filter((r) => r.alert)) as { alert: string; expr: string }[];

t.test('worker slots per queue, derived from compose, the native stack and deploy/kubernetes', async (t) => {
  const d = Object.fromEntries(shippedDeployments().map((x) => [x.name, x]));
  t.same(Object.keys(d), ['compose', 'native stack', 'kubernetes (KEDA)', 'kubernetes (HPA)']);
  t.same(d['compose']!.slots['payments'], { min: 25, max: 25 }, 'compose: 5 replicas × concurrency 5');
  t.same(d['native stack']!.slots['payments'], { min: 10, max: 80 }, 'native: 2 workers by default, 16 at most');
  t.ok(d['kubernetes (KEDA)']!.slots['webhooks']!.max > d['compose']!.slots['webhooks']!.max, 'KEDA scales webhooks beyond compose');
  for (const x of Object.values(d)) t.same(Object.keys(x.slots).sort(), [...QUEUE_NAMES].sort(), `${x.name}: every queue has workers`);
});

t.test('no alert keeps a threshold a shipped deployment cannot reach', async (t) => {
  t.same(unreachable(alerts(), shippedDeployments()), []);
  t.ok(alerts().some((a) => a.alert === 'BullMQWorkersSaturated'), 'saturation is judged against the slots deployed');
});

t.test('an unreachable threshold is caught (the check can fail)', async (t) => {
  const d = shippedDeployments();
  const problems = unreachable([
    { alert: 'BullMQActiveJobsHigh', expr: 'queue:bullmq_queue_active:max{queue="payments"} > 8000' },
    { alert: 'WorkerMemoryHigh', expr: 'process_resident_memory_bytes{job="worker"} > 4294967296' },
  ], d);
  t.ok(problems.some((p) => /BullMQActiveJobsHigh: 8000 active payments jobs, compose runs at most 25 slots/.test(p)), 'a fixed count of 8,000 active payments jobs');
  t.ok(problems.some((p) => /BullMQActiveJobsHigh: .*kubernetes \(KEDA\) runs at most 100 slots/.test(p)), 'beyond the KEDA maximum too');
  t.ok(problems.some((p) => /WorkerMemoryHigh: 4294967296 bytes RSS, compose workers are limited to/.test(p)), 'a memory above the container limit');
});
