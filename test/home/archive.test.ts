// The home backup file: what is packed comes back; a file cut short, missing an entry or changed
// is refused as not whole; an earlier version's file is read, unchecked.
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { ArchiveError, packArchive, unpackArchive, type ArchiveEntry } from '../../src/home/archive.js';

const entries: ArchiveEntry[] = [
  { path: 'ntls.json', mode: 0o640, data: Buffer.from('{"server":{}}') },
  { path: 'server/server.key', mode: 0o600, data: Buffer.from('key bytes') },
  { path: 'clients/alice.pem', mode: 0o644, data: Buffer.from('certificate') },
];

function codeOf(action: () => unknown): string | null {
  try {
    action();
    return null;
  } catch (error) {
    if (error instanceof ArchiveError) return error.code;
    throw error;
  }
}

/** The archive's bytes without its last entry and with its end record as it was: a careless re-pack. */
function withoutLastEntry(packed: Buffer): Buffer {
  const raw = gunzipSync(packed).toString('latin1');
  const end = raw.lastIndexOf('{"end"');
  const last = raw.lastIndexOf('{"path"', end);
  return gzipSync(Buffer.from(raw.slice(0, last) + raw.slice(end), 'latin1'));
}

describe('home backup archive', () => {
  it('gives back what was packed, checked', () => {
    const { entries: back, checked } = unpackArchive('b', packArchive(entries));
    expect(checked).toBe(true);
    expect(back).toEqual(entries);
    expect(unpackArchive('b', packArchive([])).entries).toEqual([]);
  });

  it('refuses a file cut short, missing an entry, changed, or with bytes after its end', () => {
    const packed = packArchive(entries);
    const raw = gunzipSync(packed);
    const cases: Array<[string, Buffer]> = [
      ['cut short (gzip)', packed.subarray(0, packed.length - 10)],
      ['cut short (before the end record)', gzipSync(raw.subarray(0, raw.lastIndexOf('{"end"')))],
      ['cut short (in an entry)', gzipSync(raw.subarray(0, 40))],
      ['without its last entry', withoutLastEntry(packed)],
      ['a byte changed', gzipSync(Buffer.from(raw.toString('latin1').replace('key bytes', 'key bytez'), 'latin1'))],
      ['bytes after the end', gzipSync(Buffer.concat([raw, Buffer.from('x')]))],
    ];
    for (const [what, bytes] of cases) expect([what, codeOf(() => unpackArchive('b', bytes))]).toEqual([what, 'NTLS_ERR_BACKUP_DAMAGED']);
  });

  it('refuses what would be too large once uncompressed, without holding it (a gzip bomb)', () => {
    const bomb = packArchive([{ path: 'big', mode: 0o600, data: Buffer.alloc(64 * 1024) }]);
    expect(bomb.length).toBeLessThan(1024);
    expect(codeOf(() => unpackArchive('b', bomb, 16 * 1024))).toBe('NTLS_ERR_BACKUP_DAMAGED');
    expect(unpackArchive('b', bomb, 128 * 1024).entries[0]!.data.length).toBe(64 * 1024);
  });

  it('refuses what is no backup at all', () => {
    expect(codeOf(() => unpackArchive('b', Buffer.from('hello')))).toBe('NTLS_ERR_BACKUP_FILE');
    expect(codeOf(() => unpackArchive('b', gzipSync(Buffer.from('hello\n'))))).toBe('NTLS_ERR_BACKUP_FILE');
  });

  it('reads a version 1 file (no end record) and says it could not be checked', () => {
    const v1 = gzipSync(Buffer.concat([Buffer.from('NTLSHOME 1\n'), ...entries.flatMap((e) => [
      Buffer.from(JSON.stringify({ path: e.path, mode: e.mode, size: e.data.length }) + '\n'), e.data])]));
    const { entries: back, checked } = unpackArchive('b', v1);
    expect(checked).toBe(false);
    expect(back).toEqual(entries);
  });

  it('ends with the file count and the SHA-256 of what comes before', () => {
    const raw = gunzipSync(packArchive(entries));
    const at = raw.lastIndexOf('{"end"');
    expect(JSON.parse(raw.subarray(at).toString())).toEqual({ end: { files: 3, sha256: createHash('sha256').update(raw.subarray(0, at)).digest('hex') } });
  });
});
