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
 * Appends `bytes` to the file open for appending at `fd`. A write that fails writes nothing; one
 * cut short is taken back (the file cut by what it wrote, measured then: other processes append
 * to lunalogs too) and reported as ENOSPC. A whole line costs one write, no more: every
 * connection writes several.
 */
export function appendWhole(fd: number, bytes: Buffer): void {
  const written = writeSync(fd, bytes);
  if (written === bytes.length) return;
  try {
    ftruncateSync(fd, fstatSync(fd).size - written);
  } catch {
    // Nothing more can be done here; the caller reports the short write.
  }
  throw new ShortWriteError(written, bytes.length);
}
