import net from 'node:net';
import { readFileSync } from 'node:fs';
import { randomInt } from 'node:crypto';

/**
 * Ports are picked below the kernel's ephemeral range (ip_local_port_range, 32768–60999 by default).
 * A port the OS hands out for `listen(0)` comes from that range, and so does the local port of every
 * outgoing connection: between our check and the service's own bind, any client connecting somewhere
 * (dozens of Redis connections in a parallel test run) could take it — CI once saw Alertmanager die
 * with "bind: address already in use" that way. Below the range only another explicit bind can clash.
 */
const LOWEST = 10_000;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > LOWEST + 1_000) return low;
  } catch {
    // not Linux: fall through to the default range start
  }
  return 32_768;
}

const HIGHEST = ephemeralLow() - 1;

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A loopback port that was free a moment ago, outside the range outgoing connections draw from.
 * `headroom` keeps port + headroom below that range too (a cluster node's bus port is port + 10000).
 */
export async function freePort(headroom = 0): Promise<number> {
  const highest = HIGHEST - headroom;
  if (highest <= LOWEST) throw new Error(`freePort: no room for a headroom of ${headroom} below ${HIGHEST + 1}`);
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = randomInt(LOWEST, highest + 1);
    if (await canBind(port)) return port;
  }
  throw new Error(`freePort: no free port in ${LOWEST}–${highest} after 200 tries`);
}
