// Outputs are written whole or not at all: into a temporary file beside the target, flushed,
// then renamed over it. A failure leaves the target as it was and no temporary behind.
// A target that is not a regular file (/dev/null, /dev/stdout, a FIFO, a process substitution)
// is written into, as `>` would: renaming over it would replace the device or the pipe with a
// file, which for /dev/null, written as root, breaks every program on the machine. A symbolic
// link keeps pointing where it did: the file it names is the one replaced.
import { closeSync, fsyncSync, openSync, realpathSync, renameSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function writeFileAtomic(path: string, data: Buffer | string, mode = 0o644): void {
  const existing = statOf(path);
  if (existing && !existing.isFile()) {
    writeFileSync(path, data);
    return;
  }
  const target = existing ? realpathSync(path) : path;
  const temporary = join(dirname(target), `.${basename(target)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | null = null;
  try {
    fd = openSync(temporary, 'wx', mode);
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(temporary, target);
  } catch (error) {
    if (fd !== null) closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
}

/** The target's status, following links; null when nothing is there (a dangling link included). */
function statOf(path: string): ReturnType<typeof statSync> | null {
  try {
    return statSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}
