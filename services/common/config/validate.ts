import envSchema from 'env-schema';
import { ConfigError } from './errors';

/** Validates (and coerces, with the schema's defaults) an environment against a TypeBox schema. */
export function validateEnv<T>(schema: object, env: NodeJS.ProcessEnv): T {
  try {
    return envSchema<T>({ schema, data: env, dotenv: false });
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
  }
}
