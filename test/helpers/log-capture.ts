/** A pino logger whose JSON lines are kept in memory, for tests that assert what was logged (audit lines, errors). */
import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

export function captureLogs(level = 'info'): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level }, sink), lines };
}
