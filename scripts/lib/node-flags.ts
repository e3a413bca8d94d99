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
 */
export const WORKER_NODE_FLAGS = ['--max-old-space-size=96'] as const;
