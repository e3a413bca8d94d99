/**
 * Command-line parsing for the repository's scripts (scripts/stack/main.ts, loadtest/run.ts,
 * loadtest/progressive.ts): node's util.parseArgs does the parsing; these helpers turn its errors and every bad
 * value into one `UsageError` whose message names the flag, quotes the value and ends with the usage text, so
 * each CLI prints it and exits 2.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** Bad command-line input: the CLI prints the message (usage included) and exits 2. */
export class UsageError extends Error {
  constructor(message: string, usage?: string) {
    super(usage ? `${message}\n\n${usage}` : message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** util.parseArgs in strict mode without positionals; its errors ("Unknown option '--x'") become UsageErrors. */
export function parseFlags<O extends Options>(argv: string[], options: O, usage: string) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError((err as Error).message, usage);
  }
}

/** A number > 0 (or undefined when absent or empty); `--name` in the message. */
export function positiveNumber(name: string, text: string | undefined, usage?: string): number | undefined {
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--${name} must be a number > 0, got "${text}"`, usage);
  return n;
}

/** A whole number within [min, max] (or undefined when absent). */
export function integerIn(name: string, text: string | undefined, min: number, max: number, usage?: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (text.trim() === '' || !Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${text}"`, usage);
  }
  return n;
}

/** An http(s) URL, returned as given. */
export function httpUrl(name: string, text: string, usage?: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`--${name} must be an http(s) URL, got "${text}"`, usage);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--${name} must be an http(s) URL, got "${text}"`, usage);
  return text;
}

/** One of a fixed set of words. */
export function oneOf<T extends string>(name: string, text: string, allowed: readonly T[], usage?: string): T {
  if (!(allowed as readonly string[]).includes(text)) throw new UsageError(`--${name} must be ${allowed.join(' or ')}, got "${text}"`, usage);
  return text as T;
}

/** A duration as k6 writes it (500ms, 15s, 2m, 1.5h) → milliseconds; throws on anything else. */
export function parseDuration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Error(`invalid duration "${text}" (use e.g. 500ms, 15s, 2m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}

/** A duration flag (parseDuration's forms) → milliseconds, at least minMs; undefined when absent or empty. */
export function durationFlag(name: string, text: string | undefined, usage?: string, minMs = 0): number | undefined {
  if (text === undefined || text === '') return undefined;
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch (err) {
    throw new UsageError(`--${name}: ${(err as Error).message}`, usage);
  }
  if (ms < minMs) throw new UsageError(`--${name} must be at least ${minMs / 1000}s, got "${text}"`, usage);
  return ms;
}
