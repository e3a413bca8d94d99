/**
 * Liveness and readiness of a process, served on its metrics listener (metrics-server.ts) for Kubernetes probes and
 * compose healthchecks. /livez answers as long as the event loop turns (a blocked or dead process does not answer
 * at all, which is what a liveness probe must detect). /readyz asks the process's own checks: a worker is ready
 * while every Redis connection it uses answers PING within READINESS_TIMEOUT_MS and it is not shutting down.
 */
/** A readiness check slower than this counts as failed: a probe must not hang as long as the stuck dependency. */
export const READINESS_TIMEOUT_MS = 1_000;

export type Readiness = { ready: true } | { ready: false; reason: string };

export interface HealthChecks {
  readiness(): Promise<Readiness>;
}

/** Resolves `check`, or rejects with `what … did not answer within ms` once `ms` have passed. */
async function within<T>(ms: number, what: string, check: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      check(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** What readiness needs of a Redis connection (ioredis Redis or Cluster, or BullMQ's view of one). */
export interface PingableRedis {
  ping(): Promise<unknown>;
}

export interface WorkerReadinessOptions {
  /** Every distinct Redis connection the process relies on (named, so the reason says which one is stuck). */
  connections: () => Promise<{ name: string; client: PingableRedis }[]>;
  shuttingDown: () => boolean;
  timeoutMs?: number;
}

export function redisReadiness(opts: WorkerReadinessOptions): HealthChecks {
  const timeoutMs = opts.timeoutMs ?? READINESS_TIMEOUT_MS;
  return {
    async readiness() {
      if (opts.shuttingDown()) return { ready: false, reason: 'shutting down: no new jobs are taken' };
      try {
        await within(timeoutMs, 'redis', async () => {
          const connections = await opts.connections();
          await Promise.all(
            connections.map(({ name, client }) =>
              within(timeoutMs, `redis connection ${name}`, () => client.ping()).catch((err: Error) => {
                throw new Error(`redis connection ${name}: ${err.message}`);
              }),
            ),
          );
        });
        return { ready: true };
      } catch (err) {
        return { ready: false, reason: (err as Error).message };
      }
    },
  };
}
