/**
 * A network namespace holding Redis, reached from the host over two veth pairs — one for the workers, one for the
 * API and the checker — so the workers' link can be taken down (a partition: packets dropped, sockets stay open)
 * while the API keeps its path. Only addresses of this namespace are ever configured. Needs root (ip netns).
 *
 * The partition takes the namespace's end of the workers' link down, never the host's: with the host end down
 * its connected route disappears and packets for Redis would follow the default route off the machine (seen:
 * a worker's Redis connection answered by some HTTP server outside). With the peer down the host keeps the
 * route and the packets die on a link without carrier; a blackhole route for the whole 10.<subnet>/16 backs
 * that up, so nothing addressed to the namespace ever leaves the host.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const exec = promisify(execFile);

export interface RedisNamespace {
  name: string;
  /** Redis's address on the workers' link. */
  workerAddress: string;
  /** Redis's address on the API's link (the API and the checker use it). */
  apiAddress: string;
  /** argv prefix that runs a command inside the namespace. */
  execPrefix: string[];
  /** Takes the workers' link down (true) or up again (false). */
  setWorkersLinkDown(down: boolean): Promise<void>;
  /** Deletes the namespace and both veth pairs; safe to call twice. */
  remove(): Promise<void>;
}

const ip = (...args: string[]) => exec('ip', args);

/**
 * @param tag short, unique per campaign (the pid): interface names are limited to 15 characters.
 * The subnet 10.x.0.0/16 (x from the tag, so two campaigns on one host rarely collide): /30 links 10.x.0.0
 * (workers) and 10.x.1.0 (API).
 */
const subnetFor = (tag: string) => 100 + (Number(tag) % 150);

export async function createRedisNamespace(tag: string): Promise<RedisNamespace> {
  const subnet = subnetFor(tag);
  const name = `chaos-${tag}`;
  const links = [
    { host: `cw${tag}`, peer: `cwr${tag}`, net: `10.${subnet}.0` },
    { host: `ca${tag}`, peer: `car${tag}`, net: `10.${subnet}.1` },
  ];
  const blackhole = `10.${subnet}.0.0/16`;
  const remove = async () => {
    for (const l of links) await ip('link', 'del', l.host).catch(() => undefined);
    await ip('netns', 'del', name).catch(() => undefined);
    await ip('route', 'del', 'blackhole', blackhole).catch(() => undefined);
  };
  try {
    await ip('route', 'replace', 'blackhole', blackhole);
    await ip('netns', 'add', name);
    await ip('-n', name, 'link', 'set', 'lo', 'up');
    for (const l of links) {
      await ip('link', 'add', l.host, 'type', 'veth', 'peer', 'name', l.peer);
      await ip('link', 'set', l.peer, 'netns', name);
      await ip('addr', 'add', `${l.net}.1/30`, 'dev', l.host);
      await ip('link', 'set', l.host, 'up');
      await ip('-n', name, 'addr', 'add', `${l.net}.2/30`, 'dev', l.peer);
      await ip('-n', name, 'link', 'set', l.peer, 'up');
    }
  } catch (err) {
    await remove();
    throw new Error(`chaos: could not create network namespace ${name} (needs root and iproute2): ${(err as Error).message}`, { cause: err });
  }
  return {
    name,
    workerAddress: `${links[0]!.net}.2`,
    apiAddress: `${links[1]!.net}.2`,
    execPrefix: ['ip', 'netns', 'exec', name],
    setWorkersLinkDown: async (down) => {
      await ip('-n', name, 'link', 'set', links[0]!.peer, down ? 'down' : 'up');
    },
    remove,
  };
}

/** Namespaces left by a campaign that was SIGKILLed (no cleanup ran): removed before a new one starts. */
export async function removeStaleNamespaces(): Promise<string[]> {
  const { stdout } = await ip('netns', 'list').catch(() => ({ stdout: '' }));
  const stale = stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => /^chaos-\d+$/.test(n) && !processAlive(Number(n.slice(6))));
  for (const n of stale) {
    const tag = n.slice(6);
    for (const host of [`cw${tag}`, `ca${tag}`]) await ip('link', 'del', host).catch(() => undefined);
    await ip('route', 'del', 'blackhole', `10.${subnetFor(tag)}.0.0/16`).catch(() => undefined);
    await ip('netns', 'pids', n)
      .then(({ stdout: pids }) => pids.split('\n').filter(Boolean).forEach((p) => process.kill(Number(p), 'SIGKILL')))
      .catch(() => undefined);
    await ip('netns', 'del', n).catch(() => undefined);
  }
  return stale;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
