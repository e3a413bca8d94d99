/**
 * The shared process, wait, redis-server and OTLP-sink helpers (scripts/lib) that tests, the bench and the
 * native stack start everything with. The readiness timeouts below are deliberately long: a helper that waited
 * for them instead of failing at once would fail these tests on the error's type, not on a clock.
 */
import t from 'tap';
import { existsSync } from 'node:fs';
import { ProcessExitedError, startProcess } from '../../scripts/lib/process';
import { waitFor } from '../../scripts/lib/wait';
import { pingRedis, startRedisServer } from '../../scripts/lib/redis-server';
import { startOtlpSink } from '../../scripts/lib/otlp-sink';

const node = (script: string) => ({ command: process.execPath, args: ['-e', script] });

t.test('a process that exits before it is ready rejects with its exit code and last output', async (t) => {
  const err = await startProcess({
    name: 'dies',
    ...node("console.log('booting'); console.error('config invalid: PORT'); process.exit(3)"),
    ready: { line: 'listening' },
    readyTimeoutMs: 120_000,
  }).catch((e: unknown) => e);
  t.type(err, ProcessExitedError, 'fails on the exit, not on the readiness timeout');
  const e = err as ProcessExitedError;
  t.equal(e.status.code, 3);
  t.match(e.message, /dies exited \(3\) while waiting for dies ready/);
  t.match(e.output, /booting/);
  t.match(e.output, /config invalid: PORT/);
});

t.test('a command that cannot be spawned rejects with the spawn error', async (t) => {
  const err = await startProcess({ name: 'missing', command: 'no-such-command-for-process-test', ready: { line: 'x' } }).catch((e: unknown) => e);
  t.type(err, ProcessExitedError);
  t.match((err as ProcessExitedError).status.error?.message ?? '', /ENOENT/);
});

t.test('ready on an output line; lines reach onLine; stop sends the signal and resolves with the exit', async (t) => {
  const seen: string[] = [];
  const p = await startProcess({
    name: 'server',
    ...node("setTimeout(() => console.log(JSON.stringify({ msg: 'up' })), 100); setInterval(() => {}, 1000)"),
    onLine: (line) => seen.push(line),
    ready: { line: '"msg":"up"' },
  });
  t.ok(p.running());
  t.same(seen, ['{"msg":"up"}']);
  const status = await p.stop();
  t.equal(status.signal, 'SIGTERM');
  t.notOk(p.running());
  t.equal(await p.stop(), status, 'stopping a stopped process resolves at once with how it ended');
});

t.test('ready on a probe', async (t) => {
  let calls = 0;
  const p = await startProcess({ name: 'probed', ...node('setInterval(() => {}, 1000)'), ready: { probe: () => ++calls >= 3 } });
  t.equal(calls, 3);
  await p.stop();
});

t.test('waitUntil rejects at once when the process dies while waiting', async (t) => {
  const p = await startProcess({ name: 'crashes', ...node("console.log('ok'); setTimeout(() => { console.error('boom'); process.exit(4) }, 200)"), ready: { line: 'ok' } });
  const err = await p.waitUntil(() => false, { timeoutMs: 120_000, what: 'something that never happens' }).catch((e: unknown) => e);
  t.type(err, ProcessExitedError);
  t.match((err as Error).message, /crashes exited \(4\) while waiting for something that never happens/);
  t.match((err as ProcessExitedError).output, /boom/);
});

t.test('stop escalates to SIGKILL after killAfterMs when SIGTERM is ignored', async (t) => {
  const p = await startProcess({ name: 'stubborn', ...node("process.on('SIGTERM', () => {}); console.log('ok'); setInterval(() => {}, 1000)"), ready: { line: 'ok' } });
  const status = await p.stop({ signal: 'SIGTERM', killAfterMs: 200 });
  t.equal(status.signal, 'SIGKILL');
});

t.test('waitFor resolves with the first truthy value, quotes the last error on timeout, stops on abort', async (t) => {
  let n = 0;
  t.equal(await waitFor(() => (++n >= 2 ? 'done' : undefined), { intervalMs: 1 }), 'done');
  await t.rejects(
    waitFor(() => Promise.reject(new Error('connection refused')), { timeoutMs: 50, intervalMs: 5, what: 'the thing' }),
    /timed out after 50 ms waiting for the thing: connection refused/,
  );
  const abort = new AbortController();
  setTimeout(() => abort.abort(new Error('gave up')), 20);
  await t.rejects(waitFor(() => false, { timeoutMs: 60_000, signal: abort.signal }), /gave up/);
});

t.test('redis-server: ready when it answers PING, restarts on the same port, stop removes its directory', async (t) => {
  const redis = await startRedisServer();
  t.ok(await pingRedis(redis.port));
  const exited = redis.managed.exited;
  redis.signal('SIGKILL');
  await exited;
  t.notOk(await pingRedis(redis.port), 'down after SIGKILL');
  await redis.restart();
  t.ok(await pingRedis(redis.port), 'up again after restart');
  await redis.stop();
  t.notOk(existsSync(redis.dir));
});

t.test('OTLP sink decodes spans, or only counts them with keepSpans: false', async (t) => {
  const body = JSON.stringify({
    resourceSpans: [{
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'api' } }] },
      scopeSpans: [{ spans: [{ traceId: 't1', spanId: 's1', name: 'POST', kind: 2, attributes: [{ key: 'http.response.status_code', value: { intValue: '202' } }] }] }],
    }],
  });
  for (const keepSpans of [true, false]) {
    const sink = await startOtlpSink({ keepSpans });
    const res = await fetch(`${sink.endpoint}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    t.equal(res.status, 200);
    t.same(sink.stats(), { requests: 1, bytes: Buffer.byteLength(body) });
    if (keepSpans) t.match(sink.spans, [{ service: 'api', traceId: 't1', name: 'POST', kind: 2, attributes: { 'http.response.status_code': 202 } }]);
    else t.same(sink.spans, []);
    await sink.close();
  }
});
