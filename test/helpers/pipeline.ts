/** API in-process + real worker process(es) on one prefix: the pipeline as a test sees it. */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { buildTestApp, type TestApp } from './app';
import { baseEnv, startWorker, type ServiceProcess } from './services';
import { SHARED_REDIS_URL } from './redis';
import { waitFor } from './wait';

export interface Pipeline extends TestApp {
  startWorker(extra?: Record<string, string>): Promise<ServiceProcess>;
  enqueue(queue: string, body: object, headers?: Record<string, string>): Promise<string>;
  job(queue: string, id: string): Promise<any>;
  waitForState(queue: string, id: string, state: string, timeoutMs?: number): Promise<any>;
  setFaults(queue: string, faults: object): Promise<void>;
}

export async function startPipeline(
  t: { teardown(fn: () => unknown): void },
  apiEnv: Record<string, string> = {},
  opts: { logger?: Logger } = {},
): Promise<Pipeline> {
  // The workers run with WEBHOOK_ALLOW_PRIVATE=true (baseEnv, targets on loopback); the API must agree.
  const test = await buildTestApp(t, { WEBHOOK_ALLOW_PRIVATE: 'true', ...apiEnv }, opts);
  const workers: ServiceProcess[] = [];
  t.teardown(async () => {
    await Promise.all(workers.map((w) => w.stop('SIGKILL')));
  });
  const p: Pipeline = {
    ...test,
    startWorker: async (extra = {}) => {
      const w = await startWorker(baseEnv(SHARED_REDIS_URL, test.prefix, extra));
      workers.push(w);
      return w;
    },
    // Like a correct client: an Idempotency-Key, and a retry with the same key on 503 (a loaded CI box can make
    // the producer's 400 ms command timeout fire — also when this test process's own event loop stalls past it,
    // since the timer then runs before the reply is read; the retry cannot create a second job). Backoff capped
    // at 1 s, 8 attempts: a client that gives up after ~8 s, as a real one with a retry budget would.
    enqueue: async (queue, body, headers = {}) => {
      const key = headers['idempotency-key'] ?? `test-${randomUUID()}`;
      for (let attempt = 1; ; attempt++) {
        const res = await test.app.inject({
          method: 'POST',
          url: `/v1/queues/${queue}/jobs`,
          headers: { ...test.auth, 'idempotency-key': key, ...headers },
          payload: body,
        });
        if (res.statusCode === 202) return res.json().id as string;
        if (res.statusCode !== 503 || attempt === 8) throw new Error(`enqueue ${queue}: ${res.statusCode} ${res.body}`);
        await new Promise((r) => setTimeout(r, Math.min(200 * attempt, 1_000)));
      }
    },
    job: async (queue, id) => (await test.app.inject({ method: 'GET', url: `/v1/queues/${queue}/jobs/${id}`, headers: test.auth })).json(),
    waitForState: async (queue, id, state, timeoutMs = 15_000) =>
      waitFor(
        async () => {
          const j = await p.job(queue, id);
          return j.state === state ? j : undefined;
        },
        { timeoutMs, what: `${queue} job ${id} ${state}` },
      ),
    setFaults: async (queue, faults) => {
      const res = await test.app.inject({ method: 'PUT', url: `/v1/admin/faults/${queue}`, headers: test.adminAuth, payload: faults });
      if (res.statusCode !== 200) throw new Error(`faults: ${res.statusCode} ${res.body}`);
      // Workers refresh fault settings every second.
      await new Promise((r) => setTimeout(r, 1_200));
    },
  };
  return p;
}
