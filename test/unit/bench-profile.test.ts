/**
 * bench/profile.ts componentShares: how the cost stage splits a process's CPU by component, which is what its
 * report uses to explain the cost ratio. A synthetic .cpuprofile with known self times checks the rules: a
 * native frame counts for the nearest known caller, start-up (module loading) and idle samples are left out,
 * GC is its own component.
 */
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { componentShares } from '../../bench/profile';

interface Frame {
  functionName: string;
  url: string;
}

/** Builds a profile from call paths (root → leaf) and the µs sampled in each leaf. */
function profileOf(paths: { stack: Frame[]; us: number }[]) {
  const nodes: { id: number; callFrame: Frame & { lineNumber: number }; children: number[] }[] = [
    { id: 1, callFrame: { functionName: '(root)', url: '', lineNumber: 0 }, children: [] },
  ];
  const samples: number[] = [];
  const timeDeltas: number[] = [];
  for (const { stack, us } of paths) {
    let parent = nodes[0]!;
    for (const frame of stack) {
      let child = parent.children.map((id) => nodes[id - 1]!).find((n) => n.callFrame.functionName === frame.functionName && n.callFrame.url === frame.url);
      if (!child) {
        child = { id: nodes.length + 1, callFrame: { ...frame, lineNumber: 0 }, children: [] };
        nodes.push(child);
        parent.children.push(child.id);
      }
      parent = child;
    }
    samples.push(parent.id);
    timeDeltas.push(us);
  }
  return { nodes, samples, timeDeltas, startTime: 0, endTime: 0 };
}

const at = (functionName: string, url: string): Frame => ({ functionName, url });
const ROOT = '/repo';
const route = at('handler', `file://${ROOT}/dist/services/api/routes/jobs.js`);
const ioredis = at('sendCommand', `file://${ROOT}/node_modules/ioredis/built/Redis.js`);
const net = at('Socket._writeGeneric', 'node:net');
const writeBuffer = at('writeBuffer', '');
const http = at('parserOnIncoming', 'node:_http_server');
const prom = at('observe', `file://${ROOT}/node_modules/prom-client/lib/histogram.js`);
const serialize = at('serializeSpan', `file://${ROOT}/node_modules/@opentelemetry/otlp-transformer/build/src/trace/protobuf/trace-serializer.js`);
const otel = at('startSpan', `file://${ROOT}/node_modules/@opentelemetry/sdk-trace/build/src/Tracer.js`);
const loader = at('Module._load', 'node:internal/modules/cjs/loader');

t.test('CPU is split by the nearest known component; start-up and idle are left out', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-profile-'));
  const profile = profileOf([
    { stack: [http, route, ioredis, net, writeBuffer], us: 300 }, // a socket write made by ioredis → redis client
    { stack: [http, route], us: 200 }, // our route's own code → app
    { stack: [http, net, writeBuffer], us: 100 }, // the HTTP response's write → http
    { stack: [http, route, otel], us: 60 }, // a span → telemetry: spans
    { stack: [http, route, prom], us: 20 }, // a histogram observation → telemetry: metrics
    { stack: [at('onTimeout', `file://${ROOT}/node_modules/@opentelemetry/sdk-trace/build/src/export/BatchSpanProcessorBase.js`), serialize], us: 20 }, // serializing spans for export → span export
    { stack: [at('(garbage collector)', '')], us: 100 },
    { stack: [at('processTicksAndRejections', 'node:internal/process/task_queues')], us: 200 }, // → node runtime
    { stack: [loader, otel], us: 5_000 }, // required at start-up: not a job's cost
    { stack: [at('(idle)', '')], us: 9_000 },
  ]);
  writeFileSync(path.join(dir, 'a.cpuprofile'), JSON.stringify(profile));
  const result = componentShares(dir);
  t.ok(result, 'a profile was found');
  t.equal(result!.files, 1);
  const s = result!.shares;
  t.equal(s['redis client'], 30, 'the native write under ioredis counts for the Redis client');
  t.equal(s.app, 20);
  t.equal(s.http, 10, 'the native write under the HTTP server counts for HTTP');
  t.equal(s['telemetry: spans'], 6);
  t.equal(s['telemetry: metrics'], 2);
  t.equal(s['telemetry: span export'], 2, 'the exporter frame nearest the sample wins over the SDK frame above it');
  t.equal(s.gc, 10);
  t.equal(s['node runtime'], 20);
  t.equal(s.bullmq, 0);
  t.equal(Object.values(s).reduce((a, b) => a + b, 0), 100, 'shares of the counted samples add up to 100 %');
});

t.test('a directory without profiles gives nothing', async (t) => {
  t.equal(componentShares(mkdtempSync(path.join(tmpdir(), 'bench-profile-empty-'))), undefined);
  t.equal(componentShares(path.join(tmpdir(), 'no-such-dir-for-bench-profile')), undefined);
});
