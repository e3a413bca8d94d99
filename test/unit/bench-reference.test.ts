/**
 * The bench's reference builds (bench/reference/bare, bench/reference/typical) do what the cost stage's ratios
 * assume: against the real Redis, a notifications job posted with the bench's key is validated, added with the
 * product's job options and done by the worker; a wrong key is refused and a bad body too. The typical build
 * also serves its request and job histograms.
 */
import t from 'tap';
import { Redis } from 'ioredis';
import { waitFor } from '../../scripts/lib/wait';
import { API_KEY } from '../../bench/plan';
import { REFERENCES, REFERENCE_JOB_OPTIONS, ensureReferenceDeps, referenceEnv, startReferenceProcess } from '../../bench/reference';
import { jobOptionsFor } from '../../services/common/job-options';
import { PRIORITIES } from '../../services/common/queue-catalog';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

t.test('the references add with the product job options and its default priority', async (t) => {
  t.match(REFERENCE_JOB_OPTIONS, jobOptionsFor('notifications'));
  t.equal(REFERENCE_JOB_OPTIONS.priority, PRIORITIES.normal);
});

for (const kind of REFERENCES) {
  t.test(`${kind} reference: key, schema, Queue.add with the job options, the worker completes the job`, { timeout: 240_000 }, async (t) => {
    ensureReferenceDeps(kind, (line) => t.comment(line));
    const prefix = `test-ref-${kind}-${process.pid}-${Date.now()}`;
    const env = referenceEnv(kind, { redisUrl: REDIS_URL, otlpEndpoint: 'http://127.0.0.1:9', concurrency: 2, prefix });
    const redis = new Redis(REDIS_URL);
    const started: Awaited<ReturnType<typeof startReferenceProcess>>[] = [];
    t.teardown(async () => {
      await Promise.all(started.map((s) => s.process.stop({ signal: 'SIGTERM', killAfterMs: 5_000 })));
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    });
    const worker = await startReferenceProcess(kind, 'worker', env);
    started.push(worker);
    const api = await startReferenceProcess(kind, 'api', env);
    started.push(api);
    const port = api.port!;
    t.ok(port > 0, `the API named its port (${port})`);
    const url = `http://127.0.0.1:${port}/v1/queues/notifications/jobs`;
    const post = (body: unknown, key = API_KEY) =>
      fetch(url, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    t.equal((await post({ data: { channel: 'email', to: 'a@example.com', template: 'welcome' } }, 'wrong')).status, 401, 'wrong key refused');
    t.equal((await post({ data: { channel: 'fax', to: 'a@example.com', template: 'welcome' } })).status, 400, 'bad body refused by the schema');
    const res = await post({ data: { channel: 'email', to: 'a@example.com', template: 'welcome' } });
    t.equal(res.status, 202);
    const { id } = (await res.json()) as { id: string };
    const job = `${prefix}:notifications:${id}`;
    const opts = JSON.parse((await redis.hget(job, 'opts')) ?? '{}');
    // The product's options as the API sends them (timeout-aware backoff included; reference jobs never fail, so
    // their Workers need no backoff strategy).
    t.match(opts, { attempts: jobOptionsFor('notifications').attempts, backoff: jobOptionsFor('notifications').backoff }, 'the product job options');
    t.equal(Number(await redis.hget(job, 'priority')), PRIORITIES.normal, 'priority normal');
    const done = await waitFor(async () => (await redis.hget(job, 'finishedOn')) && (await redis.hget(job, 'returnvalue')), { timeoutMs: 30_000, what: 'the job done' });
    t.match(JSON.parse(done), { channel: 'email', messageId: /^[0-9a-f-]{36}$/ });
    if (kind === 'typical') {
      const apiMetrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      t.match(apiMetrics, /http_request_duration_seconds_count\{[^}]*route="\/v1\/queues\/notifications\/jobs"/, 'fastify-metrics request histogram');
      const jobMetrics = await waitFor(async () => {
        const text = await (await fetch(`http://127.0.0.1:${worker.port!}/metrics`)).text();
        return /bullmq_job_e2e_seconds_count\{queue="notifications",status="completed"\} 1/.test(text) && text;
      }, { timeoutMs: 10_000, what: 'the job histogram' });
      t.match(jobMetrics, /bullmq_jobs_completed_total\{queue="notifications"\} 1/);
    }
  });
}
