// ESLint flat config. TypeScript is linted with type information (typescript-eslint's recommendedTypeChecked),
// which is what catches the defects that matter in a queue/worker codebase: promises nobody awaits or handles,
// async callbacks handed to APIs that ignore the promise, `any` leaking from JSON into typed code.
// Type-checking itself (services, scripts, loadtest, observability, bench AND test) is `tsc -p tsconfig.check.json`,
// run by `npm run lint` next to ESLint.
import { defineConfig } from 'eslint/config';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default defineConfig(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**', '.stack/**', 'loadtest-results/**', 'bench/results/**', '.node/**'] },
  // An eslint-disable comment that no longer silences anything is an error, so none outlives its reason.
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.check.json', tsconfigRootDir: import.meta.dirname },
      globals: globals.node,
    },
    rules: {
      // Real defects: an unhandled rejection crashes a worker; a promise-returning listener is never awaited.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          // tap queues subtests itself: `t.test(...)` at the top of a file or test is the documented way to use it.
          allowForKnownSafeCalls: [{ from: 'package', package: '@tapjs/test', name: ['test', 'only', 'skip', 'todo'] }],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/prefer-promise-reject-errors': 'error',
      // Type-only imports vanish from the emitted CommonJS: no accidental module side effects or cycles at runtime.
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Fastify plugins and hooks are async by contract even when they await nothing.
      '@typescript-eslint/require-await': 'off',
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-console': 'error',
    },
  },
  {
    // Tests and benchmarks read JSON bodies and Prometheus answers loosely on purpose; the unsafe-any family would
    // turn every `res.json()` into a cast without catching anything the assertions do not.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // k6 scripts run in k6's own JavaScript runtime (goja), not Node: its globals, its `k6/*` modules.
    files: ['loadtest/k6/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: { __ENV: 'readonly', __VU: 'readonly', __ITER: 'readonly', open: 'readonly', console: 'readonly' },
    },
  },
  {
    // The bench's reference builds: plain CommonJS, written as their users write them (console for readiness lines).
    files: ['bench/reference/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
    rules: { 'no-console': 'off' },
  },
  {
    files: ['scripts/**/*.mjs', 'eslint.config.mjs'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
);
