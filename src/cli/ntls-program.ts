// `ntls`'s commands: the daemon (`start`, `stop`, `status`) and the operator's commands. Loaded
// by the entry, src/cli/ntls.ts, once it holds the daemon's stop signals.
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { helpHint, usageMessage } from './usage-error.js';
import { homeLayout, resolveHome } from '../home/layout.js';
import { defaultConfig } from '../config/schema.js';
import { loadConfig } from '../config/load.js';
import { runForeground } from '../daemon/run.js';
import { daemonHolding } from '../daemon/home-lock.js';
import { registerAdminCommands } from './admin-commands.js';
import { registerLogCommands } from '../admin/logs/commands.js';
import { registerTokenCommands } from './token-commands.js';
import { registerAuditCommands } from './audit-commands.js';
import { addExamples } from './examples.js';
import { registerHomeCommands } from './home-commands.js';
import { NTLS_VERSION } from '../version.js';
import { Exit, exitWithError, fail, setJsonOutput } from './failure.js';
import { callAdmin } from '../admin/client.js';
import type { Health } from '../metrics/health.js';
import { sharedOptionsLast } from './option-order.js';

function portNumber(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('a port is an integer from 0 to 65535.');
  return port;
}

function workerCount(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 256) throw new InvalidArgumentError('a worker count is an integer from 0 to 256.');
  return n;
}

/**
 * libuv sizes its thread pool once, from UV_THREADPOOL_SIZE, when the pool is first used: set
 * here, before the daemon's first asynchronous file or crypto call. A broken configuration is
 * left to the daemon, which reports it.
 */
function sizeThreadPool(home: string): void {
  if (process.env.UV_THREADPOOL_SIZE) return;
  try {
    process.env.UV_THREADPOOL_SIZE = String(loadConfig(home).datapath.outboundWorkers);
  } catch {
    // reported by runDaemon
  }
}

/** The pid of the daemon running for `home` (it holds the lock on its pid file), or null. */
function runningPid(home: string): number | null {
  return daemonHolding(homeLayout(home, defaultConfig()).pidFile);
}

let usageError = '';
const program = new Command('ntls')
  .description('Network HSM service: PKCS#11 partitions over mutually-authenticated TLS')
  .version(NTLS_VERSION, '-V, --version', 'print the version of ntls')
  // Usage errors, as every failure, end as one line (below); subcommands inherit both settings.
  .exitOverride()
  .configureOutput({ outputError: (text) => { usageError = text.trim().replace(/^error: /, ''); } });

program.command('start')
  .description('start the daemon in the foreground')
  .option('--home <dir>', 'service home (default: $NTLS_HOME or ./ntls-home)')
  .option('--port <n>', 'TCP port, overriding the configuration', portNumber)
  .option('--bind <addr>', 'bind address, overriding the configuration')
  .option('--workers <n>', 'processes serving the TLS port, the main one included, overriding datapath.inboundWorkers (0 or 1: the main process alone)', workerCount)
  .option('--quiet', 'do not echo log lines on stderr')
  .action(async (options: { home?: string; port?: number; bind?: string; workers?: number; quiet?: boolean }) => {
    // A daemon already running for the home is refused by the daemon itself (its home lock).
    const home = resolveHome(options.home);
    sizeThreadPool(home);
    await runForeground({ home, port: options.port, bind: options.bind, workers: options.workers, echo: !options.quiet });
  });

program.command('stop')
  .description('stop the daemon of a home (SIGTERM) and wait for it to end')
  .option('--home <dir>', 'service home')
  .action(async (options: { home?: string }) => {
    const home = resolveHome(options.home);
    const pid = runningPid(home);
    if (pid === null) {
      process.stderr.write(`ntls: no daemon runs for ${home}.\n`);
      process.exit(1);
    }
    process.kill(pid, 'SIGTERM');
    for (let waited = 0; waited < 15000; waited += 100) {
      try {
        process.kill(pid, 0);
      } catch {
        process.stdout.write(`ntls: stopped (pid ${pid}).\n`);
        return;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    process.stderr.write(`ntls: pid ${pid} did not stop within 15 s.\n`);
    process.exit(1);
  });

program.command('status')
  .description('say whether a daemon runs for a home and whether it serves (exit 3 when none runs)')
  .option('--home <dir>', 'service home')
  .option('--json', 'output for scripts: running, pid, live, ready and the readiness checks')
  .action(async (options: { home?: string; json?: boolean }) => {
    const home = resolveHome(options.home);
    const pid = runningPid(home);
    if (pid === null) {
      if (options.json) process.stdout.write(JSON.stringify({ running: false, home, live: false, ready: false }) + '\n');
      else process.stdout.write(`ntls: not running (home ${home}).\n`);
      process.exit(Exit.NotRunning);
    }
    // Running: whether it serves, from the daemon (a daemon still starting does not answer yet).
    const health = await callAdmin<Health>(home, 'service.health', {}, 5000).catch(() => null);
    const status = { running: true, pid, home, live: health !== null, ready: health?.ready ?? false, checks: health?.checks ?? null };
    if (options.json) {
      process.stdout.write(JSON.stringify(status) + '\n');
      return;
    }
    process.stdout.write(`ntls: running, pid ${pid} (home ${home}); ${status.ready ? 'ready' : 'not ready'}`
      + `${status.checks ? ` (store open: ${yesNo(status.checks.storeOpen)}, listening: ${yesNo(status.checks.listening)}, processor loaded: ${yesNo(status.checks.processorLoaded)})` : ' (not answering yet)'}.\n`);
  });

const yesNo = (value: boolean) => (value ? 'yes' : 'no');

registerLogCommands(program);
registerAuditCommands(program);

registerAdminCommands(program);
registerTokenCommands(program);
registerHomeCommands(program);
addExamples(program);
// --json of the command run shapes its failures too; any failure ends as one line, never a stack.
program.hook('preAction', (_root, command) => setJsonOutput(command.opts<{ json?: boolean }>().json === true));
// `ntls --home H client list`: --home and --json before the command words are taken as after them.
const args = sharedOptionsLast(process.argv.slice(2), { flags: ['--json'], valued: ['--home'] });
try {
  await program.parseAsync(args, { from: 'user' });
} catch (error) {
  if (error instanceof CommanderError) {
    if (error.exitCode === 0) process.exit(0);
    setJsonOutput(args.includes('--json'));
    fail('NTLS_ERR_USAGE', usageMessage(error, usageError), helpHint(program, args), Exit.BadInput);
  }
  exitWithError(error);
}
