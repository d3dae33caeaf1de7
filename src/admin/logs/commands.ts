// `ntls logs tail|explain|check`: the commander registration. Exit statuses: 0 done (check:
// nothing unexpected), 1 check found something unexpected, 2 bad input (missing file, a folder
// given as a file, a bad option value, a usage error).
import { createReadStream, existsSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { once } from 'node:events';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import { failureLine } from '../../errors/ntls-error.js';
import { allMessages } from '../../log/catalogue.js';
import { resolveHome } from '../../home/layout.js';
import { LogCheck } from './check.js';
import { LogToolError } from './errors.js';
import { explainLine } from './explain.js';
import { LineFilter, parseCode, parseLevel, type LineFilterOptions } from './filter.js';
import { catalogueMatcher } from './matcher.js';
import { formatBrief, formatCheck, formatExplained, formatTailLine } from './output.js';
import { openSource, readLines } from './reader.js';
import { paintFor } from './render.js';
import { follow, lastLines } from './tail.js';

const HOME_HELP = 'service home whose logs/lunalogs is read (default: $NTLS_HOME or ./ntls-home)';

function homeLog(home?: string): { file: string; hint: string } {
  const root = resolveHome(home);
  return {
    file: join(root, 'logs', 'lunalogs'),
    hint: ` (this is the log of the home ${root}; name another home with --home DIR or NTLS_HOME, or give a FILE)`,
  };
}

/** Writes a line; waits for the pipe to drain when it is full, so a long log is not all held in memory. */
async function write(text: string): Promise<void> {
  if (!process.stdout.write(text + '\n')) await once(process.stdout, 'drain');
}

/** Runs an action; a LogToolError is one line on stderr and exit status 2. */
function guarded<A extends unknown[]>(name: string, action: (...args: A) => Promise<number | void>) {
  return async (...args: A) => {
    // A closed pipe (`| head`) ends the command quietly.
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') process.exit(0);
      throw error;
    });
    try {
      const status = await action(...args);
      if (status) process.exitCode = status;
    } catch (error) {
      if (error instanceof LogToolError) {
        process.stderr.write(failureLine(`ntls logs ${name}`, error.code, error.message) + '\n');
        process.exit(error.exitStatus);
      }
      throw error;
    }
  };
}

function parseCount(value: string): number {
  if (!/^\d+$/.test(value)) throw new LogToolError('NTLS_ERR_LOG_BAD_COUNT', `-n takes a number of lines (0 or more), not "${value}".`);
  return Number(value);
}

function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value) || seconds <= 0) {
    throw new LogToolError('NTLS_ERR_LOG_BAD_DURATION', `--for takes a number of seconds greater than 0, not "${value}".`);
  }
  return seconds;
}

const knownNames = new Set(allMessages.flatMap((m) => [m.id, m.heading]));

function parseIgnore(values: string[]): string[] {
  const names = values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  for (const name of names) {
    if (!knownNames.has(name)) {
      throw new LogToolError('NTLS_ERR_LOG_BAD_ID', `--ignore "${name}" is no catalogue id or guide heading; \`ntls logs explain\` prints the ids (e.g. defaultProcessorUsed).`);
    }
  }
  return names;
}

/** lunalogs.N ... lunalogs.1 beside `file` that exist, oldest first. */
function rotatedFiles(file: string): string[] {
  const found: string[] = [];
  for (let n = 1; n <= 100 && existsSync(`${file}.${n}`); n++) found.push(`${file}.${n}`);
  return found.reverse();
}

/** Offset just past the last complete line in the first `size` bytes of the file. */
async function completeLinesEnd(file: string, size: number): Promise<number> {
  if (size === 0) return 0;
  const handle = await open(file, 'r');
  try {
    const chunk = Buffer.alloc(Math.min(size, 64 * 1024));
    let end = size;
    while (end > 0) {
      const from = Math.max(0, end - chunk.length);
      const { bytesRead } = await handle.read(chunk, 0, end - from, from);
      const at = chunk.subarray(0, bytesRead).lastIndexOf(0x0a);
      if (at >= 0) return from + at + 1;
      end = from;
    }
    return 0;
  } finally {
    await handle.close();
  }
}

export function registerLogCommands(program: Command): void {
  const logs = program.command('logs')
    .description('read lunalogs: tail it, explain its lines by the log guide, check it for what needs attention');
  // Usage errors exit 2 (as every ntls usage error: src/cli/ntls.ts), so that check's 1 means only "something unexpected was found".

  logs.command('explain')
    .description('say for each line which guide message it is, whether it is expected, what it means and its likely root cause')
    .argument('[file]', 'a lunalogs file, or - for standard input (default: the home\'s logs/lunalogs)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'one JSON object per line of the log')
    .option('--brief', 'one row per line: number, time, severity, kind, id, heading')
    .action(guarded('explain', async (file: string | undefined, options: { home?: string; json?: boolean; brief?: boolean }) => {
      const target = file ? { file, hint: '' } : homeLog(options.home);
      const source = openSource(target.file, target.hint);
      const paint = paintFor(process.stdout);
      const matcher = catalogueMatcher();
      let lineNo = 0;
      let first = true;
      for await (const raw of readLines(source)) {
        lineNo++;
        if (raw.trim() === '') continue;
        const line = explainLine(raw, lineNo, matcher);
        if (options.json) await write(JSON.stringify(line));
        else if (options.brief) await write(formatBrief(line, paint));
        else {
          await write((first ? '' : '\n') + formatExplained(line, paint));
          first = false;
        }
      }
    }));

  logs.command('check')
    .description('summarise a log: unexpected messages by kind, connections without disconnect, receive-timer expiries, crashes, unknown lines; exit 1 when something unexpected is found')
    .argument('[file]', 'a lunalogs file, or - for standard input (default: the home\'s logs/lunalogs)')
    .option('--home <dir>', HOME_HELP)
    .option('--json', 'the summary as one JSON object')
    .option('--rotated', 'read the rotated files first (lunalogs.N ... lunalogs.1, then lunalogs), as one log')
    .option('--ignore <ids>', 'catalogue ids or guide headings whose messages do not count as unexpected (comma-separated, repeatable)',
      (value: string, previous: string[]) => [...previous, value], [] as string[])
    .action(guarded('check', async (file: string | undefined, options: { home?: string; json?: boolean; rotated?: boolean; ignore: string[] }) => {
      const ignore = parseIgnore(options.ignore);
      const target = file ? { file, hint: '' } : homeLog(options.home);
      const source = openSource(target.file, target.hint);
      if (options.rotated && source.name === '-') throw new LogToolError('NTLS_ERR_LOG_BAD_USAGE', '--rotated reads files beside a log file; give its path instead of -.');
      const sources = options.rotated ? [...rotatedFiles(source.name).map((f) => openSource(f)), source] : [source];
      const logDirectory = source.name === '-' ? (options.home ? join(resolveHome(options.home), 'logs') : null) : dirname(source.name);
      const check = new LogCheck(sources.map((s) => s.name), { ignore, logDirectory });
      const matcher = catalogueMatcher();
      for (const each of sources) {
        let lineNo = 0;
        for await (const raw of readLines(each)) check.add(explainLine(raw, ++lineNo, matcher), sources.length > 1 ? each.name : undefined);
      }
      const summary = check.finish();
      await write(options.json ? JSON.stringify(summary, null, 2) : formatCheck(summary, paintFor(process.stdout)));
      return summary.exitStatus;
    }));

  logs.command('tail')
    .description('the last lines of the log, filtered; -f follows it (across rotation) until Ctrl-C')
    .argument('[file]', 'a lunalogs file (default: the home\'s logs/lunalogs)')
    .option('--home <dir>', HOME_HELP)
    .option('-n, --lines <n>', 'how many lines to show (default 10)')
    .option('-f, --follow', 'keep printing lines as they are written')
    .option('--for <seconds>', 'with -f: stop after this many seconds')
    .option('--level <level>', 'only lines of this level or more severe: crit, err, warn, info, debug')
    .option('--client <name>', 'only lines of this client (by name, or by the peer address of its connections)')
    .option('--code <code>', 'only lines with this code, e.g. 0xc0000002')
    .option('--json', 'one JSON object per line (the explain record)')
    .action(guarded('tail', async (file: string | undefined, options: {
      home?: string; lines?: string; follow?: boolean; for?: string; level?: string; client?: string; code?: string; json?: boolean;
    }) => {
      const count = options.lines === undefined ? 10 : parseCount(options.lines);
      const filterOptions: LineFilterOptions = {};
      if (options.level !== undefined) filterOptions.level = parseLevel(options.level);
      if (options.code !== undefined) filterOptions.code = parseCode(options.code);
      if (options.client !== undefined) filterOptions.client = options.client;
      const seconds = options.for === undefined ? null : parseSeconds(options.for);
      if (seconds !== null && !options.follow) throw new LogToolError('NTLS_ERR_LOG_BAD_USAGE', '--for only goes with -f; add -f or leave --for out.');
      const target = file ? { file, hint: '' } : homeLog(options.home);
      if (target.file === '-') throw new LogToolError('NTLS_ERR_LOG_BAD_USAGE', 'tail reads a file, not standard input; give a lunalogs path.');
      const source = openSource(target.file, target.hint);
      const paint = paintFor(process.stdout);
      const print = (line: Parameters<typeof formatTailLine>[0]) => write(options.json ? JSON.stringify(line) : formatTailLine(line, paint));
      const filter = new LineFilter(filterOptions);

      // What is there now is shown from a fixed size, and following goes on from that size (cut
      // back to the last complete line, whose rest following will read).
      const { size } = await stat(source.name);
      const end = options.follow ? await completeLinesEnd(source.name, size) : size;
      const bounded = { name: source.name, stream: () => openRange(source.name, end) };
      const { lines, total } = await lastLines(bounded, filter, count);
      for (const line of lines) await print(line);
      if (!options.follow) return;

      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const timer = seconds === null ? null : setTimeout(stop, seconds * 1000);
      try {
        await follow(source.name, { filter, startLine: total, startOffset: end, signal: controller.signal, onLine: print });
      } finally {
        if (timer) clearTimeout(timer);
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    }));
}

/** The first `end` bytes of a file. */
function openRange(file: string, end: number): Readable {
  // createReadStream's end is inclusive; an empty range reads nothing.
  return end === 0 ? Readable.from([]) : createReadStream(file, { start: 0, end: end - 1 });
}
