/**
 * compose.yaml, checked without Docker: valid against the compose-spec JSON schema, every mounted file exists,
 * Prometheus targets and Grafana datasources match services and ports, each service gets the env it reads,
 * no secret literal, only the UIs and the API published (on 127.0.0.1), pinned images, healthchecks, limits.
 * Every check is also run on a broken copy to prove it can fail.
 */
import t, { type Test } from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { parseConfig } from '../../services/common/config';
import { receiverSettings } from '../../services/webhook-receiver/main';
import { ROOT } from '../helpers/services';
import {
  type Compose,
  envFileProblems,
  imageProblems,
  mountProblems,
  publishProblems,
  schemaErrors,
  secretLiteralProblems,
  startOrderProblems,
  targetProblems,
  urlProblems,
} from './checks';

const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8');
const text = read('compose.yaml');
const compose: Compose = YAML.parse(text, { merge: true });
const services = compose.services;
const clone = (): Compose => structuredClone(compose);
const prom = YAML.parse(read('observability/prometheus/prometheus.yml'));
const datasources = YAML.parse(read('observability/grafana/provisioning/datasources/datasources.yml'));
const envExample = read('.env.example');

/** Each pattern matches one of the problems, and there are no others. */
function expectProblems(t: Test, problems: string[], patterns: (string | RegExp)[]) {
  for (const p of patterns) t.ok(problems.some((x) => (typeof p === 'string' ? x === p : p.test(x))), `caught: ${p}`);
  t.equal(problems.length, patterns.length, `exactly these problems:\n${problems.join('\n')}`);
}

t.test('valid against the compose-spec schema', async (t) => {
  t.same(schemaErrors(compose), []);
  const broken = clone();
  broken.services.api.ports = 'not-a-list';
  t.ok(schemaErrors(broken).length, 'a wrong type is caught');
  const unknown = clone();
  unknown.services.api.helthcheck = unknown.services.api.healthcheck;
  t.ok(schemaErrors(unknown).length, 'a misspelt key is caught');
});

t.test('the services the stack needs: pinned images, memory limits, one network', async (t) => {
  const clusterProfile = ['redis-node-1', 'redis-node-2', 'redis-node-3', 'redis-node-4', 'redis-node-5', 'redis-node-6', 'redis-cluster-create'];
  t.same(Object.keys(services).sort(), ['alertmanager', 'api', 'grafana', 'jaeger', 'k6', 'prometheus', 'redis', 'redis_exporter', 'webhook-receiver', 'worker', ...clusterProfile].sort());
  t.same(imageProblems(compose), []);
  t.equal(services.worker.deploy.replicas, 5);
  t.same(services.k6.profiles, ['loadtest']);
  const redis = services.redis.command.join(' ');
  t.match(redis, /--maxmemory-policy noeviction/);
  t.match(redis, /--appendonly yes --appendfsync "\$\$REDIS_APPENDFSYNC"/);
  t.match(services.redis.environment.REDIS_APPENDFSYNC, /^\$\{REDIS_APPENDFSYNC:-everysec\}$/, 'fsync policy is the operator’s choice, everysec by default');
  t.match(redis, /--requirepass/);
  const b = clone();
  b.services.redis.image = 'redis:latest';
  b.services.grafana.image = 'grafana/grafana';
  delete b.services.api.deploy;
  b.services.jaeger.networks = ['default'];
  const problems = imageProblems(b);
  expectProblems(t, problems, [/redis: image redis:latest is not pinned/, /api: no memory limit/, /grafana: image grafana\/grafana is not pinned/, /jaeger: not on the one stack network/]);
});

t.test('memory limits leave room above what the services are told to use', async (t) => {
  const bytes = (m: string) => Number(/^(\d+)([mg])$/i.exec(m)![1]) * (/g$/i.test(m) ? 1024 ** 3 : 1024 ** 2);
  const th = YAML.parse(read('observability/thresholds.yaml'));
  t.ok(bytes(services.worker.deploy.resources.limits.memory) > th.worker_memory_bytes.critical, 'the container limit is above the worker’s own hard memory limit, so the worker drains before the OOM killer');
  const maxmemory = /--maxmemory (\d+)gb/.exec(services.redis.command.join(' '));
  t.ok(maxmemory, 'redis has a maxmemory');
  t.ok(bytes(services.redis.deploy.resources.limits.memory) >= 1.2 * Number(maxmemory![1]) * 1024 ** 3, 'redis container limit leaves room for AOF rewrite and overhead above maxmemory');
});

t.test('healthchecks and start order', async (t) => {
  for (const name of ['redis', 'api', 'worker', 'webhook-receiver', 'prometheus', 'alertmanager', 'grafana']) {
    t.ok(services[name].healthcheck?.test, `${name} has a healthcheck`);
  }
  for (const name of ['api', 'worker']) t.same(services[name].depends_on.redis, { condition: 'service_healthy' }, `${name} waits for a healthy redis`);
  t.match(services.worker.healthcheck.test.join(' '), /http:\/\/127\.0\.0\.1:9465\/readyz/, 'worker healthcheck asks /readyz on its metrics port');
  t.same(services.redis_exporter.depends_on.redis, { condition: 'service_healthy' });
  t.same(services.grafana.depends_on.prometheus, { condition: 'service_healthy' });
  t.same(services.prometheus.depends_on.alertmanager, { condition: 'service_healthy' });
  for (const dep of ['api', 'webhook-receiver', 'prometheus']) t.same(services.k6.depends_on[dep], { condition: 'service_healthy' }, `k6 waits for ${dep}`);
  t.same(startOrderProblems(compose), []);
  const b = clone();
  b.services.grafana.depends_on.jaeger = { condition: 'service_healthy' };
  b.services.api.depends_on.postgres = { condition: 'service_started' };
  expectProblems(t, startOrderProblems(b), [/api: depends on unknown service postgres/, /grafana: waits for jaeger to be healthy, but jaeger has no healthcheck/]);
});

t.test('every bind-mounted path exists in the repo, and lands where the configs look', async (t) => {
  t.same(mountProblems(compose, ROOT), []);
  const b = clone();
  b.services.prometheus.volumes.push('./observability/prometheus/missing.yml:/etc/prometheus/missing.yml:ro');
  expectProblems(t, mountProblems(b, ROOT), [/prometheus: mounted .\/observability\/prometheus\/missing.yml does not exist/]);
  // Container paths the configs refer to are inside the mounts.
  const mounts = Object.fromEntries(Object.entries(services).map(([n, s]) => [n, (s.volumes ?? []).map((v: string) => v.split(':')[1])]));
  const covered = (svc: string, p: string) => mounts[svc].some((m: string) => p === m || p.startsWith(`${m}/`));
  for (const f of prom.rule_files) t.ok(covered('prometheus', path.posix.dirname(f)), `prometheus rule_files ${f} is mounted`);
  t.ok(covered('prometheus', services.prometheus.command.find((c: string) => c.startsWith('--config.file=')).split('=')[1]), 'prometheus config mounted');
  const am = YAML.parse(read('observability/alertmanager/alertmanager.yml'));
  const amConfig: string = services.alertmanager.command.find((c: string) => c.startsWith('--config.file=')).split('=')[1];
  t.ok(covered('alertmanager', amConfig), 'alertmanager config mounted');
  t.ok(am.templates?.length, 'alertmanager has message templates');
  // Relative template paths are relative to the config file.
  for (const f of am.templates ?? []) t.ok(covered('alertmanager', path.posix.dirname(path.posix.resolve(path.posix.dirname(amConfig), f))), `alertmanager template ${f} is mounted`);
  const provider = YAML.parse(read('observability/grafana/provisioning/dashboards/dashboards.yml'));
  for (const p of provider.providers) t.ok(covered('grafana', p.options.path), `grafana dashboards provider reads the mounted ${p.options.path}`);
  t.ok(covered('grafana', '/etc/grafana/provisioning/datasources'), 'grafana provisioning mounted');
  t.ok(covered('k6', '/loadtest/k6/script.js'), 'k6 script mounted');
  t.ok(services.k6.command.includes('/loadtest/k6/script.js'));
  t.ok(existsSync(path.join(ROOT, 'loadtest/k6/script.js')) && existsSync(path.join(ROOT, 'loadtest/thresholds.json')) && existsSync(path.join(ROOT, 'loadtest/scenarios.json')), 'the files k6 opens are in the mounted folder');
});

t.test('Prometheus targets, Alertmanager and Grafana datasources match compose services and their ports', async (t) => {
  t.same(targetProblems(compose, prom, datasources), []);
  t.same(prom.scrape_configs.map((j: { job_name: string }) => j.job_name).sort(), ['alertmanager', 'api', 'prometheus', 'redis', 'redis-cluster', 'worker'], 'the contract’s scrape job names');
  const worker = prom.scrape_configs.find((j: { job_name: string }) => j.job_name === 'worker');
  t.same(worker.dns_sd_configs[0].names, ['worker'], 'every worker replica through Docker DNS');
  t.equal(String(worker.dns_sd_configs[0].port), services.worker.environment.METRICS_PORT);
  t.match(services.prometheus.command.join(' '), /--web.enable-remote-write-receiver/);
  t.match(services.prometheus.command.join(' '), /--enable-feature=exemplar-storage/);
  t.equal(services.k6.environment.K6_PROMETHEUS_RW_SERVER_URL, 'http://prometheus:9090/api/v1/write');
  const b = structuredClone(prom);
  b.scrape_configs.find((j: { job_name: string }) => j.job_name === 'api').static_configs[0].targets = ['api:9465'];
  b.scrape_configs.find((j: { job_name: string }) => j.job_name === 'redis').static_configs[0].targets = ['redis-exporter:9121'];
  const ds = structuredClone(datasources);
  ds.datasources[1].url = 'http://jaeger:16687';
  expectProblems(t, targetProblems(compose, b, ds), [/job api target api:9465: api does not listen on 9465/, /redis-exporter is not a compose service/, /datasource Jaeger: jaeger does not listen on 16687/]);
});

t.test('every URL a service is given points at a compose service on a port it listens on', async (t) => {
  t.same(urlProblems(compose), []);
  const b = clone();
  b.services.k6.environment.BASE_URL = 'http://127.0.0.1:3000';
  b.services.worker.environment.OTEL_EXPORTER_OTLP_ENDPOINT = 'http://jaeger:4319';
  expectProblems(t, urlProblems(b), [/worker.OTEL_EXPORTER_OTLP_ENDPOINT: .* jaeger does not listen on 4319/, /k6.BASE_URL: .* 127.0.0.1 is not a compose service/]);
});

t.test('each service gets the env it reads, and it parses', async (t) => {
  const fill = (env: Record<string, string>) =>
    Object.fromEntries(
      Object.entries(env).map(([k, v]) => [
        k,
        String(v).replace(/\$\{(\w+)(?::?[-?]([^}]*))?\}/g, (_, n: string, def?: string) =>
          n === 'REDIS_PASSWORD' ? 'pw' : n === 'WEBHOOK_SIGNING_SECRET' ? 'x'.repeat(32) : n === 'API_KEYS' || n === 'LOADTEST_API_KEY' ? 'k' : (def ?? ''),
        ),
      ]),
    );
  const api = parseConfig(fill(services.api.environment));
  t.equal(api.api.host, '0.0.0.0', 'API listens on the container network');
  t.equal(api.api.port, 3000);
  t.equal(api.metrics.host, '0.0.0.0', 'metrics reachable by Prometheus');
  t.equal(api.metrics.port, 9464);
  t.same(api.api.keys, ['k']);
  t.match(api.redis.url, /^redis:\/\/:pw@redis:6379$/);
  // k6 sends every request with one key: the per-key limit must let the largest scenario through.
  const scenarios = JSON.parse(read('loadtest/scenarios.json'));
  const peakVus = Math.max(...Object.values(scenarios.scenarios as Record<string, { stages: { target: number }[] }>).flatMap((s) => s.stages.map((st) => st.target)));
  const peakRps = (peakVus * 1000) / scenarios.thinkTimeMs;
  t.ok(api.api.rateLimit.max === 0 || (api.api.rateLimit.max * 1000) / api.api.rateLimit.windowMs >= 1.2 * peakRps, `API rate limit ${api.api.rateLimit.max}/${api.api.rateLimit.windowMs} ms leaves room for the ${peakVus}-VU peak (~${peakRps} req/s)`);
  const worker = parseConfig(fill(services.worker.environment));
  t.equal(worker.metrics.port, 9465);
  t.equal(worker.metrics.host, '0.0.0.0');
  t.ok(worker.webhooks.signingSecret.length >= 16);
  for (const name of ['api', 'worker']) t.equal(services[name].environment.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://jaeger:4318', `${name} traces go to Jaeger over OTLP/HTTP`);
  t.equal(services.jaeger.environment.COLLECTOR_OTLP_ENABLED, 'true');
  t.ok(Number(services.jaeger.environment.MEMORY_MAX_TRACES) > 0, 'Jaeger’s in-memory store is bounded (load tests would fill it)');
  const receiver = receiverSettings(fill(services['webhook-receiver'].environment));
  t.match(receiver, { host: '0.0.0.0', port: 8099 }, 'the receiver listens on the network, where k6 sends the workers');
  t.equal(receiver.secret, 'x'.repeat(32), 'the receiver verifies with the workers’ signing secret');
  t.equal(services['webhook-receiver'].environment.WEBHOOK_SIGNING_SECRET, services.worker.environment.WEBHOOK_SIGNING_SECRET);
  t.equal(services.worker.environment.WEBHOOK_ALLOW_PRIVATE, '${WEBHOOK_ALLOW_PRIVATE:-true}', 'workers may deliver to the receiver on the private network');
  // k6: every __ENV the script reads is set, except the optional RATE.
  const k6src = read('loadtest/k6/script.js') + read('loadtest/k6/options.js');
  const reads = new Set([...k6src.matchAll(/(?:__ENV|env)\.([A-Z_]+)/g)].map((m) => m[1]!));
  for (const name of reads) if (name !== 'RATE') t.ok(services.k6.environment[name] !== undefined, `k6 gets ${name}`);
  t.match(services.k6.command.join(' '), /-o experimental-prometheus-rw/);
  t.match(services.k6.command.join(' '), /--tag testid=\$\{TESTID/);
  t.match(services.k6.environment.K6_PROMETHEUS_RW_TREND_STATS, /p\(95\)/);
  t.equal(services.redis_exporter.environment.REDIS_ADDR, 'redis://redis:6379');
});

t.test('.env.example declares every variable compose.yaml requires', async (t) => {
  t.same(envFileProblems(text, envExample), []);
  expectProblems(t, envFileProblems(text + '\n  X: ${NEW_SECRET:?set it}\n', envExample), [/NEW_SECRET is required by compose.yaml but missing from .env.example/]);
  t.same(envFileProblems('  Y: ${HAS_DEFAULT:-1}\n  Z: $${NOT_INTERPOLATED}\n', ''), [], 'defaults and $$ escapes need nothing');
  // Placeholders only: nothing in the example looks like a real secret.
  for (const line of envExample.split('\n').filter((l) => /^[A-Z_]+=/.test(l))) {
    const [k, v] = [line.split('=')[0]!, line.split('=').slice(1).join('=')];
    if (/PASSWORD|SECRET|KEY/.test(k) && !k.endsWith('_FILE')) t.match(v, /^replace-with-/, `${k} is a placeholder`);
  }
});

t.test('no secret literal; secrets from the env file and secret files', async (t) => {
  t.same(secretLiteralProblems(compose, text), []);
  t.equal(services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD__FILE, '/run/secrets/grafana_admin_password', 'Grafana admin password from a secret file, no default');
  t.notOk(services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD, 'no inline Grafana password');
  t.same(services.grafana.secrets, ['grafana_admin_password']);
  t.same(services.alertmanager.secrets, ['slack_webhook_url', 'pagerduty_routing_key']);
  t.match(compose.secrets!.pagerduty_routing_key.file, /^\$\{PAGERDUTY_ROUTING_KEY_FILE:-\.\/secrets\//);
  t.match(compose.secrets!.slack_webhook_url.file, /^\$\{SLACK_WEBHOOK_URL_FILE:-\.\/secrets\//);
  t.match(compose.secrets!.grafana_admin_password.file, /^\$\{GRAFANA_ADMIN_PASSWORD_FILE:-\.\/secrets\//);
  const am = read('observability/alertmanager/alertmanager.yml');
  t.match(am, /api_url_file: \/run\/secrets\/slack_webhook_url/, 'Alertmanager reads the mounted secret');
  const ignored = read('.gitignore').split('\n');
  t.ok(ignored.includes('.env'), '.env is not committed');
  t.ok(ignored.includes('secrets/'), 'secret files are not committed');
  t.ok(read('.dockerignore').split('\n').includes('.env') && read('.dockerignore').split('\n').includes('secrets'), 'nor sent to the image build');
  const b = clone();
  b.services.api.environment.API_KEYS = 'hunter2';
  b.services.worker.environment.REDIS_URL = 'redis://:hunter2@redis:6379';
  b.services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD = 'admin';
  b.secrets!.slack_webhook_url.file = './slack.txt';
  const badText = text.replace('--requirepass \\"$$REDIS_PASSWORD\\"', '--requirepass hunter2') + '\n# https://hooks.slack.com/services/T000/B000/XXXX\n';
  expectProblems(t, secretLiteralProblems(b, badText), [
    'a Slack webhook URL literal',
    /redis --requirepass hunter2 is a literal/,
    /api.API_KEYS is not taken from the env file/,
    /worker.REDIS_URL has a literal password/,
    /grafana.GF_SECURITY_ADMIN_PASSWORD is not taken from the env file/,
    /secret slack_webhook_url file .\/slack.txt is not under the ignored secrets\/ folder/,
  ]);
});

t.test('only the UIs and the API are published, on 127.0.0.1', async (t) => {
  t.same(publishProblems(compose), []);
  for (const name of ['redis', 'redis_exporter', 'prometheus', 'alertmanager', 'worker', 'webhook-receiver', 'k6']) t.notOk(services[name].ports, `${name} not published`);
  const published = Object.entries(services).flatMap(([n, s]) => (s.ports ?? []).map((p: string) => `${n} ${p}`));
  t.same(published.sort(), ['api 127.0.0.1:3000:3000', 'grafana 127.0.0.1:3001:3000', 'jaeger 127.0.0.1:16686:16686']);
  const b = clone();
  b.services.redis.ports = ['127.0.0.1:6379:6379'];
  b.services.prometheus.ports = ['9090:9090'];
  b.services.api.ports = ['0.0.0.0:3000:3000'];
  expectProblems(t, publishProblems(b), [/api: port "0.0.0.0:3000:3000" is not bound to 127.0.0.1/, /redis: must not be published/, /prometheus: port "9090:9090" is not bound to 127.0.0.1/, /prometheus: must not be published/]);
});

t.test('cluster profile: 3 masters + 3 replicas from six redis-server nodes, and the app switches to them', async (t) => {
  const nodes = Object.keys(services).filter((n) => n.startsWith('redis-node-'));
  t.equal(nodes.length, 6, 'six nodes');
  for (const n of nodes) {
    const cmd = services[n].command.join(' ');
    t.same(services[n].profiles, ['cluster'], `${n}: only in the cluster profile`);
    t.match(cmd, /--cluster-enabled yes/, `${n}: cluster mode`);
    t.match(cmd, /--appendonly yes/, `${n}: AOF on`);
    t.match(cmd, /--cluster-node-timeout \d+/, `${n}: a node timeout`);
    t.match(cmd, /--maxmemory-policy noeviction/, `${n}: noeviction`);
    t.match(cmd, /--masterauth "\$\$REDIS_PASSWORD"/, `${n}: replicas authenticate to their master`);
  }
  const create = services['redis-cluster-create'];
  t.same(create.profiles, ['cluster']);
  const createCmd = create.command.join(' ');
  t.match(createCmd, /--cluster create (redis-node-\d:6379 ){6}--cluster-replicas 1 --cluster-yes/, 'redis-cli --cluster create, one replica per master');
  t.same(Object.keys(create.depends_on).sort(), nodes.sort(), 'created once every node is healthy');
  t.ok(Object.values(create.depends_on).every((d: any) => d.condition === 'service_healthy'));

  // The app: REDIS_CLUSTER_NODES empty by default (single Redis); the value .env.example offers parses, and names
  // cluster-profile services.
  t.equal(services.api.environment.REDIS_CLUSTER_NODES, '${REDIS_CLUSTER_NODES:-}');
  t.equal(services.worker.environment.REDIS_CLUSTER_NODES, '${REDIS_CLUSTER_NODES:-}');
  const offered = /^# REDIS_CLUSTER_NODES=(\S+)$/m.exec(envExample)?.[1] ?? '';
  const config = parseConfig({ REDIS_CLUSTER_NODES: offered });
  t.ok(config.redis.clusterNodes.length >= 3, `.env.example offers ${offered}`);
  for (const n of config.redis.clusterNodes) t.ok(nodes.includes(n.host) && n.port === 6379, `${n.host}:${n.port} is a cluster node service`);
});
