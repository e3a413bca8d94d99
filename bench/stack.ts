/**
 * Processes of `npm run bench`: a private redis-server, a local OTLP/HTTP sink, and the API / worker started
 * from dist/ exactly as `npm run start:api` / `start:worker` do (node --require ./dist/services/<kind>/tracing.js),
 * ready when they log "api listening" / "worker started" (the same signal test/helpers/services.ts waits for;
 * it also works with METRICS_ENABLED=false, when there is no metrics port to poll).
 */
import { spawn, ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../scripts/stack/ports';

/** Repository root (this file runs from dist/bench/). */
export const ROOT = path.resolve(__dirname, '..', '..');

export { freePort };

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Every child started here, so an interrupted bench (Ctrl-C) leaves no Redis or service behind. */
const children = new Set<ChildProcess>();
export function track<T extends ChildProcess>(child: T): T {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
export function killAll(): void {
  for (const c of children) c.kill('SIGKILL');
}

async function until(probe: () => Promise<boolean> | boolean, what: string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if (await probe()) return;
    } catch {
      /* not yet */
    }
    await sleep(50);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms`);
}

export interface RedisProcess {
  url: string;
  pid: number;
  stop(): void;
}

/**
 * A private Redis on a free port, configured like compose.yaml's (AOF, appendfsync everysec, maxmemory 1gb,
 * noeviction; no password), data in a temporary directory removed afterwards. The shared 6379 is not touched.
 */
export async function startRedis(): Promise<RedisProcess> {
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-redis-'));
  const child = track(spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes',
      '--appendfsync', 'everysec', '--maxmemory', '1gb', '--maxmemory-policy', 'noeviction'],
    { stdio: 'ignore' },
  ));
  await until(
    () =>
      new Promise<boolean>((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        sock.once('connect', () => sock.write('PING\r\n'));
        sock.once('data', (d) => (sock.destroy(), resolve(d.toString().startsWith('+PONG'))));
        sock.once('error', () => resolve(false));
      }),
    'redis',
  );
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid!,
    stop: () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Answers 200 to POST /v1/traces like a collector, counting requests and bytes: the export cost is real. */
export async function startOtlpSink(): Promise<{ endpoint: string; stats(): { requests: number; bytes: number }; stop(): void }> {
  let requests = 0;
  let bytes = 0;
  const server = http.createServer((req, res) => {
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('end', () => {
      if (req.method === 'POST' && req.url === '/v1/traces') requests++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    stats: () => ({ requests, bytes }),
    stop: () => server.close(),
  };
}

export interface Service {
  kind: 'api' | 'worker';
  pid: number;
  port?: number;
  metricsPort: number;
  /** Lines the process wrote (kept short), for error reports. */
  tail(): string;
  stop(): Promise<void>;
}

export async function startService(kind: 'api' | 'worker', env: Record<string, string>, nodeArgs: string[] = []): Promise<Service> {
  const metricsPort = await freePort();
  const port = kind === 'api' ? await freePort() : undefined;
  const entry = kind === 'api' ? 'dist/services/api/server.js' : 'dist/services/worker/main.js';
  const child: ChildProcess = track(spawn(process.execPath, [...nodeArgs, '--require', `./dist/services/${kind}/tracing.js`, entry], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', ...env, METRICS_PORT: String(metricsPort), ...(port ? { API_PORT: String(port) } : {}) },
    stdio: ['ignore', 'pipe', 'pipe'],
  }));
  const lines: string[] = [];
  let ready = false;
  const readyMsg = kind === 'api' ? '"msg":"api listening"' : '"msg":"worker started"';
  let buf = '';
  const onData = (chunk: Buffer) => {
    buf += chunk.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (line.includes(readyMsg)) ready = true;
      lines.push(line.slice(0, 500));
      if (lines.length > 20) lines.shift();
    }
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const tail = () => lines.join('\n');
  await until(() => {
    if (child.exitCode !== null) throw Object.assign(new Error(`${kind} exited ${child.exitCode}:\n${tail()}`), { fatal: true });
    return ready;
  }, `${kind}`).catch((err: Error & { fatal?: boolean }) => {
    child.kill('SIGKILL');
    throw new Error(`${err.message}\n${tail()}`);
  });
  return {
    kind,
    pid: child.pid!,
    port,
    metricsPort,
    tail,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
        child.once('exit', () => (clearTimeout(t), resolve()));
        child.kill('SIGTERM');
      }),
  };
}

/** Peak resident set size of a live process (VmHWM), bytes. */
export function peakRss(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system) a live process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}
