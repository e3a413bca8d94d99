export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function parseList(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter(Boolean);
}
