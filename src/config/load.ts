import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ZodError } from 'zod';
import { ConfigSchema, type Config } from './schema.js';

export const CONFIG_FILE = 'ntls.json';

/** A configuration the daemon cannot run with; `key` names the offending setting. */
export class ConfigError extends Error {
  readonly code = 'NTLS_ERR_CONFIG';
  constructor(readonly file: string, readonly key: string, readonly problem: string) {
    super(`${file}: ${key}: ${problem}`);
    this.name = 'ConfigError';
  }
}

function firstIssue(file: string, error: ZodError): ConfigError {
  const issue = error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const prefix = issue.path.length ? issue.path.join('.') + '.' : '';
    return new ConfigError(file, prefix + issue.keys[0], 'unknown setting; see `ntls config show` for the known ones');
  }
  return new ConfigError(file, issue.path.join('.') || '(root)', issue.message);
}

/** Reads `<home>/ntls.json` (absent: all defaults) and validates it against the schema. */
export function loadConfig(home: string): Config {
  const file = join(home, CONFIG_FILE);
  let raw: unknown = {};
  if (existsSync(file)) {
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError(file, '(file)', `not valid JSON: ${(error as Error).message}`);
    }
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) throw firstIssue(file, parsed.error);
  return parsed.data;
}

export interface ConfigOverrides {
  port?: number;
  bind?: string;
}

export function applyOverrides(config: Config, overrides: ConfigOverrides): Config {
  const server = { ...config.server };
  if (overrides.port !== undefined) server.port = overrides.port;
  if (overrides.bind !== undefined) server.bind = overrides.bind;
  return { ...config, server };
}
