/**
 * Measured findings the bench's own stages do not reproduce, printed verbatim at the end of docs/benchmarks.md
 * (bench/report.ts) so that a re-rendered page keeps them. Each says how it was measured and when.
 */
export const FINDINGS = `## Node 24: the worker's heap flags (measured 2026-12-03)

Node 24 cost this stack ~40 % more CPU per job than Node 20 while a bare Fastify + BullMQ build cost the same.
The cause is the worker's \`--max-old-space-size=96\` (scripts/lib/node-flags.ts) meeting Node 24's V8: under
the same load V8 gives the worker a much larger young generation (a third as many minor GCs), which leaves the
capped old space so little room that V8 runs full mark-compacts every ~200 jobs. \`--cpu-prof\` put the
difference in "(garbage collector)"; prom-client's \`nodejs_gc_duration_seconds_count{kind}\` counted it. The
fix pins the young generation with \`--max-semi-space-size=16\` beside the cap (compose, Kubernetes,
\`start:worker\`, the native stack and the bench all take scripts/lib/node-flags.ts).

Worker alone (API out of the picture): 8,000 notifications jobs pre-enqueued with the API's envelope and
options, then drained by one worker (concurrency 50, default telemetry exporting to a local OTLP sink); worker
CPU from /proc over the drain, rounds interleaved. The machine was heavily shared (load average 20–30 on
2 vCPU), so absolute figures are high and noisy; the GC counts are not.

| code | node | worker flags | worker CPU ms per job (rounds) | major GCs per 8,000 jobs |
|---|---|---|---|---|
| before the upgrade (BullMQ 5) | 20.20.2 | \`--max-old-space-size=96\` | 0.12, 0.26, 0.30, 0.35 | 6–7 |
| before the upgrade (BullMQ 5) | 24.22.3 | \`--max-old-space-size=96\` | 0.56, 0.81, 0.54, 0.69 | 19–30 (+ 44–48 incremental) |
| before the upgrade (BullMQ 5) | 24.22.3 | \`--max-old-space-size=96 --max-semi-space-size=16\` | 0.20, 0.18, 0.23, 0.18 | 6–7 |
| before the upgrade (BullMQ 5) | 24.22.3 | no cap (\`--max-old-space-size=4096\`) | 0.17, 0.26, 0.22, 0.21 | 1–2 |
| this branch (BullMQ 6, OTel 3) | 24.22.3 | \`--max-old-space-size=96\` | 0.33, 0.35, 0.43 | 23–33 |
| this branch (BullMQ 6, OTel 3) | 24.22.3 | \`--max-old-space-size=96 --max-semi-space-size=16\` | 0.22, 0.28, 0.30 | 4–5 |

With the flag Node 24 is back at Node 20's GC counts and at or below its CPU per job. Not measured here (the
machine was too busy for an open-loop run): the full \`npm run bench\` figures on Node 24 and the worker's peak
RSS with the flag; the next full bench run on a quiet machine measures both.
`;
