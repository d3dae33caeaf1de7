import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ZodError } from 'zod';
import { ConfigSchema, type Config } from './schema.js';
import { NtlsError } from '../errors/ntls-error.js';

export const CONFIG_FILE = 'ntls.json';

/** Why a configuration was refused, for callers and tests that must not parse the text. */
export type ConfigProblem = 'unreadable' | 'invalid-json' | 'unknown-key' | 'wrong-type' | 'out-of-range' | 'invalid-value';

/**
 * A configuration the daemon cannot run with; `key` names the offending setting by its full
 * path ("server.port", "log.syslog.transport"), or "(file)" / "(root)" for the file as a whole.
 */
export class ConfigError extends NtlsError {
  declare readonly code: 'NTLS_ERR_CONFIG';
  constructor(readonly file: string, readonly key: string, readonly problem: string, readonly reason: ConfigProblem = 'invalid-value') {
    super('NTLS_ERR_CONFIG', `${file}: ${key}: ${problem}`);
  }
}

function firstIssue(file: string, error: ZodError): ConfigError {
  const issue = error.issues[0]!;
  const path = issue.path.join('.');
  switch (issue.code) {
    case 'unrecognized_keys':
      return new ConfigError(file, (path ? path + '.' : '') + issue.keys[0],
        'unknown setting', 'unknown-key');
    case 'invalid_type':
      return new ConfigError(file, path || '(root)', issue.message, 'wrong-type');
    case 'too_big':
    case 'too_small':
      // Numbers out of their range; a string too short (an empty address) is just invalid.
      return new ConfigError(file, path || '(root)', issue.message, issue.type === 'number' ? 'out-of-range' : 'invalid-value');
    default:
      return new ConfigError(file, path || '(root)', issue.message, 'invalid-value');
  }
}

/** Reads `<home>/ntls.json` (absent: all defaults) and validates it against the schema. */
export function loadConfig(home: string): Config {
  const file = join(home, CONFIG_FILE);
  const parsed = ConfigSchema.safeParse(readConfigFile(home));
  if (!parsed.success) throw firstIssue(file, parsed.error);
  return parsed.data;
}

/** Validates a whole configuration as a start would (file: what to name in the error). */
export function validateConfig(raw: unknown, file: string): Config {
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) throw firstIssue(file, parsed.error);
  return parsed.data;
}

/** The settings as written in `<home>/ntls.json` (absent: none), not yet validated. */
export function readConfigFile(home: string): Record<string, unknown> {
  const file = join(home, CONFIG_FILE);
  if (existsSync(home) && !statSync(home).isDirectory()) throw new ConfigError(home, '(home)', 'is a file, not a folder: a home is a folder', 'unreadable');
  let raw: unknown = {};
  if (existsSync(file)) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new ConfigError(file, '(file)', `cannot be read (${code})`, 'unreadable');
    }
    try {
      // A byte order mark, as some editors write, is not part of the JSON.
      raw = JSON.parse(text.replace(/^\uFEFF/, ''));
    } catch (error) {
      throw new ConfigError(file, '(file)', `not valid JSON: ${(error as Error).message}`, 'invalid-json');
    }
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(file, '(root)', 'not a JSON object', 'wrong-type');
  }
  return raw as Record<string, unknown>;
}

export interface ConfigOverrides {
  port?: number;
  bind?: string;
  /** datapath.inboundWorkers (`ntls start --workers`, or NTLS_WORKERS in the environment). */
  workers?: number;
}

/** NTLS_WORKERS, when set, stands for `--workers` (a container's or a test run's whole set of daemons). */
export function workersFromEnvironment(): number | undefined {
  const value = process.env.NTLS_WORKERS;
  return value === undefined || value === '' ? undefined : Number(value);
}

/** Flags of `ntls start` over the file's values; they obey the same schema (file "(command line)"). */
export function applyOverrides(config: Config, overrides: ConfigOverrides): Config {
  const server = { ...config.server };
  if (overrides.port !== undefined) server.port = overrides.port;
  if (overrides.bind !== undefined) server.bind = overrides.bind;
  const workers = overrides.workers ?? workersFromEnvironment();
  const datapath = workers === undefined ? config.datapath : { ...config.datapath, inboundWorkers: workers };
  const parsed = ConfigSchema.safeParse({ ...config, server, datapath });
  if (!parsed.success) throw firstIssue('(command line)', parsed.error);
  return parsed.data;
}
