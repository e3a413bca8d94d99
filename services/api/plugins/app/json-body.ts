/**
 * The JSON body parser, replacing Fastify's default one with two checks it lacks:
 *   - nesting deeper than MAX_JSON_DEPTH → 400 VALIDATION_ERROR, found by one linear scan of the raw text
 *     BEFORE parsing, so no recursive step (parse, schema validation, serialization, logging) ever sees a
 *     deeply nested value and none can overflow the stack;
 *   - numbers that JSON.parse would silently change (integers beyond ±2^53−1, values beyond ±1.8e308) →
 *     400 VALIDATION_ERROR naming the field, instead of storing and charging a different number.
 * Prototype-poisoning protection is Fastify's own (secure-json-parse, through its default parser).
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../../errors';

export const MAX_JSON_DEPTH = 32;

/** True when the JSON text opens more than `max` nested objects/arrays. Strings are skipped; no recursion. */
export function jsonNestingExceeds(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** A number JSON.parse could not represent exactly as sent: non-finite, or an integer past 2^53−1. */
const isInexact = (n: number) => !Number.isFinite(n) || (Number.isInteger(n) && !Number.isSafeInteger(n));

/** Path of the first inexact number in a parsed value (iterative walk), or undefined. */
export function firstInexactNumber(value: unknown): string | undefined {
  const stack: { v: unknown; path: string }[] = [{ v: value, path: 'body' }];
  while (stack.length > 0) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'number') {
      if (isInexact(v)) return path;
    } else if (Array.isArray(v)) {
      v.forEach((item, i) => stack.push({ v: item, path: `${path}.${i}` }));
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) stack.push({ v: item, path: `${path}.${k}` });
    }
  }
  return undefined;
}

export default fp(
  async function jsonBody(app: FastifyInstance) {
    const parse = app.getDefaultJsonParser('error', 'error');
    app.removeContentTypeParser('application/json');
    app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
      const text = body as string;
      if (jsonNestingExceeds(text, MAX_JSON_DEPTH)) {
        done(new ApiError(400, 'VALIDATION_ERROR', `body: JSON nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
        return;
      }
      void parse(request, text, (err, parsed) => {
        if (err) return done(err, undefined);
        const at = firstInexactNumber(parsed);
        if (at) {
          return done(
            new ApiError(400, 'VALIDATION_ERROR', `${at}: number is not exactly representable (integers must be within ±9007199254740991, numbers finite)`),
            undefined,
          );
        }
        done(null, parsed);
      });
    });
  },
  { name: 'json-body', dependencies: ['error-handler'] },
);
