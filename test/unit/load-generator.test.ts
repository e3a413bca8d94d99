/**
 * scripts/lib/load-generator.ts, the one generator behind the load runner, the bench and the k6-less tests,
 * against a real loopback HTTP server: open loop without coordinated omission (a stalled answer makes the
 * requests due meanwhile late, and that lateness is measured), closed loop with think time, weighted targets with
 * per-label results, per-request Idempotency-Keys, timeouts, and the answer framing it parses.
 */
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { answerEnd, generateLoad, validateLoadSpec, type LoadTarget } from '../../scripts/lib/load-generator';

interface Seen {
  path: string;
  key: string | undefined;
  auth: string | undefined;
}

/** A server answering 202 at once, except what `hold` says (ms to wait, or null: never answer). */
async function server(hold: (n: number, path: string) => number | null = () => 0, status = (_path: string) => 202) {
  const seen: Seen[] = [];
  const srv = http.createServer((req, res) => {
    const n = seen.length;
    seen.push({ path: req.url ?? '', key: req.headers['idempotency-key'] as string | undefined, auth: req.headers.authorization });
    req.resume();
    req.on('end', () => {
      const ms = hold(n, req.url ?? '');
      if (ms === null) return;
      const answer = () => res.writeHead(status(req.url ?? ''), { 'content-type': 'application/json' }).end('{"id":"1"}');
      if (ms > 0) setTimeout(answer, ms);
      else answer();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return { origin, seen, close: () => new Promise<void>((r) => srv.close(() => r())).then(() => undefined) };
}

const target = (origin: string, path: string, extra: Partial<LoadTarget> = {}): LoadTarget => ({ origin, path, body: '{"data":{}}', ...extra });

t.test('open loop: requests due during a stalled answer are late, and that lateness is the latency', async (t) => {
  // One connection, 200 req/s for 1.5 s; request 50's answer is held 500 ms. A closed-loop or send-time-measuring
  // generator would record one slow request; here the ~100 requests due meanwhile wait and are measured late.
  const s = await server((n) => (n === 50 ? 500 : 0));
  t.teardown(s.close);
  const r = await generateLoad({ targets: [target(s.origin, '/q')], apiKey: 'k', stages: [{ seconds: 1.5, rate: 200 }], connections: 1 });
  t.equal(r.sent, 300, 'every due request was sent: the schedule does not wait for answers');
  t.equal(r.accepted, 300);
  t.equal(r.errors, 0);
  t.equal(r.unfinished, 0);
  t.ok(r.latency.p90 >= 100, `latency from the due time shows the stall (p90 ${r.latency.p90} ms)`);
  t.ok(r.latency.max >= 490, `the held request counts in full (max ${r.latency.max} ms)`);
  t.ok(r.service.p90 < r.latency.p90 / 2, `service time (from the actual send) does not (p90 ${r.service.p90} ms vs ${r.latency.p90} ms)`);
  t.match(r.byLabel['/q'], { sent: 300, accepted: 300 }, 'the path is the label by default');
  t.ok(r.cpuSeconds > 0);
});

t.test('closed loop with think time: each user waits for its answer, then thinks', async (t) => {
  const s = await server(() => 0);
  t.teardown(s.close);
  const r = await generateLoad({ targets: [target(s.origin, '/q')], apiKey: 'k', stages: [{ seconds: 1, users: 2, thinkTimeMs: 100 }], connections: 2 });
  // 2 users × (1 s / ~100 ms) ≈ 20; a loaded machine sends fewer, never more.
  t.ok(r.sent >= 8 && r.sent <= 22, `about 20 requests (${r.sent})`);
  t.equal(r.accepted, r.sent);
  // The first request goes out at once: a stage as short as the think time still sends one per user.
  const short = await generateLoad({ targets: [target(s.origin, '/q')], apiKey: 'k', stages: [{ seconds: 0.5, users: 3, thinkTimeMs: 1000 }], connections: 3 });
  t.equal(short.sent, 3, 'one request per user, sent before thinking');
});

t.test('weighted targets, per-label results, statuses, bearer key and a new Idempotency-Key per request', async (t) => {
  const s = await server(() => 0, (path) => (path === '/c' ? 429 : 202));
  t.teardown(s.close);
  const targets = [target(s.origin, '/a', { label: 'a', weight: 2, idempotencyKeyPrefix: 'pre-' }), target(s.origin, '/b', { label: 'b' }), target(s.origin, '/c', { label: 'c' })];
  const r = await generateLoad({ targets, apiKey: 'secret', stages: [{ seconds: 0.6, rate: 200 }], connections: 8 });
  t.equal(r.sent, 120);
  t.same([r.byLabel.a!.sent, r.byLabel.b!.sent, r.byLabel.c!.sent], [60, 30, 30], 'sent in proportion to the weights');
  t.equal(r.byLabel.c!.accepted, 0);
  t.same(r.byLabel.c!.statuses, { 429: 30 }, 'other statuses are answers, counted by status');
  t.equal(r.accepted, 90);
  t.ok(s.seen.every((x) => x.auth === 'Bearer secret'));
  const keys = s.seen.filter((x) => x.path === '/a').map((x) => x.key!);
  t.ok(keys.every((k) => /^pre-[0-9a-f-]{36}$/.test(k)), 'prefix + UUID');
  t.equal(new Set(keys).size, keys.length, 'never the same key twice');
  t.ok(s.seen.filter((x) => x.path !== '/a').every((x) => x.key === undefined), 'no key where none is asked for');
});

t.test('an answer later than the timeout is an error; the connection is replaced and the load goes on', async (t) => {
  const s = await server((n) => (n === 3 ? null : 0));
  t.teardown(s.close);
  const r = await generateLoad({ targets: [target(s.origin, '/q')], apiKey: 'k', stages: [{ seconds: 1.2, rate: 50 }], connections: 1, timeoutMs: 300 });
  t.equal(r.sent, 60);
  t.equal(r.errors, 1, 'the unanswered request');
  t.equal(r.accepted, 59, 'the others answered on a new connection');
});

t.test('answer framing: Content-Length, chunked (split anywhere), no body', async (t) => {
  const cl = Buffer.from('HTTP/1.1 202 Accepted\r\ncontent-length: 5\r\n\r\nhelloHTTP/1.1 200');
  t.same(answerEnd(cl), { end: cl.indexOf('HTTP/1.1 200'), status: 202 }, 'ends after the body; the next answer stays');
  t.equal(answerEnd(cl.subarray(0, 45)), undefined, 'incomplete body');
  const chunked = Buffer.from('HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\na\r\n0123456789\r\n0\r\n\r\n');
  t.same(answerEnd(chunked), { end: chunked.length, status: 200 });
  for (let cut = chunked.indexOf('\r\n\r\n') + 4; cut < chunked.length; cut++) {
    if (answerEnd(chunked.subarray(0, cut)) !== undefined) t.fail(`complete at ${cut} of ${chunked.length}`);
  }
  const empty = Buffer.from('HTTP/1.1 204 No Content\r\ndate: x\r\n\r\n');
  t.same(answerEnd(empty), { end: empty.length, status: 204 });
});

t.test('a spec that cannot run is refused with a message', async (t) => {
  const ok = { targets: [target('http://127.0.0.1:1', '/q')], apiKey: 'k', stages: [{ seconds: 1, rate: 10 }], connections: 1 };
  t.doesNotThrow(() => validateLoadSpec(ok));
  t.throws(() => validateLoadSpec({ ...ok, targets: [] }), /no targets/);
  t.throws(() => validateLoadSpec({ ...ok, stages: [{ seconds: 1, rate: 0 }] }), /rate > 0/);
  t.throws(() => validateLoadSpec({ ...ok, stages: [{ seconds: 1, users: 1.5 }] }), /users/);
  t.throws(() => validateLoadSpec({ ...ok, connections: 0 }), /connections/);
});
