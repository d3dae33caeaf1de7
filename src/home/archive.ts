// The home backup file (`ntls home backup`, `ntls home restore`): gzip of
//   "NTLSHOME 2\n" then, per file, one JSON line {"path","mode","size"} and its `size` bytes,
//   then the end record, one JSON line {"end":{"files":N,"sha256":HEX}}: the number of files and
//   the SHA-256 of every byte before that line,
// paths relative to the home with "/" separators. Small and read whole: a home is a few files.
// The end record tells a backup cut short or changed by accident (a file re-packed without its
// last entry, a copy that stopped) from a whole one; it is no signature: whoever can write the
// file can make a new one. Version 1 files (no end record) are still read.
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { NtlsError } from '../errors/ntls-error.js';

export const ARCHIVE_MAGIC = 'NTLSHOME 2\n';
const MAGIC_V1 = 'NTLSHOME 1\n';
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
/** A home is a few files and a store: more than this once uncompressed is refused, not held in memory (a gzip bomb). */
export const MAX_UNPACKED_BYTES = 1024 * 1024 * 1024;

export interface ArchiveEntry {
  path: string;
  mode: number;
  data: Buffer;
}

export interface UnpackedArchive {
  entries: ArchiveEntry[];
  /** False for a version 1 file: nothing in it says whether it is whole. */
  checked: boolean;
}

export class ArchiveError extends NtlsError {}

/** A path that stays inside the home it is restored into. */
export function safePath(path: string): boolean {
  return path.length > 0 && !path.startsWith('/') && !path.includes('\\') && path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

function endRecord(files: number, body: Buffer): Buffer {
  return Buffer.from(JSON.stringify({ end: { files, sha256: createHash('sha256').update(body).digest('hex') } }) + '\n');
}

export function packArchive(entries: readonly ArchiveEntry[]): Buffer {
  const parts: Buffer[] = [Buffer.from(ARCHIVE_MAGIC)];
  for (const entry of entries) {
    parts.push(Buffer.from(JSON.stringify({ path: entry.path, mode: entry.mode & 0o777, size: entry.data.length }) + '\n'), entry.data);
  }
  const body = Buffer.concat(parts);
  return gzipSync(Buffer.concat([body, endRecord(entries.length, body)]));
}

export function unpackArchive(file: string, packed: Buffer, maxBytes: number = MAX_UNPACKED_BYTES): UnpackedArchive {
  const bad = (why: string) => new ArchiveError('NTLS_ERR_BACKUP_FILE', `${file} is not an ntls home backup (${why})`, { hint: 'give a file made by `ntls home backup`' });
  const broken = (why: string) => new ArchiveError('NTLS_ERR_BACKUP_DAMAGED', `${file} is an ntls home backup that is not whole: ${why}; nothing was restored`,
    { hint: 'restore from another copy of the backup' });
  let raw: Buffer;
  try {
    raw = gunzipSync(packed, { maxOutputLength: maxBytes });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw broken(`it would be more than ${maxBytes} bytes once uncompressed`);
    if (packed.subarray(0, 2).equals(GZIP_MAGIC)) throw broken(`its compressed data is cut short or damaged (${(error as Error).message})`);
    throw bad('not gzip');
  }
  const head = raw.subarray(0, ARCHIVE_MAGIC.length).toString('latin1');
  if (head !== ARCHIVE_MAGIC && head !== MAGIC_V1) throw bad('no NTLSHOME header');
  const checked = head === ARCHIVE_MAGIC;
  const entries: ArchiveEntry[] = [];
  let at = ARCHIVE_MAGIC.length;
  while (at < raw.length) {
    const newline = raw.indexOf(0x0a, at);
    if (newline < 0) throw broken('a header without its end');
    let header: { path?: unknown; mode?: unknown; size?: unknown; end?: { files?: unknown; sha256?: unknown } };
    try {
      header = JSON.parse(raw.subarray(at, newline).toString('utf8')) as typeof header;
    } catch {
      throw broken('a header that is not JSON');
    }
    if (checked && header.end !== undefined) {
      const expected = endRecord(entries.length, raw.subarray(0, at)).toString('utf8');
      if (header.end.files !== entries.length) throw broken(`it holds ${entries.length} files where its end record says ${String(header.end.files)}`);
      if (expected !== raw.subarray(at, newline + 1).toString('utf8')) throw broken('its content is not what its end record was made for (changed after it was written)');
      if (newline + 1 !== raw.length) throw broken('bytes follow its end record');
      return { entries, checked };
    }
    const { path, mode, size } = header;
    if (typeof path !== 'string' || !safePath(path) || typeof mode !== 'number' || typeof size !== 'number' || size < 0 || newline + 1 + size > raw.length) {
      throw broken('a damaged entry');
    }
    entries.push({ path, mode: mode & 0o777, data: raw.subarray(newline + 1, newline + 1 + size) });
    at = newline + 1 + size;
  }
  if (checked) throw broken(`it ends after ${entries.length} files without its end record (cut short)`);
  return { entries, checked };
}
