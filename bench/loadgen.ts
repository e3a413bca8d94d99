/**
 * Load generator for `npm run bench`, run as its own child process so its CPU use is measurable and it never
 * shares an event loop with the scrape timer or the Redis samplers of the orchestrator.
 *
 * Two modes:
 * - open loop (`rate` > 0): request i is *scheduled* at t0 + i/rate whatever happened to earlier requests;
 *   latency is measured from that scheduled time (coordinated-omission corrected, like wrk2 / k6
 *   constant-arrival-rate) and, separately, from the moment the request was actually written.
 * - closed loop (`rate` = 0): `concurrency` requests always in flight (saturation throughput).
 *
 * Why not autocannon's overallRate: autocannon gives every connection a per-second quota and fires it back to
 * back at the start of each second, then idles (lib/httpClient.js, reqsMadeThisSecond) — bursts, not a steady
 * arrival rate, and latency is counted from the actual send (coordinated omission). wrk (Debian) has no rate
 * option at all (that is wrk2). The generator shares the 2 cores with what it measures, so it is kept cheap:
 * plain keep-alive sockets, each request a pre-built buffer, responses parsed only for status and length
 * (the API always answers with Content-Length) — a fraction of undici's or autocannon's CPU per request.
 *
 * Input: one JSON argument (LoadSpec). Output: one JSON line (LoadResult) on stdout.
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import * as hdr from 'hdr-histogram-js';
import { waitFor } from '../scripts/lib/wait';

export interface LoadTarget {
  origin: string;
  path: string;
  body: string;
  /**
   * When set, every request to this target carries `Idempotency-Key: <prefix><run tag>-<sequence number>`; the
   * run tag is random per load generator run, so repeated runs against the same Redis never replay a key.
   */
  idempotencyKeyPrefix?: string;
}

export interface LoadSpec {
  targets: LoadTarget[];
  apiKey: string;
  seconds: number;
  /** Requests per second (open loop); 0 = closed loop with `concurrency` in flight. */
  rate: number;
  concurrency: number;
  /** Connections per origin. */
  connections: number;
}

export interface LoadResult {
  sent: number;
  accepted: number;
  statuses: Record<string, number>;
  errors: number;
  /** Requests still unanswered when the run ended (then abandoned). */
  unfinished: number;
  seconds: number;
  acceptedPerS: number;
  /** ms, from the scheduled send time (open loop) — equals `service` in closed loop. */
  latency: { p50: number; p90: number; p99: number; p999: number; max: number };
  /** ms, from the actual send. */
  service: { p50: number; p99: number };
  /** Largest delay of the generator behind its own schedule, ms (a busy generator shows up here). */
  maxScheduleLagMs: number;
  /** CPU seconds used by the generator itself. */
  cpuSeconds: number;
}

function histogram() {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: 3 });
}

interface Pending {
  target: number;
  scheduled: number;
}

/** One keep-alive HTTP/1.1 connection, one request at a time. */
class Conn {
  private sock: net.Socket;
  private buf: Buffer = Buffer.alloc(0);
  busy = false;
  private started = 0;
  private scheduled = 0;
  dead = false;

  constructor(private readonly origin: URL, private readonly onFree: (c: Conn, status: number, scheduled: number, started: number) => void, private readonly onError: (c: Conn) => void) {
    this.sock = this.connect();
  }

  private connect(): net.Socket {
    const sock = net.connect(Number(this.origin.port), this.origin.hostname);
    sock.setNoDelay(true);
    sock.on('data', (chunk: Buffer) => this.data(chunk));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      const wasBusy = this.busy;
      this.busy = false;
      this.buf = Buffer.alloc(0);
      if (!this.dead) {
        this.sock = this.connect();
        if (wasBusy) this.onError(this);
      }
    });
    return sock;
  }

  send(request: Buffer, scheduled: number): void {
    this.busy = true;
    this.scheduled = scheduled;
    this.started = performance.now();
    this.sock.write(request);
  }

  private data(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const head = this.buf.indexOf('\r\n\r\n');
    if (head < 0) return;
    const headers = this.buf.toString('latin1', 0, head);
    const m = /\r\ncontent-length:\s*(\d+)/i.exec(headers);
    const total = head + 4 + (m ? Number(m[1]) : 0);
    if (this.buf.length < total) return;
    const status = Number(headers.slice(9, 12));
    this.buf = this.buf.subarray(total);
    this.busy = false;
    this.onFree(this, status, this.scheduled, this.started);
  }

  close(): void {
    this.dead = true;
    this.sock.destroy();
  }
}

async function run(spec: LoadSpec): Promise<LoadResult> {
  // Pre-built around the one part that changes per request (the Idempotency-Key), so a request costs a concat.
  const requests = spec.targets.map((t) => {
    const u = new URL(t.origin);
    const head = Buffer.from(`POST ${t.path} HTTP/1.1\r\nhost: ${u.host}\r\nauthorization: Bearer ${spec.apiKey}\r\n`);
    const rest = Buffer.from(
      `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(t.body)}\r\nconnection: keep-alive\r\n\r\n${t.body}`,
    );
    const prefix = t.idempotencyKeyPrefix;
    if (prefix === undefined) {
      const whole = Buffer.concat([head, rest]);
      return () => whole;
    }
    const run = `${prefix}${randomBytes(6).toString('hex')}-`;
    let seq = 0;
    return () => Buffer.concat([head, Buffer.from(`idempotency-key: ${run}${seq++}\r\n`), rest]);
  });
  const origins = [...new Set(spec.targets.map((t) => t.origin))];
  const targetOrigin = spec.targets.map((t) => origins.indexOf(t.origin));
  const lat = histogram();
  const svc = histogram();
  const statuses: Record<string, number> = {};
  let sent = 0;
  let accepted = 0;
  let errors = 0;
  let inflight = 0;
  let maxLag = 0;
  let closedLoop = spec.rate <= 0;
  const queues: Pending[][] = origins.map(() => []);
  const free: Conn[][] = origins.map(() => []);
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + spec.seconds * 1000;
  let running = true;

  const dispatch = (o: number) => {
    while (queues[o]!.length && free[o]!.length) {
      const p = queues[o]!.shift()!;
      free[o]!.pop()!.send(requests[p.target]!(), p.scheduled);
    }
  };
  const enqueue = (scheduled: number) => {
    const target = next++ % requests.length;
    const o = targetOrigin[target]!;
    sent++;
    inflight++;
    queues[o]!.push({ target, scheduled });
    dispatch(o);
  };
  const conns = origins.map((origin, o) =>
    Array.from({ length: spec.connections }, () => {
      const c: Conn = new Conn(
        new URL(origin),
        (conn, status, scheduled, started) => {
          const now = performance.now();
          inflight--;
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (status === 202) accepted++;
          lat.recordValue(Math.max(1, Math.round((now - scheduled) * 1000)));
          svc.recordValue(Math.max(1, Math.round((now - started) * 1000)));
          free[o]!.push(conn);
          if (closedLoop && running && now < end) enqueue(now);
          dispatch(o);
        },
        (conn) => {
          inflight--;
          errors++;
          free[o]!.push(conn);
          if (closedLoop && running && performance.now() < end) enqueue(performance.now());
          dispatch(o);
        },
      );
      free[o]!.push(c);
      return c;
    }),
  );

  if (!closedLoop) {
    const interval = 1000 / spec.rate;
    let i = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = performance.now();
        const stop = Math.min(now, end);
        while (t0 + i * interval <= stop) {
          maxLag = Math.max(maxLag, now - (t0 + i * interval));
          enqueue(t0 + i * interval);
          i++;
        }
        if (now >= end) resolve();
        else setTimeout(tick, 1);
      };
      tick();
    });
  } else {
    for (let i = 0; i < spec.concurrency; i++) enqueue(performance.now());
    await new Promise((r) => setTimeout(r, spec.seconds * 1000));
  }
  running = false;
  const loadEnd = performance.now();
  // Let the last requests finish (bounded), so the tail is measured rather than dropped.
  // Those still unanswered after 10 s are reported as `unfinished`, not waited for.
  await waitFor(() => inflight <= 0, { timeoutMs: 10_000, intervalMs: 5, what: 'last responses' }).catch(() => undefined);
  const unfinished = inflight;
  const cpu = process.cpuUsage(cpu0);
  for (const list of conns) for (const c of list) c.close();
  const ms = (h: ReturnType<typeof histogram>, q: number) => Math.round(h.getValueAtPercentile(q)) / 1000;
  void closedLoop;
  closedLoop = false;
  return {
    sent,
    accepted,
    statuses,
    errors,
    unfinished,
    seconds: spec.seconds,
    acceptedPerS: accepted / ((loadEnd - t0) / 1000),
    latency: { p50: ms(lat, 50), p90: ms(lat, 90), p99: ms(lat, 99), p999: ms(lat, 99.9), max: lat.maxValue / 1000 },
    service: { p50: ms(svc, 50), p99: ms(svc, 99) },
    maxScheduleLagMs: Math.round(maxLag * 10) / 10,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
}

if (require.main === module) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
  run(spec).then(
    (r) => {
      process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (err: Error) => {
      process.stderr.write(`loadgen failed: ${err.stack}\n`);
      process.exit(1);
    },
  );
}
