/**
 * Node flags of the worker process, wherever it is started: package.json start:worker, compose.yaml,
 * deploy/kubernetes/workers.yaml (test/compose/dockerfile.test.ts and test/deploy check they agree), the native
 * stack and the bench.
 *
 * --max-old-space-size=96: V8 sizes the old generation by allocation rate, not by what is live, so a busy worker's
 * old space grows far past its live heap. The cap (about 3× the live set under load) keeps peak RSS well below the
 * memory alert for a few per cent more worker CPU (figures: docs/scaling.md, "Settings chosen by measurement";
 * `npm run bench` reports the peak as "worker peak RSS"). A worker whose
 * processors hold more — large payloads, higher concurrency — raises it: past the cap V8 stops the process with
 * "heap out of memory", the supervisor restarts it and BullMQ's stalled check hands its jobs to another attempt.
 *
 * --max-semi-space-size=16: pins the young generation at 16 MB semi-spaces. Under the same load Node 24's V8
 * gives the worker a much larger young generation than Node 20's did (a third as many minor GCs); inside a
 * 96 MB heap that leaves the old generation so little room that V8 runs a full mark-compact every ~200 jobs
 * (8,000 jobs: 42 major GCs for 3.3 s, against 7 for 0.7 s on Node 20) and the worker's CPU per job more than
 * doubled. With the young
 * generation pinned, Node 24 is back at Node 20's GC counts and CPU (docs/benchmarks.md, "Node 24").
 */
export const WORKER_NODE_FLAGS = ['--max-old-space-size=96', '--max-semi-space-size=16'] as const;
