/**
 * Native configs derived from the compose ones (observability/prometheus/prometheus.yml and
 * observability/alertmanager/alertmanager.yml): same jobs, rules, routes and templates, with targets rewritten
 * to loopback ports. An unknown scrape job fails loudly so the two never drift apart silently.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { repoPath } from '../lib/repo-root';
import type { Thresholds } from '../../services/common/thresholds';
import { prometheusRetention } from '../../observability/generate/retention';

export interface StackPorts {
  redis: number;
  redisExporter: number;
  prometheus: number;
  alertmanager: number;
  api: number;
  apiMetrics: number;
  workerMetrics: number[];
  receiver: number;
  slack: number;
}

/** The parts of observability/prometheus/prometheus.yml rewritten here (the rest passes through untouched). */
interface PrometheusYaml {
  global: { scrape_interval?: string; evaluation_interval?: string };
  rule_files?: string[];
  alerting: { alertmanagers: unknown[] };
  scrape_configs: {
    job_name: string;
    dns_sd_configs?: unknown;
    static_configs?: { targets: string[] }[];
    metrics_path?: string;
    relabel_configs?: Record<string, unknown>[];
  }[];
}

/** The parts of observability/alertmanager/alertmanager.yml rewritten here. */
interface Route {
  group_wait?: string;
  group_interval?: string;
  routes?: Route[];
}
interface AlertmanagerYaml {
  templates?: string[];
  route: Route;
  receivers: { name: string; slack_configs?: { api_url_file?: string }[]; pagerduty_configs?: unknown[] }[];
}

/**
 * @param redisNodes Redis Cluster nodes ("127.0.0.1:port"): the `redis-cluster` job scrapes each through the one
 * redis_exporter's multi-target endpoint (/scrape?target=…), so every redis_* series is per node (`instance`),
 * and the single-node `redis` job goes. Without: `redis-cluster` goes.
 */
export function prometheusConfig(ports: StackPorts, rulesDir: string, scrapeInterval?: string, redisNodes?: string[]): PrometheusYaml {
  const cfg = YAML.parse(readFileSync(repoPath('observability/prometheus/prometheus.yml'), 'utf8')) as PrometheusYaml;
  if (scrapeInterval) {
    cfg.global.scrape_interval = scrapeInterval;
    cfg.global.evaluation_interval = scrapeInterval;
  }
  cfg.rule_files = [path.join(rulesDir, '*.yml')];
  cfg.alerting.alertmanagers = [{ static_configs: [{ targets: [`127.0.0.1:${ports.alertmanager}`] }] }];
  const targets: Record<string, string[]> = {
    prometheus: [`127.0.0.1:${ports.prometheus}`],
    api: [`127.0.0.1:${ports.apiMetrics}`],
    worker: ports.workerMetrics.map((p) => `127.0.0.1:${p}`),
    redis: [`127.0.0.1:${ports.redisExporter}`],
    'redis-cluster': (redisNodes ?? []).map((n) => `redis://${n}`),
    alertmanager: [`127.0.0.1:${ports.alertmanager}`],
  };
  const unused = redisNodes?.length ? 'redis' : 'redis-cluster';
  cfg.scrape_configs = cfg.scrape_configs.filter((job) => job.job_name !== unused);
  for (const job of cfg.scrape_configs) {
    const t = targets[job.job_name];
    if (!t) throw new Error(`prometheus.yml has scrape job "${job.job_name}" the native stack does not know`);
    delete job.dns_sd_configs;
    job.static_configs = [{ targets: t }];
    if (job.job_name === 'redis-cluster') {
      // Targets are redis:// URLs already: the target itself is the exporter's `target` parameter.
      job.relabel_configs = [
        { source_labels: ['__address__'], target_label: '__param_target' },
        { source_labels: ['__param_target'], target_label: 'instance' },
        { target_label: '__address__', replacement: `127.0.0.1:${ports.redisExporter}` },
      ];
    }
  }
  return cfg;
}

/**
 * The native Prometheus' flags: compose.yaml's (remote-write receiver for k6, exemplars, lifecycle API), the
 * retention the shipped rules need (observability/generate/retention.ts), loopback paths and port.
 */
export function prometheusFlags(configFile: string, dataDir: string, port: number, t: Thresholds): string[] {
  return [
    `--config.file=${configFile}`,
    `--storage.tsdb.path=${dataDir}`,
    `--storage.tsdb.retention.time=${prometheusRetention(t)}`,
    `--web.listen-address=127.0.0.1:${port}`,
    '--web.enable-remote-write-receiver',
    '--enable-feature=exemplar-storage',
    '--web.enable-lifecycle',
  ];
}

export function alertmanagerConfig(slackUrlFile: string, fast: boolean): AlertmanagerYaml {
  const cfg = YAML.parse(readFileSync(repoPath('observability/alertmanager/alertmanager.yml'), 'utf8')) as AlertmanagerYaml;
  cfg.templates = [repoPath('observability/alertmanager/templates/*.tmpl')];
  for (const r of cfg.receivers) for (const s of r.slack_configs ?? []) s.api_url_file = slackUrlFile;
  // No PagerDuty from a local stack: a page still reaches the Slack receiver (its route continues to
  // slack-critical), and the pagerduty receiver is left without a config, so nothing is sent to it.
  for (const r of cfg.receivers) delete r.pagerduty_configs;
  if (fast) {
    // Drill timings: notify within seconds instead of minutes.
    for (const route of [cfg.route, ...(cfg.route.routes ?? [])]) {
      route.group_wait = '1s';
      route.group_interval = '2s';
    }
  }
  return cfg;
}
