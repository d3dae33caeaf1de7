// The `ntls-client` program as each of its entries builds it (the whole CLI, and the p11-relay
// alone: see ntls-client.ts): its name and version, the options every command shares, and usage
// errors that end as one line with NTLS_ERR_USAGE and status 2, as ntls's do.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { exitStatusFor } from '../client/failure.js';
import { packageVersion } from '../client/package-version.js';
import { helpHint, usageMessage } from './usage-error.js';
import { sharedOptionsLast } from './option-order.js';

export function clientProgram(): Command {
  return new Command('ntls-client').description('ntls client tools')
    .version(packageVersion(), '-V, --version', 'print the version of ntls-client');
}

export function nonNegative(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number of 0 or more is expected.');
  return n;
}

/** The options `common` gives every command, also taken before the command words. */
const CLIENT_SHARED_OPTIONS = { flags: ['--json'], valued: ['--config-dir', '--timeout'] };

/** The options every command takes. */
export function common(command: Command): Command {
  return command
    .option('--config-dir <dir>', 'client config folder (default: $NTLS_CLIENT_HOME, $XDG_CONFIG_HOME/ntls-client, ~/.config/ntls-client)')
    .option('--json', 'output for scripts')
    .option('--timeout <seconds>', 'seconds to wait for a server (overrides receiveTimeout)', nonNegative);
}

/** Examples shown after a command's --help, by command name: the line a first user would type. */
export type Examples = Record<string, string[]>;

/** Parses the command line and runs the command; a usage error ends as one line, status 2. */
export async function runProgram(program: Command, examples: Examples): Promise<void> {
  let usageError = '';
  // Every command, those added whole (ha) included, gets the usage-error settings.
  const everyCommand = (command: Command): Command[] => [command, ...command.commands.flatMap(everyCommand)];
  for (const command of everyCommand(program)) {
    command.exitOverride().configureOutput({ outputError: (text) => { usageError = text.trim().replace(/^error: /, ''); } });
  }
  for (const command of program.commands) {
    const lines = examples[command.name()];
    if (lines) command.addHelpText('after', `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((e) => `  $ ${e}`).join('\n')}\n`);
  }
  const args = sharedOptionsLast(process.argv.slice(2), CLIENT_SHARED_OPTIONS);
  try {
    await program.parseAsync(args, { from: 'user' });
  } catch (error) {
    if (!(error instanceof CommanderError)) throw error;
    if (error.exitCode === 0) process.exit(0);
    const line = `${usageMessage(error, usageError)}; ${helpHint(program, args)}`;
    if (process.argv.includes('--json')) process.stdout.write(JSON.stringify({ ok: false, error: { code: 'NTLS_ERR_USAGE', message: line } }) + '\n');
    process.stderr.write(`ntls-client: ${line} [NTLS_ERR_USAGE]\n`);
    process.exit(exitStatusFor('NTLS_ERR_USAGE'));
  }
}
