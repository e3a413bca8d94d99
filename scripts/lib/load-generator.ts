/**
 * The repository's one HTTP load generator: behind `npm run loadtest` (loadtest/run.ts), `npm run bench`
 * (bench/stack.ts runs it as its own process, so its CPU is measured apart) and the k6-less tests. k6
 * (loadtest/k6/) is the external alternative with the same scenarios.
 *
 * Each stage of a run is either
 * - open loop (`rate`): request i of the stage is *scheduled* at stageStart + i/rate whatever happened to earlier
 *   requests; latency is measured from that scheduled time, so a slow answer cannot hide the requests that should
 *   have been sent meanwhile (no coordinated omission, like wrk2 or k6's constant-arrival-rate executor). A
 *   request that finds no free connection waits in the generator, and that wait counts. `service` is measured
 *   from the moment the request was actually written;
 * - closed loop (`users`): that many users, each sending a request, waiting for its answer, then `thinkTimeMs`
 *   before the next (k6 VUs that post then sleep); latency is then the service time.
 *
 * Why not autocannon: its overallRate gives every connection a per-second quota fired back to back at the start
 * of each second (bursts, not a steady arrival rate) and latency counts from the actual send. The generator
 * shares the machine with what it measures, so it is kept cheap: plain keep-alive sockets, each request a
 * pre-built buffer, answers parsed for status and framing only (Content-Length or chunked).
 *
 *   node dist/scripts/lib/load-generator.js '<LoadSpec as JSON>'   → one JSON line (LoadResult) on stdout
 */
import net from 'node:net';
import tls from 'node:tls';
import { randomUUID } from 'node:crypto';
import * as hdr from 'hdr-histogram-js';
import { waitFor } from './wait';

export interface LoadTarget {
  origin: string;
  path: string;
  body: string;
  /** Results are also reported per label (the queue); default: the path. */
  label?: string;
  /** Share of the requests sent to this target, relative to the others (default 1). */
  weight?: number;
  /** When set, every request carries `Idempotency-Key: <prefix><random UUID>`: each request is its own intent. */
  idempotencyKeyPrefix?: string;
}

export type LoadStage = { seconds: number; rate: number } | { seconds: number; users: number; thinkTimeMs?: number };

export interface LoadSpec {
  targets: LoadTarget[];
  /** Sent as `Authorization: Bearer <apiKey>`. */
  apiKey: string;
  stages: LoadStage[];
  /** Keep-alive connections per origin. */
  connections: number;
  /** An answer later than this is an error and its connection is replaced (default 10 s). */
  timeoutMs?: number;
  /** How long the last answers are waited for once the load ends (default 10 s); then they count as unfinished. */
  drainMs?: number;
}

/** ms. */
export interface Latency {
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

export interface LoadTally {
  sent: number;
  /** Answers with any HTTP status. */
  answered: number;
  /** 202 answers. */
  accepted: number;
  statuses: Record<string, number>;
  /** No answer: connection lost or timed out. */
  errors: number;
  /** From the scheduled send time (open loop); the service time in closed loop. */
  latency: Latency;
  /** From the actual send. */
  service: Latency;
}

export interface LoadResult extends LoadTally {
  byLabel: Record<string, LoadTally>;
  /** Requests still unanswered when the run ended (then abandoned). */
  unfinished: number;
  /** Length of the load (the stages), without the wait for the last answers. */
  seconds: number;
  acceptedPerS: number;
  sentPerS: number;
  /** Largest delay of the generator behind its own schedule, ms (a busy generator shows up here). */
  maxScheduleLagMs: number;
  /** CPU seconds used by the generator's process during the run. */
  cpuSeconds: number;
}

/** Live counts while a run goes on (progress lines). */
export interface LoadProgress {
  elapsedMs: number;
  sent: number;
  answered: number;
  errors: number;
  byLabel: Record<string, { answered: number; errors: number }>;
}

/** Microsecond histograms up to 10 minutes. */
const histogram = () => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
type Histogram = ReturnType<typeof histogram>;

class Tally {
  sent = 0;
  answered = 0;
  accepted = 0;
  errors = 0;
  statuses: Record<string, number> = {};
  lat = histogram();
  svc = histogram();

  answer(status: number, latencyMs: number, serviceMs: number): void {
    this.answered++;
    if (status === 202) this.accepted++;
    this.statuses[status] = (this.statuses[status] ?? 0) + 1;
    this.lat.recordValue(Math.max(1, Math.round(latencyMs * 1000)));
    this.svc.recordValue(Math.max(1, Math.round(serviceMs * 1000)));
  }

  summary(): LoadTally {
    return { sent: this.sent, answered: this.answered, accepted: this.accepted, statuses: this.statuses, errors: this.errors, latency: latency(this.lat), service: latency(this.svc) };
  }
}

function latency(h: Histogram): Latency {
  const ms = (q: number) => (h.totalCount ? Math.round(h.getValueAtPercentile(q)) / 1000 : 0);
  return { p50: ms(50), p90: ms(90), p95: ms(95), p99: ms(99), p999: ms(99.9), max: h.totalCount ? h.maxValue / 1000 : 0 };
}

/**
 * Where one HTTP/1.1 answer ends in `buf` (head and body), or -1 while incomplete. Only the framing the APIs
 * under test use: Content-Length, chunked, or neither (no body: 204/304 or an empty answer).
 */
export function answerEnd(buf: Buffer): { end: number; status: number } | undefined {
  const head = buf.indexOf('\r\n\r\n');
  if (head < 0) return undefined;
  const headers = buf.toString('latin1', 0, head);
  const status = Number(headers.slice(9, 12));
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
  if (length) {
    const end = head + 4 + Number(length[1]);
    return buf.length >= end ? { end, status } : undefined;
  }
  if (!/\r\ntransfer-encoding:[^\r]*chunked/i.test(headers)) return { end: head + 4, status };
  let at = head + 4;
  for (;;) {
    const line = buf.indexOf('\r\n', at);
    if (line < 0) return undefined;
    const size = parseInt(buf.toString('latin1', at, line), 16);
    if (!Number.isFinite(size)) return { end: buf.length, status }; // not HTTP we understand: take what came
    if (size === 0) {
      const end = buf.indexOf('\r\n\r\n', line); // the last chunk, then optional trailers
      return end < 0 ? undefined : { end: end + 4, status };
    }
    at = line + 2 + size + 2;
    if (buf.length < at) return undefined;
  }
}

interface Request {
  target: number;
  scheduled: number;
  /** Closed loop: the user that sent it. */
  user?: number;
}

/** One keep-alive connection, one request at a time; reconnects when the server closes it. */
class Conn {
  private sock: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  request: Request | undefined;
  started = 0;
  private closed = false;

  constructor(
    private readonly origin: URL,
    private readonly onAnswer: (c: Conn, req: Request, status: number) => void,
    private readonly onLost: (c: Conn, req: Request) => void,
  ) {
    this.sock = this.connect();
  }

  private connect(): net.Socket {
    const port = Number(this.origin.port) || (this.origin.protocol === 'https:' ? 443 : 80);
    const sock = this.origin.protocol === 'https:' ? tls.connect({ port, host: this.origin.hostname, servername: this.origin.hostname }) : net.connect(port, this.origin.hostname);
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => this.data(chunk));
    sock.on('error', () => undefined); // followed by 'close'
    sock.on('close', () => {
      const lost = this.request;
      this.request = undefined;
      this.buf = Buffer.alloc(0);
      if (this.closed) return;
      this.sock = this.connect();
      if (lost) this.onLost(this, lost);
    });
    return sock;
  }

  send(req: Request, bytes: Buffer): void {
    this.request = req;
    this.started = performance.now();
    this.sock.write(bytes);
  }

  /** Gives up on the request in flight: the connection is replaced and the request counted as lost. */
  abandon(): void {
    this.sock.destroy();
  }

  private data(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const answer = answerEnd(this.buf);
    if (!answer) return;
    this.buf = this.buf.subarray(answer.end);
    const req = this.request;
    this.request = undefined;
    if (req) this.onAnswer(this, req, answer.status);
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}

/** Smooth weighted round robin (nginx): targets in proportion to their weights, evenly interleaved. */
function weightedOrder(weights: number[]): () => number {
  const total = weights.reduce((a, w) => a + w, 0);
  const current = weights.map(() => 0);
  return () => {
    let best = 0;
    for (let i = 0; i < weights.length; i++) {
      current[i]! += weights[i]!;
      if (current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    return best;
  };
}

export function validateLoadSpec(spec: LoadSpec): void {
  if (!spec.targets.length) throw new Error('load spec: no targets');
  if (!spec.stages.length) throw new Error('load spec: no stages');
  if (!(Number.isInteger(spec.connections) && spec.connections > 0)) throw new Error(`load spec: connections must be a positive integer, got ${spec.connections}`);
  for (const s of spec.stages) {
    if (!(s.seconds > 0)) throw new Error(`load spec: a stage lasts more than 0 s, got ${s.seconds}`);
    if ('rate' in s ? !(s.rate > 0) : !(Number.isInteger(s.users) && s.users > 0)) throw new Error(`load spec: a stage needs a rate > 0 or a positive number of users, got ${JSON.stringify(s)}`);
  }
  if (spec.targets.every((t) => (t.weight ?? 1) <= 0)) throw new Error('load spec: every target has weight 0');
}

/** Starts a run; `result` settles when the stages are over and the last answers are in (or abandoned). */
export function startLoad(spec: LoadSpec): { result: Promise<LoadResult>; progress(): LoadProgress } {
  validateLoadSpec(spec);
  const timeoutMs = spec.timeoutMs ?? 10_000;
  const labels = spec.targets.map((t) => t.label ?? t.path);
  const byLabel = new Map(labels.map((l) => [l, new Tally()]));
  const all = new Tally();
  const pick = weightedOrder(spec.targets.map((t) => Math.max(0, t.weight ?? 1)));
  // Pre-built around the one part that changes per request (the Idempotency-Key), so a request costs a concat.
  const build = spec.targets.map((t) => {
    const u = new URL(t.origin);
    const head = Buffer.from(`POST ${t.path} HTTP/1.1\r\nhost: ${u.host}\r\nauthorization: Bearer ${spec.apiKey}\r\n`);
    const rest = Buffer.from(`content-type: application/json\r\ncontent-length: ${Buffer.byteLength(t.body)}\r\nconnection: keep-alive\r\n\r\n${t.body}`);
    const prefix = t.idempotencyKeyPrefix;
    if (prefix === undefined) {
      const whole = Buffer.concat([head, rest]);
      return () => whole;
    }
    return () => Buffer.concat([head, Buffer.from(`idempotency-key: ${prefix}${randomUUID()}\r\n`), rest]);
  });
  const origins = [...new Set(spec.targets.map((t) => t.origin))];
  const originOf = spec.targets.map((t) => origins.indexOf(t.origin));
  const waiting: Request[][] = origins.map(() => []);
  const free: Conn[][] = origins.map(() => []);
  let inflight = 0;
  let maxLag = 0;
  let loading = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();

  const dispatch = (o: number) => {
    while (waiting[o]!.length && free[o]!.length) {
      const req = waiting[o]!.shift()!;
      free[o]!.pop()!.send(req, build[req.target]!());
    }
  };
  const issue = (scheduled: number, user?: number) => {
    const target = pick();
    all.sent++;
    byLabel.get(labels[target]!)!.sent++;
    inflight++;
    const o = originOf[target]!;
    waiting[o]!.push({ target, scheduled, user });
    dispatch(o);
  };

  // Closed loop: users ≥ `activeUsers` stop after their current request (a stage with fewer users).
  let activeUsers = 0;
  const userBusy: boolean[] = [];
  const think = { ms: 0 };
  const userNext = (user: number) => {
    userBusy[user] = false;
    if (!loading || user >= activeUsers) return;
    userBusy[user] = true;
    if (think.ms > 0) setTimeout(() => (loading && user < activeUsers ? issue(performance.now(), user) : (userBusy[user] = false)), think.ms);
    else issue(performance.now(), user);
  };

  const finished = (conn: Conn, o: number, req: Request) => {
    inflight--;
    free[o]!.push(conn);
    dispatch(o);
    if (req.user !== undefined) userNext(req.user);
  };
  const conns = origins.map((origin, o) =>
    Array.from({ length: spec.connections }, () => {
      const c = new Conn(
        new URL(origin),
        (conn, req, status) => {
          const now = performance.now();
          all.answer(status, now - req.scheduled, now - conn.started);
          byLabel.get(labels[req.target]!)!.answer(status, now - req.scheduled, now - conn.started);
          finished(conn, o, req);
        },
        (conn, req) => {
          all.errors++;
          byLabel.get(labels[req.target]!)!.errors++;
          finished(conn, o, req);
        },
      );
      free[o]!.push(c);
      return c;
    }),
  );
  const watchdog = setInterval(() => {
    const now = performance.now();
    for (const list of conns) for (const c of list) if (c.request && now - c.started > timeoutMs) c.abandon();
  }, Math.min(1000, timeoutMs));

  const runStages = async () => {
    let stageStart = t0;
    for (const stage of spec.stages) {
      const stageEnd = stageStart + stage.seconds * 1000;
      if ('rate' in stage) {
        activeUsers = 0;
        const interval = 1000 / stage.rate;
        let i = 0;
        await new Promise<void>((resolve) => {
          const tick = () => {
            const now = performance.now();
            for (let at = stageStart + i * interval; at <= now && at < stageEnd; at = stageStart + ++i * interval) {
              maxLag = Math.max(maxLag, now - at);
              issue(at);
            }
            if (now >= stageEnd) resolve();
            else setTimeout(tick, 1);
          };
          tick();
        });
      } else {
        think.ms = stage.thinkTimeMs ?? 0;
        activeUsers = stage.users;
        // A new user posts at once and thinks after each answer, like a k6 VU (post, then sleep).
        for (let u = 0; u < stage.users; u++) {
          if (userBusy[u]) continue;
          userBusy[u] = true;
          issue(performance.now(), u);
        }
        await new Promise((r) => setTimeout(r, Math.max(0, stageEnd - performance.now())));
      }
      stageStart = stageEnd;
    }
    loading = false;
    return stageStart;
  };

  const result = (async (): Promise<LoadResult> => {
    const loadEnd = await runStages();
    // The last requests are waited for (bounded), so the tail is measured rather than dropped.
    await waitFor(() => inflight <= 0, { timeoutMs: spec.drainMs ?? 10_000, intervalMs: 5, what: 'last answers' }).catch(() => undefined);
    const unfinished = inflight;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(watchdog);
    for (const list of conns) for (const c of list) c.close();
    const seconds = (loadEnd - t0) / 1000;
    const total = all.summary();
    return {
      ...total,
      byLabel: Object.fromEntries([...byLabel].map(([l, t]) => [l, t.summary()])),
      unfinished,
      seconds,
      acceptedPerS: total.accepted / seconds,
      sentPerS: total.sent / seconds,
      maxScheduleLagMs: Math.round(maxLag * 10) / 10,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
    };
  })();
  return {
    result,
    progress: () => ({
      elapsedMs: performance.now() - t0,
      sent: all.sent,
      answered: all.answered,
      errors: all.errors,
      byLabel: Object.fromEntries([...byLabel].map(([l, t]) => [l, { answered: t.answered, errors: t.errors }])),
    }),
  };
}

export const generateLoad = (spec: LoadSpec): Promise<LoadResult> => startLoad(spec).result;

if (require.main === module) {
  Promise.resolve()
    .then(() => generateLoad(JSON.parse(process.argv[2] ?? '{}') as LoadSpec))
    .then(
      (r) => process.stdout.write(`${JSON.stringify(r)}\n`, () => process.exit(0)),
      (err: Error) => {
        process.stderr.write(`load generator failed: ${err.stack}\n`);
        process.exit(1);
      },
    );
}
