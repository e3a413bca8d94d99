/**
 * Redis for tests: the machine's server on 127.0.0.1:6379 with a unique key prefix per test (cleaned up), or a
 * private redis-server on a free port for tests that kill, freeze or reconfigure it.
 */
import { spawn, ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { freePort } from './ports';
import { waitFor } from './wait';

export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379';

export function uniquePrefix(tag = 't'): string {
  return `test-${tag}-${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under the prefix (SCAN: fine for a test's few keys, never used by the product). */
export async function deletePrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

export interface RedisServer {
  url: string;
  port: number;
  dir: string;
  process: ChildProcess;
  /** Sends a signal (SIGKILL, SIGSTOP, SIGCONT, SIGTERM). */
  signal(sig: NodeJS.Signals): void;
  /** Starts the server again on the same port and directory (AOF replayed when enabled). */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  appendonly?: boolean;
  /** AOF fsync policy when appendonly: `everysec` (what compose ships) unless a test asks for `always`. */
  appendfsync?: 'always' | 'everysec';
  maxmemoryPolicy?: string;
  port?: number;
  /** Where the server's data directory is created (default: the OS temp dir). */
  parentDir?: string;
}

export async function startRedisServer(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(opts.parentDir ?? tmpdir(), 'redis-test-'));
  const args = [
    '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
    '--appendonly', opts.appendonly ? 'yes' : 'no', '--appendfsync', opts.appendfsync ?? 'everysec',
    '--maxmemory-policy', opts.maxmemoryPolicy ?? 'noeviction',
  ];
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    dir,
    process: undefined as unknown as ChildProcess,
    signal: (sig) => server.process.kill(sig),
    restart: async () => {
      server.process = spawn('redis-server', args, { stdio: 'ignore' });
      await waitFor(async () => {
        const r = new Redis(server.url, { maxRetriesPerRequest: 0, lazyConnect: true, retryStrategy: () => null });
        r.on('error', () => undefined); // not up yet: the poll tries again
        try {
          await r.connect();
          return (await r.ping()) === 'PONG';
        } finally {
          r.disconnect();
        }
      }, { timeoutMs: 10_000, what: `redis-server on ${port}` });
    },
    stop: async () => {
      if (server.process.exitCode === null && server.process.signalCode === null) {
        const exited = new Promise((r) => server.process.once('exit', r));
        server.process.kill('SIGKILL');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.restart();
  return server;
}
