/**
 * pino JSON logs. Lines written inside a span carry trace_id and span_id: code that logs inside a span uses a
 * child logger bound with traceFields(span) (telemetry/trace-context.ts) — explicit, since the process keeps no
 * ambient trace context (tracing.ts says why). Secrets and payment details are redacted by path.
 */
import pino, { type Logger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'apiKey',
  'secret',
  '*.account',
  '*.*.account',
  'payload.account',
];

export function createLogger(opts: { name: string; level: string; destination?: pino.DestinationStream }): Logger {
  return pino(
    {
      name: opts.name,
      level: opts.level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    },
    opts.destination,
  );
}
