/**
 * Configuration: the only module that reads process.env. Parsed and validated once, at boot; a bad value stops
 * the process with a message naming the variable (see loadConfig). The schema is written once with TypeBox, in
 * parts: shared.ts (every process), api.ts, worker.ts; the Config type follows from the parts' builders.
 */
import { Type, type Static } from 'typebox';
import { ApiEnv, apiConfig } from './api';
import { SharedEnv, sharedConfig } from './shared';
import { validateEnv as validate } from './validate';
import { PerQueueEnv, WorkerEnv, workerConfig } from './worker';

export { PerQueueEnv } from './worker';
export { type EffectiveQueuePolicy, effectiveQueuePolicy } from './queue-policy';

export { ConfigError } from './errors';
export type { ApiConfig } from './api';
export { TRACE_MODES, type TraceMode, thresholdsFile } from './shared';

/** Every variable the services read (per-queue ones apart: PerQueueEnv). */
export const Env = Type.Evaluate(Type.Intersect([SharedEnv, ApiEnv, WorkerEnv]));

/** Parse and validate an environment. Pure: pass any object (tests do). */
export function parseConfig(env: NodeJS.ProcessEnv = process.env) {
  const values = validate<Static<typeof Env>>(Env, env);
  const queueValues = validate<PerQueueEnv>(PerQueueEnv, env);
  const shared = sharedConfig(values);
  return { ...shared, api: apiConfig(values), ...workerConfig(values, queueValues, shared.thresholdsFile) };
}

export type Config = ReturnType<typeof parseConfig>;

let cached: Config | undefined;

/** The process's configuration, parsed on first use. Exits with code 1 and a clear message when invalid. */
export function loadConfig(): Config {
  if (cached) return cached;
  try {
    cached = parseConfig(process.env);
    return cached;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  }
}
