/**
 * prometheus.yml keeps the scrape contract (docs/contracts.md: job names, ports, DNS discovery of every worker
 * replica), and the configs the native stack derives from the compose ones are valid for the real promtool and
 * amtool, with the rules and templates actually found.
 */
import t from 'tap';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { REPO_ROOT } from '../../scripts/lib/repo-root';
import { alertmanagerConfig, prometheusConfig } from '../../scripts/stack/configs';
import { tool } from './tools';

const cfg = YAML.parse(readFileSync(path.join(REPO_ROOT, 'observability/prometheus/prometheus.yml'), 'utf8'));
const job = (name: string) => cfg.scrape_configs.find((j: { job_name: string }) => j.job_name === name);

t.test('scrape jobs and targets of the contract', async (t) => {
  t.same(cfg.scrape_configs.map((j: { job_name: string }) => j.job_name).sort(), ['alertmanager', 'api', 'prometheus', 'redis', 'redis-cluster', 'worker']);
  // The cluster profile's nodes, each through redis_exporter's multi-target endpoint, labelled by node name.
  t.same(job('redis-cluster').dns_sd_configs[0].names, ['redis-node-1', 'redis-node-2', 'redis-node-3', 'redis-node-4', 'redis-node-5', 'redis-node-6']);
  t.equal(job('redis-cluster').metrics_path, '/scrape');
  t.match(job('redis-cluster').relabel_configs, [{ target_label: '__param_target' }, { source_labels: ['__meta_dns_name'], target_label: 'instance' }, { target_label: '__address__', replacement: 'redis_exporter:9121' }]);
  t.same(job('api').static_configs, [{ targets: ['api:9464'] }]);
  t.same(job('redis').static_configs, [{ targets: ['redis_exporter:9121'] }]);
  t.same(job('alertmanager').static_configs, [{ targets: ['alertmanager:9093'] }]);
  t.same(job('prometheus').static_configs, [{ targets: ['localhost:9090'] }]);
  // Every replica of the compose service "worker" is one A record: each is scraped on its own.
  t.notOk(job('worker').static_configs, 'workers are discovered, not listed');
  t.match(job('worker').dns_sd_configs, [{ names: ['worker'], type: 'A', port: 9465 }]);
  t.same(cfg.alerting.alertmanagers, [{ static_configs: [{ targets: ['alertmanager:9093'] }] }]);
  t.same(cfg.rule_files, ['/etc/prometheus/rules/*.yml'], 'compose mounts observability/prometheus/rules there');
});

t.test('native stack configs (derived from the compose ones) pass promtool and amtool', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'obs-native-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'rules'));
  copyFileSync(path.join(REPO_ROOT, 'observability/prometheus/rules/bullmq.rules.yml'), path.join(dir, 'rules', 'bullmq.rules.yml'));
  const ports = { redis: 7001, redisExporter: 7002, prometheus: 7003, alertmanager: 7004, api: 7005, apiMetrics: 7006, workerMetrics: [7007, 7008], receiver: 7009, slack: 7010 };
  const prom = prometheusConfig(ports, path.join(dir, 'rules'), '1s');
  t.same(prom.scrape_configs.find((j: { job_name: string }) => j.job_name === 'worker')?.static_configs, [{ targets: ['127.0.0.1:7007', '127.0.0.1:7008'] }]);
  writeFileSync(path.join(dir, 'prometheus.yml'), YAML.stringify(prom));
  const checked = tool('promtool', ['check', 'config', path.join(dir, 'prometheus.yml')]);
  t.equal(checked.status, 0, checked.stdout + checked.stderr);
  t.match(checked.stdout + checked.stderr, /SUCCESS: \d+ rules found/, 'the rule file is found and valid');

  writeFileSync(path.join(dir, 'slack_webhook_url'), 'http://127.0.0.1:7010/slack');
  writeFileSync(path.join(dir, 'alertmanager.yml'), YAML.stringify(alertmanagerConfig(path.join(dir, 'slack_webhook_url'), true)));
  // --redis-cluster: the redis job scrapes every node through redis_exporter's multi-target /scrape endpoint.
  const clusterProm = prometheusConfig(ports, path.join(dir, 'rules'), '1s', ['127.0.0.1:7101', '127.0.0.1:7102']);
  const redisJob = clusterProm.scrape_configs.find((j) => j.job_name === 'redis-cluster');
  t.same(redisJob?.static_configs, [{ targets: ['redis://127.0.0.1:7101', 'redis://127.0.0.1:7102'] }], 'one target per cluster node');
  t.equal(redisJob?.metrics_path, '/scrape');
  t.notOk(clusterProm.scrape_configs.some((j) => j.job_name === 'redis'), 'no single-node redis job on a cluster');
  t.notOk(prom.scrape_configs.some((j) => j.job_name === 'redis-cluster'), 'no cluster job on one node');
  writeFileSync(path.join(dir, 'prometheus-cluster.yml'), YAML.stringify(clusterProm));
  const clusterChecked = tool('promtool', ['check', 'config', path.join(dir, 'prometheus-cluster.yml')]);
  t.equal(clusterChecked.status, 0, clusterChecked.stdout + clusterChecked.stderr);

  const am = tool('amtool', ['check-config', path.join(dir, 'alertmanager.yml')]);
  t.equal(am.status, 0, am.stdout + am.stderr);
  t.match(am.stdout, /1 templates/, 'templates found through the absolute path');
});

t.test('promtool check config fails on a broken config (the check can fail)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'obs-broken-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const broken = { ...cfg, scrape_configs: [...cfg.scrape_configs, { job_name: 'api', static_configs: [{ targets: ['x:1'] }] }] };
  writeFileSync(path.join(dir, 'p.yml'), YAML.stringify(broken));
  t.not(tool('promtool', ['check', 'config', path.join(dir, 'p.yml')]).status, 0, 'duplicate job name rejected');
});
