// What every `ntls-client` command shares: the config folder and its log, reading inputs,
// writing outputs whole, and ending with one line and a non-zero status when something fails.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Logger } from '../log/logger.js';
import { printable } from '../log/printable.js';
import { writeFileAtomic } from '../files/atomic-file.js';
import { openClientLog } from './client-log.js';
import { clientHome, configPath, loadClientConfig, type ClientConfig } from './config.js';
import { ClientError } from './errors.js';
import { explainFailure, exitStatusFor, type FailureContext } from './failure.js';

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
  /** Forgets client.json as read: the next config() reads it again (a long-running relay). */
  reloadConfig(): void;
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
    reloadConfig() {
      config = null;
    },
  };
  return context;
}

/** Runs a command; any failure becomes one line on stderr and exit status 2 (bad input) or 1 (failed). */
export async function runCommand(options: CommonOptions, body: (context: CommandContext) => Promise<void>): Promise<void> {
  const context = contextFor(options);
  try {
    await body(context);
    await context.logger.close();
  } catch (error) {
    const failure = explainFailure(error, context.failure);
    await context.logger.close();
    // The same shape as `ntls --json` (docs/operations.md): the failure's code and its line.
    if (context.json) process.stdout.write(JSON.stringify({ ok: false, error: { code: failure.code, message: failure.line } }) + '\n');
    process.stderr.write(`ntls-client: ${printable(failure.line)} [${failure.code}]\n`);
    process.exit(exitStatusFor(failure.code));
  }
}

export function readInput(file: string, what: string): Buffer {
  if (file === '-') return readFileSync(0);
  if (!existsSync(file)) throw new ClientError('NTLS_ERR_FILE', `the ${what} file ${file} does not exist`, 'check the path');
  try {
    return readFileSync(file);
  } catch (error) {
    throw new ClientError('NTLS_ERR_FILE', `the ${what} file ${file} cannot be read (${(error as NodeJS.ErrnoException).code})`, 'check its permissions', error);
  }
}

/** Writes an output whole (temporary file, then rename): never half a file. */
export function writeOutput(file: string, data: Buffer, mode = 0o644): void {
  try {
    writeFileAtomic(file, data, mode);
  } catch (error) {
    throw new ClientError('NTLS_ERR_FILE', `cannot write ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'check that its folder exists and is writable', error);
  }
}

/**
 * The Crypto Officer PIN: --pin, else $NTLS_PIN, else (when the command needs one) asked on the
 * terminal without echo. Without a terminal to ask on, a command that needs it fails with one
 * line (NTLS_ERR_NO_PIN).
 */
export async function pinFrom(option: string | undefined, required: boolean): Promise<string | undefined> {
  const pin = option ?? process.env.NTLS_PIN;
  if (pin !== undefined && pin !== '') return pin;
  if (!required) return undefined;
  if (!process.stdin.isTTY) {
    throw new ClientError('NTLS_ERR_NO_PIN', 'this command needs the partition\'s Crypto Officer PIN: none was given and standard input is not a terminal to ask for it', 'give --pin PIN or set NTLS_PIN');
  }
  const typed = await askHidden('Crypto Officer PIN: ');
  if (typed === '') throw new ClientError('NTLS_ERR_NO_PIN', 'no PIN was typed', 'type the partition\'s Crypto Officer PIN, or give --pin PIN or set NTLS_PIN');
  return typed;
}

/** The partition SO's PIN: --so-pin, else asked on the terminal without echo, else one line (NTLS_ERR_NO_PIN). */
export async function soPinFrom(option: string | undefined): Promise<string> {
  if (option !== undefined && option !== '') return option;
  if (!process.stdin.isTTY) {
    throw new ClientError('NTLS_ERR_NO_PIN', 'this command needs the partition SO\'s PIN: none was given and standard input is not a terminal to ask for it', 'give --so-pin PIN');
  }
  const typed = await askHidden('Security Officer PIN: ');
  if (typed === '') throw new ClientError('NTLS_ERR_NO_PIN', 'no SO PIN was typed', 'type the partition SO\'s PIN, or give --so-pin PIN');
  return typed;
}

/** Reads one line from the terminal with echo off (raw mode); Ctrl-C or Ctrl-D gives up. */
export function askHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  // Echo off before the prompt shows: what is typed after it is never echoed.
  input.setRawMode(true);
  process.stderr.write(prompt);
  input.resume();
  return new Promise((resolve, reject) => {
    let typed = '';
    const finish = (error: ClientError | null) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (chunk: Buffer) => {
      for (const char of chunk.toString('utf8')) {
        if (char === '\r' || char === '\n') return finish(null);
        if (char === '\u0003' || char === '\u0004') return finish(new ClientError('NTLS_ERR_NO_PIN', 'no PIN was typed (cancelled)', 'give --pin PIN or set NTLS_PIN'));
        if (char === '\u007f' || char === '\b') typed = typed.slice(0, -1);
        else if (char >= ' ') typed += char;
      }
    };
    input.on('data', onData);
  });
}
