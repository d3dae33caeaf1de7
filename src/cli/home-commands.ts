// `ntls home backup|restore`: a running home into one file (made by the daemon: src/admin/home-backup.ts),
// and that file into an empty home.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { callAdmin } from '../admin/client.js';
import { missingFile } from '../files/missing-file.js';
import { unpackArchive } from '../home/archive.js';
import { resolveHome } from '../home/layout.js';
import { restoreHome } from '../home/restore.js';
import { Exit, exitWithError, fail } from './failure.js';
import { print } from './output.js';

export function registerHomeCommands(program: Command): void {
  const home = program.command('home').description('the service home: backup of a running home, restore into an empty one');
  home.command('backup')
    .description('copy a running home into one file: store snapshot (while it serves), server key and certificate, clients, configuration, tokens, audit trail')
    .requiredOption('-o, --out <file>', 'the backup file to write (mode 0600: it holds the server key)')
    .option('--home <dir>', 'service home (default: $NTLS_HOME or ./ntls-home)')
    .option('-f, --force', 'replace the file if it exists')
    .option('--json', 'output for scripts')
    .action(async (o: { out: string; home?: string; json?: boolean; force?: boolean }) => {
      const out = resolve(o.out);
      // An earlier backup is not written over unasked: it may be the only good one.
      if (existsSync(out) && !o.force) fail('NTLS_ERR_FILE_EXISTS', `${out} exists`, 'give another --out, or --force to replace it; nothing was written', Exit.BadInput);
      const home = resolveHome(o.home);
      const result = await callAdmin<{ out: string; bytes: number; files: string[] }>(home, 'home.backup', { out }, 10 * 60_000).catch((error: unknown) => {
        // A stopped home has no daemon to make the file: it is backed up as a folder (docs/operations.md).
        if ((error as { code?: string }).code === 'NTLS_ERR_NO_DAEMON') {
          fail('NTLS_ERR_NO_DAEMON', `no daemon runs for ${home}`, `start it with \`ntls start --home ${home}\` and back it up, or copy the stopped home as a folder (\`cp -a ${home} BACKUP\`)`, Exit.Failed);
        }
        return exitWithError(error);
      });
      print(result, o, (r: { out: string; bytes: number; files: string[] }) => `backup written to ${r.out} (${r.bytes} bytes, ${r.files.length} files)\n`);
    });
  home.command('restore')
    .description('unpack a backup made by `ntls home backup` into an empty (or new) home')
    .requiredOption('-i, --in <file>', 'the backup file')
    .requiredOption('--home <dir>', 'the home to make: an empty or absent folder')
    .option('--json', 'output for scripts')
    .action((o: { in: string; home: string; json?: boolean }) => {
      const target = resolve(o.home);
      if (missingFile(o.in)) fail('NTLS_ERR_FILE', `backup file ${o.in} does not exist`, 'give the file made by `ntls home backup`', Exit.BadInput);
      if (existsSync(target) && (!statSync(target).isDirectory() || readdirSync(target).length > 0)) {
        fail('NTLS_ERR_HOME_NOT_EMPTY', `${target} is ${statSync(target).isDirectory() ? 'not an empty folder' : 'not a folder'}`, 'restore into a new or empty folder; nothing was written', Exit.BadInput);
      }
      let unpacked;
      try {
        unpacked = unpackArchive(o.in, readFileSync(o.in));
      } catch (error) {
        exitWithError(error);
      }
      const { entries, checked } = unpacked;
      let restored;
      try {
        restored = restoreHome(o.in, target, entries);
      } catch (error) {
        exitWithError(error);
      }
      print({ home: target, files: restored.files, checked, loadsCode: restored.loadsCode }, o, (r: { home: string; files: string[] }) =>
        `restored ${r.files.length} files into ${r.home}; start it with \`ntls start --home ${r.home}\`\n`);
      // A backup is trusted as a home is: say what code its configuration will have the daemon load.
      for (const { setting, path } of restored.loadsCode) {
        process.stderr.write(`ntls: the restored configuration has the daemon load code: ${setting} = ${path}; check it is what you expect before \`ntls start\`\n`);
      }
      // An earlier version's file has no end record: what it holds was restored, whole or not.
      if (!checked) process.stderr.write(`ntls: ${o.in} was made by an earlier ntls, whose backups do not record their file count: a backup cut short cannot be told from a whole one\n`);
    });
}
