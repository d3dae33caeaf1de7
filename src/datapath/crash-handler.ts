// "NTLS CRASH AND BURN": a fault nothing caught (an exception or rejection escaping every
// handler) writes a stack dump file named like the guide's, ntls_bt_<date>_<time>, in the log
// folder, then the guide's line, then the process ends. Native faults (SIGSEGV, SIGILL, SIGBUS)
// end a Node process before JavaScript can run: a native handler (native/daemon/crash_handler.c)
// writes the same file and line for them, with the native stack, and the signal ends the process.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Catalogue } from '../log/catalogue.js';
import { formatLine, formatTimestamp } from '../log/format.js';
import type { Logger } from '../log/logger.js';
import { renderBody } from '../log/message.js';
import { loadNativeAddon } from './native-addon.js';

const pad = (n: number) => String(n).padStart(2, '0');

export function stackDumpName(at: Date): string {
  return `ntls_bt_${at.getFullYear()}-${pad(at.getMonth() + 1)}-${pad(at.getDate())}_` +
    `${pad(at.getHours())}:${pad(at.getMinutes())}:${pad(at.getSeconds())}`;
}

export const CRASH_EXIT_STATUS = 70;

let installed: { logDirectory: string; logger: Logger } | null = null;

interface NativeCrashHandler {
  install(options: {
    dumpDirectory: string; logFile: string; lineSaved: string; lineUnsaved: string; context: string;
    utcOffsetSeconds: number; echo: boolean;
  }): void;
  setUtcOffset(seconds: number): void;
  faultForTest(): void;
}

const NATIVE = 'native/daemon/build/Release/crash_handler.node';
let utcOffsetTimer: NodeJS.Timeout | null = null;

const utcOffsetSeconds = () => -new Date().getTimezoneOffset() * 60;

/**
 * The native handler's strings: the log lines as the logger would write them, less their
 * timestamp (and, for the first, the dump's path), which only the moment of the fault gives.
 */
function installNative(logDirectory: string, logFile: string, logger: Logger, echo: boolean): void {
  const native = loadNativeAddon<NativeCrashHandler>(NATIVE);
  const at = new Date();
  // A character no value is escaped to (log/printable.ts) and no path holds: where the dump's path goes.
  const mark = '\uffff';
  const afterTime = (line: string) => line.slice(formatTimestamp(at).length);
  const saved = afterTime(formatLine(at, logger.origin, Catalogue.crashStackDumped.severity, renderBody(Catalogue.crashStackDumped, { file: mark })));
  native.install({
    dumpDirectory: logDirectory,
    logFile,
    lineSaved: saved.slice(0, saved.indexOf(mark)),
    lineUnsaved: afterTime(formatLine(at, logger.origin, Catalogue.crashNoStackDump.severity, renderBody(Catalogue.crashNoStackDump, {}))),
    context: [
      `pid ${process.pid}, node ${process.version}, ${process.platform} ${process.arch}`,
      `command ${process.argv.join(' ')}`,
      `started ${at.toISOString()}`,
      '',
    ].join('\n'),
    utcOffsetSeconds: utcOffsetSeconds(),
    echo,
  });
  // Daylight saving moves the offset; the handler cannot ask for it when it runs.
  utcOffsetTimer ??= setInterval(() => native.setUtcOffset(utcOffsetSeconds()), 60_000).unref();
}

/** process.memoryUsage() reads /proc and throws when no file descriptor is left (EMFILE). */
function memoryUsage(): string {
  try {
    return JSON.stringify(process.memoryUsage());
  } catch (error) {
    return `unknown (${(error as Error).message})`;
  }
}

/** A real invalid memory access in native code, for the handler's test (NTLS_FAULT_INJECTION). */
export function nativeFaultForTest(): void {
  loadNativeAddon<NativeCrashHandler>(NATIVE).faultForTest();
}

/**
 * Installs the handlers once; a restart in the same process points them at the new log.
 * `logFile` is lunalogs, which the native handler appends its line to; `echo` mirrors that line
 * on stderr, as the logger does.
 */
export function installCrashHandler(logDirectory: string, logger: Logger, logFile: string, echo = false): void {
  installNative(logDirectory, logFile, logger, echo);
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
      `memory ${memoryUsage()}`,
      '',
    ].join('\n');
    try {
      target.logger.reopenIfMoved();
    } catch {
      // The log as it is open (no descriptor left to reopen it, say): the line still goes there.
    }
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
