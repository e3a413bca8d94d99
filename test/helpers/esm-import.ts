/**
 * A real ESM `import()` from a CommonJS test file. TypeScript compiles `import()` to `require()` under
 * `"module": "commonjs"` (tsconfig.json), and the k6 scripts (loadtest/k6/*.js) are ES modules loaded from
 * data: URLs, which only a real dynamic import can load.
 */
// eslint-disable-next-line @typescript-eslint/no-implied-eval -- the only way to keep import() out of tsc's CommonJS output
export const esmImport = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<any>;
