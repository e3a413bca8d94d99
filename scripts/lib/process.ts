/**
 * The one way this repository starts a helper process and waits for it: tests (test/helpers/services.ts,
 * test/helpers/redis.ts), the bench (bench/stack.ts) and the native stack (scripts/stack/).
 *
 *   const api = await startProcess({ name: 'api', command: process.execPath, args: [...], env,
 *                                    ready: { line: '"msg":"api listening"' } });
 *   await api.waitUntil(() => fetch(url).then((r) => r.ok), { what: 'api /readyz' });
 *   await api.stop({ signal: 'SIGTERM', killAfterMs: 5_000 });
 *
 * Why one helper: a readiness wait that only polls keeps polling a process that already died (and reports a
 * timeout 30 s later, without its output). Here every wait races the process's exit and rejects AT ONCE with a
 * `ProcessExitedError` carrying the exit code/signal and the last lines the process wrote.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { waitFor, type WaitOptions } from './wait';

export interface ExitStatus {
  /** Exit code, or null when a signal ended the process (or it never started). */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the process could not be spawned at all (e.g. ENOENT: command not on PATH). */
  error?: Error;
}

/** The exit code ("1"), else the signal ("SIGKILL"), else the spawn error ("spawn error: spawn x ENOENT"). */
export function describeExit(status: ExitStatus): string {
  if (status.error) return `spawn error: ${status.error.message}`;
  return status.signal ?? String(status.code);
}

/** A process ended while something waited for it to become ready (or to reach some state). */
export class ProcessExitedError extends Error {
  constructor(
    readonly processName: string,
    readonly status: ExitStatus,
    readonly output: string,
    waitingFor: string,
  ) {
    super(`${processName} exited (${describeExit(status)}) while waiting for ${waitingFor}; last output:\n${output || '(none)'}`);
    this.name = 'ProcessExitedError';
  }
}

/** When a started process counts as ready. */
export type Readiness =
  /** A line of its output (stdout or stderr) contains this string or matches this pattern. */
  | { line: string | RegExp }
  /** This probe returns true (a throw or false means "not yet"), e.g. a TCP/HTTP health check. */
  | { probe: () => boolean | Promise<boolean> };

export interface StartProcessOptions {
  /** Used in every error message ("api", "worker-2", "redis-server :6400"). */
  name: string;
  command: string;
  args?: readonly string[];
  cwd?: string;
  /** The child's whole environment (default: this process's). */
  env?: NodeJS.ProcessEnv;
  /** Called for every complete output line, in order, e.g. to parse JSON logs. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  /** How many recent output lines `tail()` and error messages keep (default 40; lines cut at 1,000 chars). */
  tailLines?: number;
  /** Wait for this before resolving; without it `startProcess` resolves once the process is spawned. */
  ready?: Readiness;
  /** Readiness timeout (default 30 s); the process is killed (SIGKILL) when it is not ready in time. */
  readyTimeoutMs?: number;
}

export interface ManagedProcess {
  readonly name: string;
  readonly child: ChildProcess;
  /** OS pid (undefined only when the spawn itself failed, in which case startProcess rejected). */
  readonly pid: number;
  /** Resolves (never rejects) when the process has ended. */
  readonly exited: Promise<ExitStatus>;
  /** How it ended, once it has. */
  exitStatus(): ExitStatus | undefined;
  running(): boolean;
  /** The last output lines (stdout and stderr interleaved as received). */
  tail(): string;
  /**
   * Polls `probe` like `waitFor` (scripts/lib/wait.ts) but rejects at once with a ProcessExitedError if this
   * process ends first.
   */
  waitUntil<T>(probe: () => T | Promise<T>, opts?: WaitOptions): Promise<NonNullable<T>>;
  /** Sends a signal if the process still runs (SIGSTOP / SIGCONT / SIGKILL for fault tests). */
  signal(sig: NodeJS.Signals): void;
  /**
   * Sends `signal` (default SIGTERM) and resolves with the exit status. With `killAfterMs`, a process still
   * running after that long gets SIGKILL. Resolves at once when it has already ended.
   */
  stop(opts?: { signal?: NodeJS.Signals; killAfterMs?: number }): Promise<ExitStatus>;
}

/**
 * Processes started here and still running: killed (SIGKILL) when this process exits, so a test or bench that
 * fails or is interrupted (after its own signal handler calls process.exit) leaves no server behind.
 */
const running = new Set<ChildProcess>();
let exitHookInstalled = false;

/** SIGKILLs every process started by startProcess that still runs (for SIGINT/SIGTERM handlers). */
export function killStartedProcesses(): void {
  for (const child of running) child.kill('SIGKILL');
}

function track(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', killStartedProcesses);
  }
  running.add(child);
}

/** Splits a stream into lines; the unterminated remainder is flushed when the stream ends. */
function readLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buffer = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffer += chunk;
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      onLine(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
  });
  stream.on('end', () => {
    if (buffer) onLine(buffer);
    buffer = '';
  });
}

/** Starts a process, collects its output, and (with `ready`) resolves only once it is ready. */
export async function startProcess(opts: StartProcessOptions): Promise<ManagedProcess> {
  const tailLines = opts.tailLines ?? 40;
  const child = spawn(opts.command, [...(opts.args ?? [])], {
    cwd: opts.cwd,
    env: opts.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let status: ExitStatus | undefined;
  const exited = new Promise<ExitStatus>((resolve) => {
    const done = (s: ExitStatus) => {
      if (status) return;
      status = s;
      running.delete(child);
      resolve(s);
    };
    child.once('exit', (code, signal) => done({ code, signal }));
    child.once('error', (error) => {
      // 'error' also fires when a kill() fails; only a failed spawn (no pid) means the process is gone.
      if (child.pid === undefined) done({ code: null, signal: null, error });
    });
  });

  const recent: string[] = [];
  let readyLineSeen = false;
  const readyLine = opts.ready && 'line' in opts.ready ? opts.ready.line : undefined;
  const onLine = (stream: 'stdout' | 'stderr') => (line: string) => {
    recent.push(line.length > 1000 ? `${line.slice(0, 1000)}…` : line);
    if (recent.length > tailLines) recent.shift();
    if (readyLine !== undefined && !readyLineSeen) {
      readyLineSeen = typeof readyLine === 'string' ? line.includes(readyLine) : readyLine.test(line);
    }
    opts.onLine?.(line, stream);
  };
  readLines(child.stdout, onLine('stdout'));
  readLines(child.stderr, onLine('stderr'));

  const proc: ManagedProcess = {
    name: opts.name,
    child,
    pid: child.pid!,
    exited,
    exitStatus: () => status,
    running: () => status === undefined,
    tail: () => recent.join('\n'),
    waitUntil: async (probe, waitOpts = {}) => {
      const what = waitOpts.what ?? `${opts.name} condition`;
      const abort = new AbortController();
      const onAbort = () => abort.abort(waitOpts.signal?.reason);
      waitOpts.signal?.addEventListener('abort', onAbort, { once: true });
      const died = exited.then((s) => {
        throw new ProcessExitedError(opts.name, s, proc.tail(), what);
      });
      died.catch(() => undefined); // only observed through the race below
      try {
        return await Promise.race([waitFor(probe, { ...waitOpts, what, signal: abort.signal }), died]);
      } finally {
        abort.abort(new Error('wait finished'));
        waitOpts.signal?.removeEventListener('abort', onAbort);
      }
    },
    signal: (sig) => {
      if (status === undefined) child.kill(sig);
    },
    stop: async ({ signal = 'SIGTERM', killAfterMs } = {}) => {
      if (status) return status;
      child.kill(signal);
      if (killAfterMs === undefined) return exited;
      const timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };

  try {
    // A failed spawn: report it rather than a pid-less process.
    await new Promise<void>((resolve, reject) => {
      if (child.pid !== undefined) return resolve();
      void exited.then((s) => reject(new ProcessExitedError(opts.name, s, '', 'spawn')));
    });
    if (opts.ready) {
      const ready = opts.ready;
      const probe = 'probe' in ready ? ready.probe : () => readyLineSeen;
      await proc.waitUntil(probe, { timeoutMs: opts.readyTimeoutMs ?? 30_000, intervalMs: 25, what: `${opts.name} ready` });
    }
  } catch (err) {
    child.kill('SIGKILL');
    if (err instanceof ProcessExitedError) throw err;
    throw new Error(`${(err as Error).message}; last output of ${opts.name}:\n${proc.tail() || '(none)'}`, { cause: err });
  }
  return proc;
}
