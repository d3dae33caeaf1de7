// What every `ntls-client` command shares: the config folder and its log, reading inputs,
// writing outputs whole, and ending with one line and a non-zero status when something fails.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../log/logger.js';
import { writeFileAtomic } from '../files/atomic-file.js';
import { openClientLog } from './client-log.js';
import { clientHome, configPath, loadClientConfig, type ClientConfig } from './config.js';
import { ClientError } from './errors.js';
import { explainFailure, type FailureContext } from './failure.js';

export interface CommonOptions {
  configDir?: string;
  json?: boolean;
  timeout?: number;
}

export interface CommandContext {
  folder: string;
  logger: Logger;
  json: boolean;
  /** Filled in as the command learns which server and certificate it uses, for the failure line. */
  failure: FailureContext;
  config(): ClientConfig;
}

export function contextFor(options: CommonOptions): CommandContext {
  const folder = options.configDir ? resolve(options.configDir) : clientHome();
  const logger = openClientLog(folder);
  let config: ClientConfig | null = null;
  const context: CommandContext = {
    folder, logger, json: options.json === true, failure: {},
    config() {
      config ??= loadClientConfig(folder);
      if (options.timeout !== undefined) config = { ...config, receiveTimeout: options.timeout };
      if (config.client.certificate) context.failure.clientCertificateFile = configPath(folder, config.client.certificate);
      return config;
    },
  };
  return context;
}

/** Runs a command; any failure becomes one line on stderr and exit status 1. */
export async function runCommand(options: CommonOptions, body: (context: CommandContext) => Promise<void>): Promise<void> {
  const context = contextFor(options);
  try {
    await body(context);
    await context.logger.close();
  } catch (error) {
    const failure = explainFailure(error, context.failure);
    await context.logger.close();
    if (context.json) process.stdout.write(JSON.stringify({ ok: false, code: failure.code, error: failure.line }) + '\n');
    process.stderr.write(`ntls-client: ${failure.line} [${failure.code}]\n`);
    process.exit(1);
  }
}

export function readInput(file: string, what: string): Buffer {
  if (file === '-') return readFileSync(0);
  if (!existsSync(file)) throw new ClientError('NTLS_ERR_FILE', `the ${what} file ${file} does not exist`, 'check the path');
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ClientError('NTLS_ERR_FILE', `the ${what} file ${file} cannot be read (${(error as NodeJS.ErrnoException).code})`, 'check its permissions');
  }
}

/** Writes an output whole (temporary file, then rename): never half a file. */
export function writeOutput(file: string, data: Buffer, mode = 0o644): void {
  try {
    writeFileAtomic(file, data, mode);
  } catch (error) {
    throw new ClientError('NTLS_ERR_FILE', `cannot write ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'check that its folder exists and is writable');
  }
}

export function pinFrom(option: string | undefined, required: boolean): string | undefined {
  const pin = option ?? process.env.NTLS_PIN;
  if (required && (pin === undefined || pin === '')) {
    throw new ClientError('NTLS_ERR_NO_PIN', 'this command needs the partition\'s Crypto Officer PIN', 'give --pin PIN or set NTLS_PIN');
  }
  return pin === '' ? undefined : pin;
}
