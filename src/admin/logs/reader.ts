// Opens what the log tools read: a file (checked first, so a missing file or a folder is one
// clear line) or standard input ("-"), and yields its lines as written.
import { createReadStream, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { LogToolError } from './errors.js';

export interface LogSource {
  /** The file's path, or "-" for standard input. */
  name: string;
  stream: () => Readable;
}

/** Checks that `file` is a readable regular file (or "-") before anything is read. */
export function openSource(file: string, hint = ''): LogSource {
  if (file === '-') return { name: '-', stream: () => process.stdin };
  let stat;
  try {
    stat = statSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new LogToolError('NTLS_ERR_LOG_FILE_MISSING', `${file}: no such file; give the path of a lunalogs file${hint}.`);
    }
    throw new LogToolError('NTLS_ERR_LOG_UNREADABLE', `${file}: cannot be read (${code}); check its permissions or run as its owner.`);
  }
  if (stat.isDirectory()) {
    throw new LogToolError('NTLS_ERR_LOG_IS_DIRECTORY', `${file} is a directory; give a log file inside it, e.g. ${file.replace(/\/$/, '')}/lunalogs.`);
  }
  return { name: file, stream: () => createReadStream(file) };
}

/** The lines of a source, without their line ends; a read error becomes a LogToolError. */
export async function* readLines(source: LogSource): AsyncGenerator<string> {
  const stream = source.stream();
  let failure: NodeJS.ErrnoException | null = null;
  stream.on('error', (error: NodeJS.ErrnoException) => (failure = error));
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  try {
    for await (const line of lines) yield line;
  } catch (error) {
    failure = error as NodeJS.ErrnoException;
  } finally {
    lines.close();
  }
  if (failure) {
    const code = failure.code ?? String(failure);
    if (code === 'EISDIR') throw new LogToolError('NTLS_ERR_LOG_IS_DIRECTORY', `${source.name} is a directory; give a log file inside it.`);
    throw new LogToolError('NTLS_ERR_LOG_UNREADABLE', `${source.name}: cannot be read (${code}); check its permissions.`);
  }
}
