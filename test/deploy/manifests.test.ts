/**
 * deploy/kubernetes/, checked without a cluster: every document validates against its kind's schema — Kubernetes'
 * OpenAPI (kubernetes-models) and KEDA's CRD (@kubernetes-models/keda) — and the manifests agree with the code:
 * one worker Deployment per catalog queue, one ScaledObject and one HPA per worker aimed at it, scaling queries on
 * metrics the rules and workers really produce, env names the config schema knows and values it accepts, memory
 * limits above the worker's own hard limit, grace periods above SHUTDOWN_GRACE_MS, payments never on fewer than two
 * pods and a PodDisruptionBudget per Deployment that keeps one serving. Broken copies prove the checks can fail.
 */
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { Env, parseConfig, PerQueueEnv } from '../../services/common/config';
import { QUEUE_NAMES } from '../../services/common/queue-catalog';
import { loadThresholds } from '../../services/common/thresholds';
import { ROOT } from '../helpers/services';
import { WORKER_NODE_FLAGS } from '../../scripts/lib/node-flags';

type Doc = { apiVersion: string; kind: string; metadata: { name: string }; spec?: any; data?: Record<string, string> };

const DIR = path.join(ROOT, 'deploy', 'kubernetes');
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.yaml') ? [p] : [];
  });
const docs: (Doc & { file: string })[] = files(DIR).flatMap((file) =>
  YAML.parseAllDocuments(readFileSync(file, 'utf8')).map((d) => ({ ...(d.toJS() as Doc), file: path.relative(ROOT, file) })),
);
const byKind = (kind: string) => docs.filter((d) => d.kind === kind);

/**
 * The packages are ESM with import-only exports, which this CommonJS-compiled test cannot name: their modules
 * are loaded by file path (Node's require of ES modules).
 */
const model = (pkg: string, group: string, kind: string): (() => Promise<any>) => async () =>
  (await import(path.join(ROOT, 'node_modules', pkg, group, 'index.js')))[kind];

/** The schema validator for a document's apiVersion/kind. */
async function validatorFor(doc: Doc): Promise<(d: Doc) => void> {
  const models: Record<string, () => Promise<any>> = {
    'apps/v1/Deployment': model('kubernetes-models', 'apps/v1', 'Deployment'),
    'v1/Service': model('kubernetes-models', 'v1', 'Service'),
    'v1/ConfigMap': model('kubernetes-models', 'v1', 'ConfigMap'),
    'autoscaling/v2/HorizontalPodAutoscaler': model('kubernetes-models', 'autoscaling/v2', 'HorizontalPodAutoscaler'),
    'policy/v1/PodDisruptionBudget': model('kubernetes-models', 'policy/v1', 'PodDisruptionBudget'),
    'keda.sh/v1alpha1/ScaledObject': model('@kubernetes-models/keda', 'keda.sh/v1alpha1', 'ScaledObject'),
  };
  const load = models[`${doc.apiVersion}/${doc.kind}`];
  if (!load) throw new Error(`no schema for ${doc.apiVersion} ${doc.kind}`);
  const Model = await load();
  return (d) => new Model(d).validate();
}

async function schemaError(doc: Doc): Promise<string | undefined> {
  const { file: _file, ...plain } = doc as Doc & { file?: string };
  try {
    (await validatorFor(plain))(plain);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

t.test('every document is valid against the Kubernetes / KEDA schema of its kind', async (t) => {
  t.ok(docs.length >= 10, `${docs.length} documents`);
  for (const doc of docs) t.equal(await schemaError(doc), undefined, `${doc.file}: ${doc.kind} ${doc.metadata.name}`);

  const deployment = structuredClone(byKind('Deployment')[0]!);
  deployment.spec.template.spec.containers[0].ports[0].containerPort = 'metrics';
  t.match(await schemaError(deployment), /containerPort must be integer/, 'a Deployment with a string containerPort is caught');
  const scaled = structuredClone(byKind('ScaledObject')[0]!);
  delete scaled.spec.scaleTargetRef;
  t.match(await schemaError(scaled), /scaleTargetRef/, 'a ScaledObject without scaleTargetRef is caught');
  const hpa = structuredClone(byKind('HorizontalPodAutoscaler')[0]!);
  hpa.spec.maxReplicas = 'many';
  t.match(await schemaError(hpa), /maxReplicas must be integer/, 'an HPA with a non-integer maxReplicas is caught');
  const pdb = structuredClone(byKind('PodDisruptionBudget')[0]!);
  pdb.spec.selector = 'api';
  t.match(await schemaError(pdb), /selector must be object/, 'a PodDisruptionBudget with a string selector is caught');
});

const workers = byKind('Deployment').filter((d) => d.metadata.name.startsWith('worker-'));
const envOf = (d: Doc): Record<string, string> =>
  Object.fromEntries(
    (d.spec.template.spec.containers[0].env ?? []).map((e: any) => [e.name, e.value ?? `secret-value-${e.name.toLowerCase()}-0123456789`]),
  );
const configMap = byKind('ConfigMap').find((c) => c.metadata.name === 'bullmq-stack')!;

t.test('one worker Deployment per catalog queue, each consuming only its queue', async (t) => {
  t.same(workers.map((w) => w.metadata.name).sort(), QUEUE_NAMES.map((q) => `worker-${q}`).sort());
  for (const w of workers) {
    const queue = w.metadata.name.slice('worker-'.length);
    t.equal(envOf(w).WORKER_QUEUES, queue, `${w.metadata.name}: WORKER_QUEUES=${queue}`);
  }
});

t.test('every worker is probed on its metrics port: readiness /readyz, liveness /livez', async (t) => {
  for (const w of workers) {
    const c = w.spec.template.spec.containers[0];
    const metricsPort = c.ports.find((p: any) => p.name === 'metrics');
    t.ok(metricsPort, `${w.metadata.name} names its metrics port`);
    t.match(c.readinessProbe?.httpGet, { path: '/readyz', port: 'metrics' }, `${w.metadata.name} readiness probe`);
    t.match(c.livenessProbe?.httpGet, { path: '/livez', port: 'metrics' }, `${w.metadata.name} liveness probe`);
    // /readyz may take up to its 1 s PING bound to answer 503: a probe timeout at Kubernetes' 1 s default would
    // turn a slow "not ready" into a probe failure without the reason.
    t.ok((c.readinessProbe.timeoutSeconds ?? 1) > 1, `${w.metadata.name} readiness probe waits longer than the PING bound`);
  }
});

t.test('every worker container starts like npm run start:worker, with the worker’s Node flags', async (t) => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const startWorker = pkg.scripts['start:worker']!.split(/\s+/);
  for (const flag of WORKER_NODE_FLAGS) t.ok(startWorker.includes(flag), `start:worker passes ${flag}`);
  for (const w of workers) {
    t.same(w.spec.template.spec.containers[0].command, startWorker, `${w.metadata.name} runs the start:worker command`);
  }
});

t.test('each worker scales with KEDA (or the HPA alternative) on its own queue’s metrics', async (t) => {
  const rules = readFileSync(path.join(ROOT, 'observability/prometheus/rules/bullmq.rules.yml'), 'utf8');
  const contracts = readFileSync(path.join(ROOT, 'docs/contracts.md'), 'utf8');
  const metricExists = (name: string) => (name.includes(':') ? rules.includes(`record: ${name}`) : contracts.includes(`\`${name}\``));
  const problems = (scaledObjects: Doc[], hpas: Doc[]): string[] => {
    const out: string[] = [];
    for (const w of workers) {
      const queue = w.metadata.name.slice('worker-'.length);
      const so = scaledObjects.find((s) => s.spec.scaleTargetRef?.name === w.metadata.name);
      if (!so) out.push(`no ScaledObject for ${w.metadata.name}`);
      else {
        if (so.spec.minReplicaCount < 1) out.push(`${so.metadata.name}: minReplicaCount 0 — the queue gauges come from workers`);
        for (const trigger of so.spec.triggers) {
          const query: string = trigger.metadata.query;
          if (trigger.type !== 'prometheus') out.push(`${so.metadata.name}: trigger ${trigger.type}`);
          if (!query.includes(`queue="${queue}"`)) out.push(`${so.metadata.name}: query not on queue ${queue}: ${query}`);
          const metric = /([a-z_:]+)\{/.exec(query.replace(/^max\(/, ''))?.[1] ?? '';
          if (!metricExists(metric)) out.push(`${so.metadata.name}: unknown metric ${metric}`);
          if (!(Number(trigger.metadata.threshold) > 0)) out.push(`${so.metadata.name}: threshold ${trigger.metadata.threshold}`);
        }
      }
      const hpa = hpas.find((h) => h.spec.scaleTargetRef.name === w.metadata.name && h.spec.scaleTargetRef.kind === 'Deployment');
      if (!hpa) out.push(`no HPA for ${w.metadata.name}`);
      else if (!hpa.spec.metrics.every((m: any) => m.external?.metric.selector.matchLabels.queue === queue)) {
        out.push(`${hpa.metadata.name}: metric not selected on queue ${queue}`);
      }
    }
    return out;
  };
  t.same(problems(byKind('ScaledObject'), byKind('HorizontalPodAutoscaler')), []);

  const broken = byKind('ScaledObject').map((s) => structuredClone(s));
  broken[0]!.spec.triggers[0].metadata.query = 'max(queue:bullmq_queue_depht:max{queue="payments"})';
  broken[1]!.spec.scaleTargetRef.name = 'worker-emails';
  t.same(
    problems(broken, byKind('HorizontalPodAutoscaler')).sort(),
    [`${broken[0]!.metadata.name}: unknown metric queue:bullmq_queue_depht:max`, `no ScaledObject for ${byKind('ScaledObject')[1]!.spec.scaleTargetRef.name}`].sort(),
    'a misspelt metric and a ScaledObject aimed at no Deployment are caught',
  );
});

t.test('env: names the config schema knows, values it accepts; limits that fit the worker’s own', async (t) => {
  const known = new Set([...Object.keys(Env.properties), ...Object.keys(PerQueueEnv.properties)]);
  const unknownNames = (names: string[]) => names.filter((n) => !known.has(n) && !n.startsWith('OTEL_'));
  const api = byKind('Deployment').find((d) => d.metadata.name === 'api')!;
  for (const d of [api, ...workers]) {
    const env = { ...configMap.data, ...envOf(d) };
    t.same(unknownNames(Object.keys(env)), [], `${d.metadata.name}: every variable is one the services read`);
    t.doesNotThrow(() => parseConfig(env), `${d.metadata.name}: parseConfig accepts its environment`);
    const config = parseConfig(env);
    t.ok(config.redis.clusterNodes.length >= 3, `${d.metadata.name}: on Redis Cluster`);
    t.ok(d.spec.template.spec.terminationGracePeriodSeconds * 1000 > config.shutdownGraceMs, `${d.metadata.name}: pod grace > SHUTDOWN_GRACE_MS`);
  }
  t.same(unknownNames(['REDIS_CLUSTER_NODE', 'WORKER_QUEUES']), ['REDIS_CLUSTER_NODE'], 'a misspelt variable is caught');

  const hard = loadThresholds().worker_memory_bytes.critical;
  const mi = (v: string) => Number(/^(\d+)Mi$/.exec(v)?.[1]) * 1024 * 1024;
  for (const w of workers) {
    const limit = mi(w.spec.template.spec.containers[0].resources.limits.memory);
    t.ok(limit > hard, `${w.metadata.name}: memory limit ${limit} > worker hard limit ${hard} (drains before an OOM kill)`);
  }
});

/** Pods of `deployment` a PodDisruptionBudget selects: its matchLabels are all on the pod template. */
const selects = (pdb: Doc, deployment: Doc): boolean => {
  const podLabels: Record<string, string> = deployment.spec.template.metadata.labels;
  const wanted: Record<string, string> = pdb.spec.selector?.matchLabels ?? {};
  return Object.keys(wanted).length > 0 && Object.entries(wanted).every(([k, v]) => podLabels[k] === v);
};

/** The money queue: never fewer than this many worker pods, whatever scales it. */
const PAYMENTS_MIN_PODS = 2;

t.test('payments never on one pod: at least two replicas, and a drain keeps one of each Deployment serving', async (t) => {
  const problems = (deployments: Doc[], scaledObjects: Doc[], hpas: Doc[], pdbs: Doc[]): string[] => {
    const out: string[] = [];
    const payments = deployments.find((d) => d.metadata.name === 'worker-payments')!;
    const scaled = scaledObjects.find((s) => s.spec.scaleTargetRef.name === 'worker-payments')!;
    const hpa = hpas.find((h) => h.spec.scaleTargetRef.name === 'worker-payments')!;
    if (payments.spec.replicas < PAYMENTS_MIN_PODS) out.push(`worker-payments Deployment replicas ${payments.spec.replicas}`);
    if (scaled.spec.minReplicaCount < PAYMENTS_MIN_PODS) out.push(`worker-payments ScaledObject minReplicaCount ${scaled.spec.minReplicaCount}`);
    if (hpa.spec.minReplicas < PAYMENTS_MIN_PODS) out.push(`worker-payments HPA minReplicas ${hpa.spec.minReplicas}`);
    for (const d of deployments) {
      const budgets = pdbs.filter((p) => selects(p, d));
      if (budgets.length !== 1) {
        out.push(`${d.metadata.name}: ${budgets.length} PodDisruptionBudgets`);
        continue;
      }
      const { maxUnavailable, minAvailable } = budgets[0]!.spec;
      // The fewest pods this Deployment runs: what a drain may take down while the budget holds.
      const minPods = Math.min(
        d.spec.replicas,
        ...scaledObjects.filter((s) => s.spec.scaleTargetRef.name === d.metadata.name).map((s) => s.spec.minReplicaCount),
        ...hpas.filter((h) => h.spec.scaleTargetRef.name === d.metadata.name).map((h) => h.spec.minReplicas),
      );
      if (typeof maxUnavailable !== 'number' || minAvailable !== undefined) out.push(`${d.metadata.name}: budget not as maxUnavailable pods`);
      else if (minPods >= 2 && maxUnavailable >= minPods) out.push(`${d.metadata.name}: a drain may take all ${minPods} pods`);
      else if (maxUnavailable < 1) out.push(`${d.metadata.name}: maxUnavailable ${maxUnavailable} blocks every drain`);
    }
    return out;
  };
  const deployments = byKind('Deployment');
  t.same(problems(deployments, byKind('ScaledObject'), byKind('HorizontalPodAutoscaler'), byKind('PodDisruptionBudget')), []);

  const oneReplica = deployments.map((d) => structuredClone(d));
  oneReplica.find((d) => d.metadata.name === 'worker-payments')!.spec.replicas = 1;
  const scaledToOne = byKind('ScaledObject').map((s) => structuredClone(s));
  scaledToOne.find((s) => s.metadata.name === 'worker-payments')!.spec.minReplicaCount = 1;
  const loosePdbs = byKind('PodDisruptionBudget').map((p) => structuredClone(p));
  loosePdbs.find((p) => p.metadata.name === 'api')!.spec.maxUnavailable = 2;
  const noWebhooksPdb = byKind('PodDisruptionBudget').filter((p) => p.metadata.name !== 'worker-webhooks');
  t.same(
    problems(oneReplica, scaledToOne, byKind('HorizontalPodAutoscaler'), noWebhooksPdb),
    ['worker-payments Deployment replicas 1', 'worker-payments ScaledObject minReplicaCount 1', 'worker-webhooks: 0 PodDisruptionBudgets'],
    'payments on one pod and a Deployment without a budget are caught',
  );
  t.same(
    problems(deployments, byKind('ScaledObject'), byKind('HorizontalPodAutoscaler'), loosePdbs),
    ['api: a drain may take all 2 pods'],
    'a budget that lets a drain take every API pod is caught',
  );
});
