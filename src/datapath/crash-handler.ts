// "NTLS CRASH AND BURN": a fault nothing caught (an exception or rejection escaping every
// handler) writes a stack dump file named like the guide's, ntls_bt_<date>_<time>, in the log
// folder, then the guide's line, then the process ends. Native faults (SIGSEGV, SIGILL, SIGBUS)
// end a Node process before JavaScript can run, so they cannot be dumped from here.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';

const pad = (n: number) => String(n).padStart(2, '0');

export function stackDumpName(at: Date): string {
  return `ntls_bt_${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}_` +
    `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}

export const CRASH_EXIT_STATUS = 70;

let installed: { logDirectory: string; logger: Logger } | null = null;

/** Installs the handler once; a restart in the same process points it at the new log. */
export function installCrashHandler(logDirectory: string, logger: Logger): void {
  if (installed) {
    installed.logDirectory = logDirectory;
    installed.logger = logger;
    return;
  }
  installed = { logDirectory, logger };
  const target = installed;
  const crash = (fault: unknown, origin: string) => {
    const at = new Date();
    const file = join(target.logDirectory, stackDumpName(at));
    const error = fault instanceof Error ? fault : new Error(String(fault));
    const dump = [
      `NTLS stack dump, ${at.toISOString()}`,
      `pid ${process.pid}, node ${process.version}, origin ${origin}`,
      '',
      error.stack ?? String(error),
      '',
      `memory ${JSON.stringify(process.memoryUsage())}`,
      '',
    ].join('\n');
    try {
      writeFileSync(file, dump, { mode: 0o640 });
      target.logger.log(Catalogue.crashStackDumped, { file });
    } catch {
      target.logger.log(Catalogue.crashNoStackDump);
    }
    process.exit(CRASH_EXIT_STATUS);
  };
  process.on('uncaughtException', (error, origin) => crash(error, origin));
  process.on('unhandledRejection', (reason) => crash(reason, 'unhandledRejection'));
}
