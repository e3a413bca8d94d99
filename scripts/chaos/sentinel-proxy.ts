/**
 * A TCP proxy that always leads to the master Sentinel names — what HAProxy with a role check, or a Kubernetes
 * Service on the master's label, gives clients that take one Redis address (API and workers read one REDIS_URL).
 * When Sentinel names another master, every proxied connection is closed: clients reconnect and land on the new
 * master, as they would behind HAProxy. Loopback only.
 */
import net from 'node:net';
import { Redis } from 'ioredis';
import { every } from '../lib/wait';

export interface SentinelProxy {
  port: number;
  /** The master Sentinel named last. */
  master(): { host: string; port: number };
  close(): Promise<void>;
}

export async function startSentinelProxy(o: { sentinelPort: number; masterName: string; pollMs?: number }): Promise<SentinelProxy> {
  const sentinel = new Redis(o.sentinelPort, '127.0.0.1', { maxRetriesPerRequest: 1, connectTimeout: 1_000 });
  sentinel.on('error', () => undefined);
  const read = async () => {
    const addr = (await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', o.masterName)) as [string, string] | null;
    if (!addr) throw new Error(`Sentinel knows no master ${o.masterName}`);
    return { host: addr[0], port: Number(addr[1]) };
  };
  let master = await read();
  const sockets = new Set<net.Socket>();
  const poller = every(o.pollMs ?? 100, async () => {
    const next = await read();
    if (next.port === master.port && next.host === master.host) return;
    master = next;
    for (const s of sockets) s.destroy();
  });
  const server = net.createServer((client) => {
    const upstream = net.connect(master.port, master.host);
    sockets.add(client).add(upstream);
    const close = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    master: () => master,
    close: async () => {
      await poller.stop();
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      sentinel.disconnect();
    },
  };
}

/**
 * Its own process (topology.ts starts it), so the campaign's load generator never delays the bytes between the
 * services and Redis: `node sentinel-proxy.js <sentinel port> <master name>` prints {"proxyPort":N} when listening.
 */
if (require.main === module) {
  const [sentinelPort, masterName] = process.argv.slice(2);
  startSentinelProxy({ sentinelPort: Number(sentinelPort), masterName: masterName ?? 'chaos' }).then(
    (p) => {
      process.stdout.write(`${JSON.stringify({ proxyPort: p.port })}\n`);
      const stop = () => void p.close().finally(() => process.exit(0));
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    },
    (err: Error) => {
      process.stderr.write(`sentinel proxy: ${err.message}\n`);
      process.exit(1);
    },
  );
}
