/**
 * A private `redis-server` on a free loopback port with its data in a temporary directory, for tests that kill,
 * freeze or reconfigure Redis and for the bench. The machine's shared Redis (6379) is never touched.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './ports';
import { type ManagedProcess, startProcess } from './process';

export interface RedisServerOptions {
  /** Default: a free port. */
  port?: number;
  /** Where the data directory is created (default: the OS temp dir). */
  parentDir?: string;
  appendonly?: boolean;
  /** AOF fsync policy when appendonly: `everysec` (what compose ships) unless asked otherwise. */
  appendfsync?: 'always' | 'everysec' | 'no';
  /** e.g. '1gb' (compose.yaml's); default: no limit. */
  maxmemory?: string;
  /** Default `noeviction` (what compose ships: BullMQ must never lose keys to eviction). */
  maxmemoryPolicy?: string;
  /** More redis-server arguments, e.g. cluster mode's (test/helpers/redis-cluster.ts, scripts/stack). */
  extraArgs?: readonly string[];
}

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  /** The current server process (a new one after `restart()`). */
  readonly process: ChildProcess;
  readonly managed: ManagedProcess;
  /** Sends a signal to the current process (SIGKILL, SIGSTOP, SIGCONT, SIGTERM). */
  signal(sig: NodeJS.Signals): void;
  /** Starts the server again on the same port and directory (AOF replayed when enabled). */
  /** Starts the server again on the same port and data directory; `extraArgs` are added to this start only. */
  restart(extraArgs?: readonly string[]): Promise<void>;
  /** Kills the server (SIGKILL) and removes its directory. */
  stop(): Promise<void>;
}

/** True when something on 127.0.0.1:port answers PING with +PONG. */
export function pingRedis(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setTimeout(1_000, () => (sock.destroy(), resolve(false)));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (d) => (sock.destroy(), resolve(d.toString().startsWith('+PONG'))));
    sock.once('error', () => resolve(false));
  });
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(opts.parentDir ?? tmpdir(), 'redis-'));
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', opts.appendonly ? 'yes' : 'no', '--appendfsync', opts.appendfsync ?? 'everysec',
    '--maxmemory-policy', opts.maxmemoryPolicy ?? 'noeviction',
    ...(opts.maxmemory ? ['--maxmemory', opts.maxmemory] : []),
    ...(opts.extraArgs ?? []),
  ];
  const launch = (extra: readonly string[] = []) =>
    startProcess({
      name: `redis-server :${port}`,
      command: 'redis-server',
      args: [...args, ...extra],
      ready: { probe: () => pingRedis(port) },
      readyTimeoutMs: 10_000,
    });
  let current: ManagedProcess;
  try {
    current = await launch();
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    get process() {
      return current.child;
    },
    get managed() {
      return current;
    },
    signal: (sig) => current.signal(sig),
    restart: async (extraArgs) => {
      current = await launch(extraArgs);
    },
    stop: async () => {
      await current.stop({ signal: 'SIGKILL' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
