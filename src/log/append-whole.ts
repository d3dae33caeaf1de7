// A line appended to a log either lands whole or not at all. A full disk can take part of a
// write: the next line would then be glued to the cut one (the log no longer parses), or, in the
// audit trail, a record be kept while the call that wrote it failed.
import { fstatSync, ftruncateSync, writeSync } from 'node:fs';

/** A short write of the disk, reported as the error the next write would give. */
export class ShortWriteError extends Error {
  readonly code = 'ENOSPC';
  constructor(written: number, wanted: number) {
    super(`ENOSPC: only ${written} of ${wanted} bytes written`);
  }
}

/**
 * Appends `bytes` to the file open for appending at `fd`; on any failure the file is cut back to
 * the size it had (read here: other processes append to lunalogs too) and the error thrown.
 */
export function appendWhole(fd: number, bytes: Buffer): void {
  const size = fstatSync(fd).size;
  try {
    const written = writeSync(fd, bytes);
    if (written !== bytes.length) throw new ShortWriteError(written, bytes.length);
  } catch (error) {
    try {
      ftruncateSync(fd, size);
    } catch {
      // Nothing more can be done here; the caller reports the first error.
    }
    throw error;
  }
}
