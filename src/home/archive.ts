// The home backup file (`ntls home backup`, `ntls home restore`): gzip of
//   "NTLSHOME 1\n" then, per file, one JSON line {"path","mode","size"} and its `size` bytes,
// paths relative to the home with "/" separators. Small and read whole: a home is a few files.
import { gunzipSync, gzipSync } from 'node:zlib';
import { NtlsError } from '../errors/ntls-error.js';

export const ARCHIVE_MAGIC = 'NTLSHOME 1\n';

export interface ArchiveEntry {
  path: string;
  mode: number;
  data: Buffer;
}

export class ArchiveError extends NtlsError {}

/** A path that stays inside the home it is restored into. */
export function safePath(path: string): boolean {
  return path.length > 0 && !path.startsWith('/') && !path.includes('\\') && path.split('/').every((part) => part !== '' && part !== '.' && part !== '..');
}

export function packArchive(entries: readonly ArchiveEntry[]): Buffer {
  const parts: Buffer[] = [Buffer.from(ARCHIVE_MAGIC)];
  for (const entry of entries) {
    parts.push(Buffer.from(JSON.stringify({ path: entry.path, mode: entry.mode & 0o777, size: entry.data.length }) + '\n'), entry.data);
  }
  return gzipSync(Buffer.concat(parts));
}

export function unpackArchive(file: string, packed: Buffer): ArchiveEntry[] {
  const bad = (why: string) => new ArchiveError('NTLS_ERR_BACKUP_FILE', `${file} is not an ntls home backup (${why})`, { hint: 'give a file made by `ntls home backup`' });
  let raw: Buffer;
  try {
    raw = gunzipSync(packed);
  } catch {
    throw bad('not gzip');
  }
  if (!raw.subarray(0, ARCHIVE_MAGIC.length).equals(Buffer.from(ARCHIVE_MAGIC))) throw bad('no NTLSHOME header');
  const entries: ArchiveEntry[] = [];
  let at = ARCHIVE_MAGIC.length;
  while (at < raw.length) {
    const newline = raw.indexOf(0x0a, at);
    if (newline < 0) throw bad('a header without its end');
    let header: { path?: unknown; mode?: unknown; size?: unknown };
    try {
      header = JSON.parse(raw.subarray(at, newline).toString('utf8')) as typeof header;
    } catch {
      throw bad('a header that is not JSON');
    }
    const { path, mode, size } = header;
    if (typeof path !== 'string' || !safePath(path) || typeof mode !== 'number' || typeof size !== 'number' || size < 0 || newline + 1 + size > raw.length) {
      throw bad('a damaged entry');
    }
    entries.push({ path, mode: mode & 0o777, data: Buffer.from(raw.subarray(newline + 1, newline + 1 + size)) });
    at = newline + 1 + size;
  }
  return entries;
}
