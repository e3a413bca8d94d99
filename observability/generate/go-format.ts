/**
 * The few Prometheus template functions (Go text/template, `%.4g`) the generated promtool tests must predict:
 * a test's expected annotation is the rule's template expanded for the value its inputs produce, so these
 * follow prometheus/template/template.go exactly for the value ranges the tests use.
 */

/** Go's `%.4g`: 4 significant digits, trailing zeros dropped, exponent form outside [1e-4, 1e4). */
export function g4(v: number): string {
  if (v === 0) return '0';
  if (!Number.isFinite(v)) return v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN';
  const exp = Math.floor(Math.log10(Math.abs(Number(v.toPrecision(4)))));
  if (exp < -4 || exp >= 4) {
    const [m, e] = v.toExponential(3).split('e') as [string, string];
    const mantissa = m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m;
    const n = Number(e);
    return `${mantissa}e${n < 0 ? '-' : '+'}${String(Math.abs(n)).padStart(2, '0')}`;
  }
  const fixed = v.toFixed(Math.max(0, 3 - exp));
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

/** Steps `v` by `step` while `more(v)`, naming each step with the next prefix (how Go's humanize functions scale). */
function scaled(v: number, prefixes: readonly string[], step: (x: number) => number, more: (x: number) => boolean): string {
  let prefix = '';
  for (const p of prefixes) {
    if (!more(v)) break;
    prefix = p;
    v = step(v);
  }
  return g4(v) + prefix;
}

/** `humanize`: SI prefixes (k, M, G…) for |v| ≥ 1, m/µ/n below. */
export function humanize(v: number): string {
  if (v === 0 || !Number.isFinite(v)) return g4(v);
  return Math.abs(v) >= 1
    ? scaled(v, ['k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'], (x) => x / 1000, (x) => Math.abs(x) >= 1000)
    : scaled(v, ['m', 'u', 'n', 'p', 'f', 'a', 'z', 'y'], (x) => x * 1000, (x) => Math.abs(x) < 1);
}

/** `humanize1024`: Ki, Mi, Gi… */
export function humanize1024(v: number): string {
  if (Math.abs(v) <= 1 || !Number.isFinite(v)) return g4(v);
  return scaled(v, ['Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'Ei', 'Zi', 'Yi'], (x) => x / 1024, (x) => Math.abs(x) >= 1024);
}

/** `humanizePercentage`: a ratio as a percentage. */
export function humanizePercentage(v: number): string {
  return `${g4(v * 100)}%`;
}

/** `humanizeDuration` for values under a minute (what the latency tests produce). */
export function humanizeDuration(v: number): string {
  if (!(Math.abs(v) < 60)) throw new Error(`humanizeDuration emulated below 60 s only, got ${v}`);
  if (v === 0) return '0s';
  if (Math.abs(v) >= 1) return `${g4(v)}s`;
  let prefix = '';
  for (const p of ['m', 'u', 'n', 'p', 'f', 'a', 'z', 'y']) {
    if (Math.abs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return `${g4(v)}${prefix}s`;
}
