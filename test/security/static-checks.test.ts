/**
 * Static: no secret literal anywhere in the repository (tracked files and new, not-ignored ones)
 * or in compose; Redis, Prometheus and Alertmanager never published; everything else published only on
 * 127.0.0.1; the Slack webhook URL only from a file (api_url_file) and the Grafana admin password only from
 * env/secret files; services bind loopback by default.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import YAML from 'yaml';
import { parseConfig } from '../../services/common/config';
import { ROOT } from '../helpers/services';

const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n')
  .filter((f) => f && !/^(node_modules|dist|\.tap|coverage|loadtest-results)\//.test(f) && f !== 'package-lock.json')
  .filter((f) => {
    try {
      const s = statSync(path.join(ROOT, f));
      return s.isFile() && s.size < 2_000_000;
    } catch {
      return false; // deleted in the working tree
    }
  });
const read = (f: string) => readFileSync(path.join(ROOT, f), 'utf8');

/** Credentials with a recognisable shape: never acceptable in a file, test or not. */
const SECRET_SHAPES: [string, RegExp][] = [
  ['Slack webhook URL', /hooks\.slack\.com\/services\/T[A-Z0-9]{6,}\/B[A-Z0-9]{6,}\/[A-Za-z0-9]{16,}/],
  ['Slack token', /\bxox[abprs]-[A-Za-z0-9-]{10,}/],
  ['private key', /-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY-----/],
  ['AWS access key', /\bAKIA[0-9A-Z]{16}\b/],
  ['GitHub token', /\bgh[pousr]_[A-Za-z0-9]{36}\b/],
  ['credentials in a URL', /\b(?:redis|rediss|https?|amqp|postgres(?:ql)?):\/\/[^\s:/@'"`$]+:[^\s@/'"`${}<>]{4,}@/],
];

/** In configuration files, a password/secret/token/key given as a literal instead of ${VAR}, a *_FILE or a path. */
const CONFIG_FILE = /(\.ya?ml|\.env(\..*)?|\.conf|\.ini|\.toml|Dockerfile.*)$/i;
// (`secrets:` lists compose secret names, not values.)
const SECRET_ASSIGNMENT = /^\s*-?\s*["']?((?!secrets["']?\s*:)[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[_-]?key|requirepass|api_url)(?![A-Za-z0-9_]*_?file)[A-Za-z0-9_.-]*)["']?\s*[:=]\s*["']?(\$\{[^}]*\}|[^\s"'#]+)/i;
/** A reference, not a value: ${VAR} or ${VAR:?message} (required, no default — ${VAR:-default} is a literal), or a placeholder. */
const PLACEHOLDER = /^(\$\{[A-Za-z0-9_]+(?::?\?[^}]*)?\}|\$[A-Z0-9_]+|<[^>]+>|changeme|change-me|replace[-\w]*|example[-\w]*|your[-\w]*|xxx+|\*+)$/i;

t.test('no secret literal in the repository', async (t) => {
  const findings: string[] = [];
  for (const f of files) {
    const text = read(f);
    if (text.includes('\u0000')) continue; // binary
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      for (const [what, re] of SECRET_SHAPES) if (re.test(line)) findings.push(`${f}:${i + 1} ${what}`);
      if (CONFIG_FILE.test(f)) {
        const m = SECRET_ASSIGNMENT.exec(line);
        if (m && !PLACEHOLDER.test(m[2]!) && !/^(true|false|null|\{\}|\[\]|\||>)$/i.test(m[2]!)) {
          findings.push(`${f}:${i + 1} ${m[1]} set to a literal`);
        }
      }
    });
  }
  t.same(findings, [], 'no credential-shaped literal, no literal password/secret/token in configuration');
  const committedEnv = files.filter((f) => /(^|\/)\.env$/.test(f) || /(^|\/)\.env\.(?!example$|sample$)[^/]+$/.test(f));
  t.same(committedEnv, [], 'no env file with real values in the repo (only *.example / *.sample)');
  t.comment(`scanned ${files.length} files: ${findings.length} secret literals, ${committedEnv.length} env files`);
});

t.test('Slack webhook URL only from a file', async (t) => {
  const amFiles = files.filter((f) => /alertmanager[^/]*\.ya?ml$/.test(f));
  t.ok(amFiles.length > 0, `alertmanager config present (${amFiles.join(', ')})`);
  for (const f of amFiles) {
    const cfg = YAML.parse(read(f)) as { global?: Record<string, unknown>; receivers?: { name: string; slack_configs?: Record<string, unknown>[] }[] };
    t.notOk(cfg.global?.slack_api_url, `${f}: no global.slack_api_url literal`);
    for (const r of cfg.receivers ?? []) {
      for (const s of r.slack_configs ?? []) {
        t.notOk(s.api_url, `${f}: receiver ${r.name} has no api_url literal`);
        t.ok(s.api_url_file || cfg.global?.slack_api_url_file, `${f}: receiver ${r.name} reads the URL from a file`);
      }
    }
  }
});

t.test('services listen on loopback by default', async (t) => {
  const cfg = parseConfig({});
  t.equal(cfg.api.host, '127.0.0.1', 'API_HOST defaults to 127.0.0.1');
  t.equal(cfg.metrics.host, '127.0.0.1', 'METRICS_HOST defaults to 127.0.0.1');
  const stack = files.filter((f) => /^scripts\/stack\/.*\.ts$/.test(f));
  const open = stack.flatMap((f) =>
    read(f)
      .split('\n')
      .map((line, i) => ({ f, i, line }))
      // An empty listen address (`--cluster.listen-address=`) turns that listener off: allowed.
      .filter(({ line }) => /0\.0\.0\.0|--bind\s+(?!127\.0\.0\.1)\S|listen-address=(?!127\.0\.0\.1|\s|`|'|$)/.test(line))
      .map(({ f, i, line }) => `${f}:${i + 1} ${line.trim()}`),
  );
  t.same(open, [], 'the native stack binds Redis, Prometheus, Alertmanager and exporters to 127.0.0.1');
});

const composeFiles = files.filter((f) => /(^|\/)(docker-)?compose(\.[\w-]+)?\.ya?ml$/.test(f));

/** Everything wrong with one compose document, as readable findings (empty = fine). */
function composeFindings(doc: { services?: Record<string, Record<string, any>> }): string[] {
  const out: string[] = [];
  for (const [name, svc] of Object.entries(doc.services ?? {})) {
    const image = String(svc.image ?? '');
    const ports: unknown[] = svc.ports ?? [];
    const internalOnly = /redis|prometheus|alertmanager|exporter/.test(name) || /redis|prometheus|alertmanager|exporter/.test(image);
    if (internalOnly && ports.length > 0) out.push(`${name} publishes ${JSON.stringify(ports)} (must not be published)`);
    if (!internalOnly) {
      for (const p of ports) {
        const hostIp = typeof p === 'string' || typeof p === 'number' ? (/^(\d+\.\d+\.\d+\.\d+):/.exec(String(p))?.[1] ?? '') : String((p as any).host_ip ?? '');
        if (hostIp !== '127.0.0.1') out.push(`${name} port ${JSON.stringify(p)} not bound to 127.0.0.1`);
      }
    }
    const env = svc.environment ?? {};
    const entries: [string, string][] = Array.isArray(env)
      ? env.map((e: string) => [e.split('=')[0]!, e.includes('=') ? e.slice(e.indexOf('=') + 1) : ''])
      : Object.entries(env as Record<string, string | number | boolean | null>).map(([k, v]) => [k, v == null ? '' : String(v)]);
    for (const [k, v] of entries) {
      if (/PASSWORD|SECRET|TOKEN|API_KEY|SLACK/i.test(k) && !/_FILE$/.test(k) && !(v === '' || /^\$\{[A-Za-z0-9_]+(:?\?[^}]*)?\}$/.test(v))) {
        out.push(`${name} ${k} is a literal or has a default (${v})`);
      }
    }
    if (name === 'grafana' || /^grafana\/grafana/.test(image)) {
      const pw = entries.find(([k]) => k === 'GF_SECURITY_ADMIN_PASSWORD');
      const pwFile = entries.find(([k]) => k === 'GF_SECURITY_ADMIN_PASSWORD__FILE');
      if (!(pwFile || (pw && /^\$\{/.test(pw[1])) || (!pw && svc.env_file))) out.push(`${name} admin password not from a secret file or the env file`);
    }
    const command = Array.isArray(svc.command) ? svc.command.join(' ') : String(svc.command ?? '');
    const pass = /--requirepass\s+("?)(\S+)/.exec(command);
    // $VAR, ${VAR} or compose's escaped $$VAR (expanded by the container's shell from its environment).
    if (pass && !/^\$\$?\{?[A-Za-z0-9_]+/.test(pass[2]!)) out.push(`${name} --requirepass literal`);
  }
  return out;
}

t.test('the scanners catch what they look for (planted samples, built at run time)', async (t) => {
  const slack = ['https://hooks.slack.com/services/', 'T0123ABCD', '/', 'B0123ABCD', '/', 'abcdefghijklmnopQRSTUVWX'].join('');
  t.ok(SECRET_SHAPES.some(([, re]) => re.test(slack)), 'Slack webhook URL');
  t.ok(SECRET_SHAPES.some(([, re]) => re.test(['-----BEGIN ', 'RSA PRIVATE', ' KEY-----'].join(''))), 'private key');
  t.ok(SECRET_SHAPES.some(([, re]) => re.test(`redis://default:${'hunter2hunter2'}@redis:6379`)), 'password in a Redis URL');
  const assignment = SECRET_ASSIGNMENT.exec(`  GF_SECURITY_ADMIN_${'PASSWORD'}: admin123`);
  t.ok(assignment && !PLACEHOLDER.test(assignment[2]!), 'literal password assignment');
  const ref = SECRET_ASSIGNMENT.exec(`  GF_SECURITY_ADMIN_${'PASSWORD'}: \${GRAFANA_ADMIN_PASSWORD}`);
  t.ok(ref && PLACEHOLDER.test(ref[2]!), '${VAR} reference accepted');
  const required = SECRET_ASSIGNMENT.exec(`  REDIS_${'PASSWORD'}: \${REDIS_PASSWORD:?set REDIS_PASSWORD in .env}`);
  t.ok(required && PLACEHOLDER.test(required[2]!), '${VAR:?message} (required, no default) accepted');
  const withDefault = SECRET_ASSIGNMENT.exec(`  REDIS_${'PASSWORD'}: \${REDIS_PASSWORD:-hunter2}`);
  t.ok(withDefault && !PLACEHOLDER.test(withDefault[2]!), '${VAR:-default} refused: the default is a literal');
  t.notOk(SECRET_ASSIGNMENT.exec('      api_url_file: /etc/alertmanager/secrets/slack_url'), 'api_url_file accepted');
  const bad = composeFindings({
    services: {
      redis: { image: 'redis:7.4', ports: ['6379:6379'], command: ['redis-server', '--requirepass', 'literal-pass'] },
      prometheus: { image: 'prom/prometheus:v3.1.0', ports: ['127.0.0.1:9090:9090'] },
      grafana: { image: 'grafana/grafana:11.4.0', ports: ['3001:3000'], environment: { GF_SECURITY_ADMIN_PASSWORD: 'admin' } },
      api: { ports: [{ target: 3000, published: 3000 }], environment: ['API_KEYS=${API_KEYS:-dev-key}'] },
    },
  });
  t.equal(bad.length, 8, `planted compose: ${bad.length} findings\n  ${bad.join('\n  ')}`);
  const good = composeFindings({
    services: {
      redis: { image: 'redis:7.4', command: ['redis-server', '--requirepass', '${REDIS_PASSWORD}'] },
      prometheus: { image: 'prom/prometheus:v3.1.0' },
      grafana: { image: 'grafana/grafana:11.4.0', ports: ['127.0.0.1:3001:3000'], environment: { GF_SECURITY_ADMIN_PASSWORD__FILE: '/run/secrets/gf' } },
      api: { ports: [{ target: 3000, published: 3000, host_ip: '127.0.0.1' }], environment: ['API_KEYS=${API_KEYS}'] },
    },
  });
  t.same(good, [], 'a correct compose has no findings');
});

t.test('compose: Redis, Prometheus and Alertmanager not published; the rest only on 127.0.0.1; secrets from env/files', { skip: composeFiles.length === 0 ? 'no compose file in the repository yet' : false }, async (t) => {
  for (const f of composeFiles) {
    const findings = composeFindings(YAML.parse(read(f)));
    t.same(findings, [], `${f}: no published internal service, no non-loopback port, no secret literal`);
  }
  t.comment(`compose files checked: ${composeFiles.join(', ')}`);
});
