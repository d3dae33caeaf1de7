// `ntls home restore`: a backup's files into a new home, all or nothing. Every path is checked
// before anything is written; the files go into a scratch folder beside the target, which is
// renamed into place at the end, so a restore that fails leaves no half-made home. Modes come
// from the backup, narrowed: nothing is group- or world-writable, and the secret folders (store,
// audit, server key, token images) are the owner's alone whatever the file says.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { NtlsError } from '../errors/ntls-error.js';
import type { ArchiveEntry } from './archive.js';
import { SECRET_FOLDERS } from './layout.js';

/** Folders made 0700, as the daemon and `ntls token` make them (devices/ holds token images). */
const RESTORED_SECRET_FOLDERS = new Set<string>([...SECRET_FOLDERS, 'devices']);

export class RestoreError extends NtlsError {}

export interface RestoredHome {
  files: string[];
  /** Code the restored configuration has the daemon load (a processor module, a PKCS#11 module). */
  loadsCode: Array<{ setting: string; path: string }>;
}

function checkPaths(file: string, entries: readonly ArchiveEntry[]): void {
  const refuse = (why: string) => new RestoreError('NTLS_ERR_BACKUP_DAMAGED', `${file} cannot be restored: ${why}; nothing was restored`, { hint: 'restore from another copy of the backup' });
  const files = new Set<string>();
  const folders = new Set<string>();
  for (const { path } of entries) {
    if (path.includes('\0')) throw refuse('a path holds a NUL byte');
    if (files.has(path)) throw refuse(`${path} comes twice`);
    files.add(path);
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join('/'));
  }
  for (const folder of folders) if (files.has(folder)) throw refuse(`${folder} is both a file and a folder`);
}

function codeLoaded(home: string): RestoredHome['loadsCode'] {
  let config: { processor?: { module?: unknown }; hsm?: { pkcs11?: { module?: unknown } } };
  try {
    config = JSON.parse(readFileSync(join(home, 'ntls.json'), 'utf8')) as typeof config;
  } catch {
    return [];
  }
  const found: RestoredHome['loadsCode'] = [];
  if (typeof config.processor?.module === 'string') found.push({ setting: 'processor.module', path: config.processor.module });
  if (typeof config.hsm?.pkcs11?.module === 'string') found.push({ setting: 'hsm.pkcs11.module', path: config.hsm.pkcs11.module });
  return found;
}

/** Writes `entries` as the home `target` (absent, or an empty folder). */
export function restoreHome(file: string, target: string, entries: readonly ArchiveEntry[]): RestoredHome {
  checkPaths(file, entries);
  mkdirSync(dirname(target), { recursive: true });
  const scratch = mkdtempSync(join(dirname(target), `.${basename(target)}.restoring-`));
  try {
    for (const entry of entries) {
      const parts = entry.path.split('/');
      const secret = parts.length > 1 && RESTORED_SECRET_FOLDERS.has(parts[0]!);
      const path = join(scratch, ...parts);
      mkdirSync(dirname(path), { recursive: true, mode: secret ? 0o700 : 0o750 });
      writeFileSync(path, entry.data, { mode: secret ? entry.mode & 0o700 : entry.mode & 0o755, flag: 'wx' });
    }
    chmodSync(scratch, 0o750);
    if (existsSync(target)) rmdirSync(target); // empty: checked by the caller, and rmdir refuses anything else
    renameSync(scratch, target);
  } catch (error) {
    rmSync(scratch, { recursive: true, force: true });
    if (error instanceof RestoreError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new RestoreError('NTLS_ERR_FILE', `cannot restore into ${target} (${code}); nothing was restored`, { hint: 'check that its folder is writable and has room' });
  }
  return { files: entries.map((e) => e.path), loadsCode: codeLoaded(target) };
}
