// `ntls home backup`, served by the running daemon: a consistent snapshot of its store (SQLite's
// online backup, while it serves) with the rest of the home — configuration, server key and
// certificate, registered clients, token images, the audit trail and its key — in one file
// (src/home/archive.ts). Logs, the pid file, sockets and <home>/backups are left out.
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, sep } from 'node:path';
import type { ProcessorAdminCommand } from '../processor/contract.js';
import { writeFileAtomic } from '../files/atomic-file.js';
import { packArchive, type ArchiveEntry } from '../home/archive.js';
import { AdminError } from './protocol.js';
import type { AdminHandler } from './server.js';

/** Top-level entries of a home that a backup leaves out (hsm/: the store is its snapshot; backups/: earlier backups). */
const LEFT_OUT = new Set(['logs', 'ntls.pid', 'admin.sock', 'hsm', 'backups']);

function walk(root: string, folder: string, out: ArchiveEntry[]): void {
  for (const name of readdirSync(folder).sort()) {
    const path = join(folder, name);
    const rel = relative(root, path).split(sep).join('/');
    if (folder === root && LEFT_OUT.has(name)) continue;
    if (name.endsWith('.new') || name.startsWith('.backup-')) continue;
    const stat = lstatSync(path);
    if (stat.isDirectory()) walk(root, path, out);
    else if (stat.isFile()) out.push({ path: rel, mode: stat.mode & 0o777, data: readFileSync(path) });
    // Sockets, links and the like are not part of a home's state.
  }
}

export function homeBackupHandlers(root: string, processorCommands: ReadonlyMap<string, ProcessorAdminCommand>): Map<string, AdminHandler> {
  return new Map<string, AdminHandler>([['home.backup', async (args) => {
    const out = args.out;
    if (typeof out !== 'string' || !isAbsolute(out)) throw new AdminError('NTLS_ERR_ADMIN_ARGUMENT', 'the backup file must be an absolute path', 'give --out FILE');
    const entries: ArchiveEntry[] = [];
    const snapshot = processorCommands.get('store.backup');
    const scratch = mkdtempSync(join(tmpdir(), 'ntls-backup-'));
    try {
      if (snapshot) {
        const file = join(scratch, 'hsm.db');
        await snapshot({ file });
        entries.push({ path: 'hsm/hsm.db', mode: 0o600, data: readFileSync(file) });
      }
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    walk(root, root, entries);
    const packed = packArchive(entries);
    try {
      writeFileAtomic(out, packed, 0o600);
    } catch (error) {
      throw new AdminError('NTLS_ERR_FILE', `cannot write ${out} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, 'check that its folder exists and the daemon\'s user may write there');
    }
    return { out, bytes: packed.length, files: entries.map((e) => e.path) };
  }]]);
}
