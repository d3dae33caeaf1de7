// `ntls token list|init|deploy|undeploy|backup|restore`: USB-attached tokens, which here are token
// images in <home>/devices. `init` only writes a file, so it works with or without a daemon;
// the others ask the running daemon, which owns the HSM and the virtual token list.
import { mkdirSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { basename, join, resolve } from 'node:path';
import { Command } from 'commander';
import { callAdmin } from '../admin/client.js';
import { AdminError } from '../admin/protocol.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { resolveHome } from '../home/layout.js';
import { interruptedMessage } from '../tokens/backup.js';
import { TokenError } from '../tokens/errors.js';
import { IMAGE_SUFFIX, createImage, devicesFolder, readImage, type ImageInfo } from '../tokens/image.js';
import type { TokenListing } from '../tokens/virtual-tokens.js';
import { fields, print, table, type OutputOptions } from './output.js';
import { Exit, exitWithError, fail as failWith } from './failure.js';
import { withProgress } from './progress.js';
import { printable } from '../log/printable.js';
import { recordChange } from './cli-audit.js';

type Common = OutputOptions & { home?: string };

/** Backups and restores of big partitions take a while; the daemon answers when done. */
const LONG_CALL_MS = 60 * 60 * 1000;

function fail(problem: string, code: string, hint?: string, status: number = Exit.Failed): never {
  failWith(code, problem, hint, status);
}

async function admin<T>(options: Common, command: string, args: Record<string, unknown> = {}, timeoutMs?: number): Promise<T> {
  try {
    return await callAdmin<T>(resolveHome(options.home), command, args, timeoutMs);
  } catch (error) {
    exitWithError(error);
  }
}

const withCommon = (command: Command) => command
  .option('--home <dir>', 'service home (default: $NTLS_HOME or ./ntls-home)')
  .option('--json', 'output for scripts');

type PartitionPins = { partitionPin?: string; partitionSoPin?: string; tokenPin: string };
const withPins = (command: Command) => command
  .option('--partition-pin <pin>', 'the partition\'s Crypto Officer PIN')
  .option('--partition-so-pin <pin>', 'or the partition\'s SO PIN')
  .requiredOption('--token-pin <pin>', 'the token\'s user PIN');

function imageName(label: string, serial: string | undefined): string {
  const base = label.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '');
  return (base || serial || `token-${Date.now()}`) + IMAGE_SUFFIX;
}

/** Shows the running operation's object count while waiting for the daemon's answer. */
async function withOperationProgress<T>(options: Common, label: string, serial: string | null, work: Promise<T>): Promise<T> {
  let detail = '';
  let done = false;
  const poll = async () => {
    while (!done && process.stderr.isTTY) {
      const running = await callAdmin<Array<{ token: string; done: number; total: number }>>(resolveHome(options.home), 'token.progress').catch(() => []);
      const mine = running.find((r) => serial === null || r.token === serial || running.length === 1);
      if (mine) detail = `${mine.done}/${mine.total} objects`;
      await new Promise((r) => setTimeout(r, 200));
    }
  };
  const polling = poll();
  try {
    return await withProgress(label, work, () => detail);
  } finally {
    done = true;
    await polling;
  }
}

export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('USB-attached tokens: token images in <home>/devices (backup devices, PKI bundles)');

  withCommon(token.command('list').description('inserted and deployed tokens, with their slots'))
    .action(async (o: Common) => {
      const rows = await admin<TokenListing[]>(o, 'token.list');
      print(rows, o, (r: TokenListing[]) => (r.length === 0
        ? `no token inserted; token images go in ${devicesFolder(resolveHome(o.home))}\n`
        : table(r.map((x) => ({ ...x, problem: x.problem?.code ?? null })), ['slot', 'container', 'label', 'serial', 'state', 'objects', 'lastBackup', 'file', 'problem'])));
    });

  withCommon(token.command('init').description('make a new, empty token image (works without a running daemon)'))
    .requiredOption('-l, --label <label>', 'token label (at most 32 bytes; may be "")')
    .requiredOption('--so-pin <pin>', 'the token\'s SO PIN')
    .requiredOption('--pin <pin>', 'the token\'s user PIN (backup, restore, and clients of a deployed token use it)')
    .option('--serial <digits>', 'serial number (made up when absent)')
    .option('--name <name>', 'image file name in the devices folder (default: from the label)')
    .option('--file <path>', 'write the image here instead of into the devices folder')
    .action(async (o: Common & { label: string; soPin: string; pin: string; serial?: string; name?: string; file?: string }) => {
      const home = resolveHome(o.home);
      let config;
      try {
        config = loadConfig(home);
      } catch (error) {
        if (error instanceof ConfigError) exitWithError(error);
        throw error;
      }
      let path: string;
      if (o.file !== undefined) {
        path = resolve(o.file);
      } else {
        // A name, not a path: the image goes into the devices folder and nowhere else (--file is for elsewhere).
        if (o.name !== undefined && (o.name === '' || basename(o.name) !== o.name || o.name === '.' || o.name === '..')) {
          fail(`--name ${JSON.stringify(o.name)} is not a file name`, 'NTLS_ERR_ADMIN_ARGUMENT', 'give a name without "/" (the image goes into the devices folder), or --file PATH to write it elsewhere', 2);
        }
        mkdirSync(devicesFolder(home), { recursive: true, mode: 0o700 });
        const name = o.name === undefined ? imageName(o.label, o.serial) : o.name.endsWith(IMAGE_SUFFIX) ? o.name : o.name + IMAGE_SUFFIX;
        path = join(devicesFolder(home), name);
      }
      const made = withProgress(`creating token image ${printable(o.label)}`, createImage(path, {
        label: o.label, serial: o.serial, soPin: o.soPin, userPin: o.pin,
        kdf: { cost: config.hsm.kdfCost, blockSize: 8, parallelization: 1 },
        pinPolicy: { minLength: config.hsm.pinMinLength, maxLength: config.hsm.pinMaxLength, maxFailedLogins: config.hsm.maxFailedLogins },
      }));
      let info: ImageInfo;
      try {
        info = await made;
      } catch (error) {
        if (error instanceof TokenError) fail(error.message, error.code, error.hint, 2);
        throw error;
      }
      await recordChange(home, 'token.init', { label: info.label, serial: info.serial, file: info.path });
      print(info, o, (r: ImageInfo) => `token image ${printable(r.path)} created: label "${printable(r.label)}", serial ${r.serial}\n`);
    });

  withCommon(token.command('deploy').description('add an inserted token to the virtual token list (assigned clients see it as a slot)'))
    .requiredOption('-t, --token <name>', 'image file name, serial number or label')
    .action(async (o: Common & { token: string }) => {
      print(await admin(o, 'token.deploy', { token: o.token }), o,
        (r: TokenListing) => `token ${printable(r.label ?? '')} (serial ${r.serial}) deployed at slot ${r.slot}, container id ${r.container}\n`);
    });

  withCommon(token.command('undeploy').description('take a token off the virtual token list'))
    .requiredOption('-t, --token <name>', 'serial number, label or image file name')
    .action(async (o: Common & { token: string }) => {
      print(await admin(o, 'token.undeploy', { token: o.token }), o,
        (r: { label: string; serial: string }) => `token ${r.label} (serial ${r.serial}) undeployed\n`);
    });

  withPins(withCommon(token.command('backup').description('copy every token object of a partition into a token, replacing its previous backup')))
    .requiredOption('-p, --partition <name|serial>', 'partition to back up: its name or serial number')
    .requiredOption('-t, --token <name>', 'backup token: image file name, serial number or label')
    .action(async (o: Common & PartitionPins & { partition: string; token: string }) => {
      const before = await admin<TokenListing>(o, 'token.show', { token: o.token });
      const path = join(devicesFolder(resolveHome(o.home)), before.file);
      let previous: ImageInfo | null = null;
      try {
        previous = readImage(path);
      } catch {
        // The daemon refuses it too, and says why.
      }
      const id = randomUUID();
      const call = callAdmin(resolveHome(o.home), 'token.backup', {
        partition: o.partition, token: o.token, partitionPin: o.partitionPin, partitionSoPin: o.partitionSoPin, tokenPin: o.tokenPin, id,
      }, LONG_CALL_MS);
      try {
        const result = await withOperationProgress(o, `backing up ${o.partition} to ${before.label ?? before.file}`, before.label || before.serial, call);
        print(result, o, (r: { objects: number; at: string }) => `${r.objects} object(s) of ${o.partition} backed up to token ${before.label} (${before.serial}) at ${r.at}\n`);
      } catch (error) {
        if (!(error instanceof AdminError)) throw error;
        if (error.code !== 'NTLS_ERR_ADMIN_CLOSED' || previous === null) fail(error.message, error.code, error.hint);
        // The daemon went away mid-way: the image says whether this backup landed.
        let now: ImageInfo | null = null;
        try {
          now = readImage(path);
        } catch {
          // Ejected as well: it kept what it had.
        }
        if (now?.backup?.id === id) {
          print(now, o, () => `the daemon stopped, but only after the backup completed (${now.backup!.objects} object(s) at ${now.backup!.at})\n`);
          return;
        }
        fail(interruptedMessage(previous), 'NTLS_ERR_BACKUP_INTERRUPTED', 'start the daemon and run the backup again');
      }
    });

  withPins(withCommon(token.command('restore').description('bring a token\'s backup back into a partition (all or nothing)')))
    .requiredOption('-t, --token <name>', 'backup token: image file name, serial number or label')
    .requiredOption('-p, --partition <name|serial>', 'partition to restore into: its name or serial number')
    .option('--replace', 'drop the partition\'s token objects first')
    .option('--add', 'add the backup\'s objects (those already there, identical, are skipped)')
    .action(async (o: Common & PartitionPins & { token: string; partition: string; replace?: boolean; add?: boolean }) => {
      if (o.replace && o.add) fail('--replace and --add exclude each other', 'NTLS_ERR_ADMIN_ARGUMENT', 'choose one', 2);
      const mode = o.replace ? 'replace' : o.add ? 'add' : undefined;
      const call = admin<{ added: number; skipped: number; removed: number }>(o, 'token.restore', {
        partition: o.partition, token: o.token, partitionPin: o.partitionPin, partitionSoPin: o.partitionSoPin, tokenPin: o.tokenPin, mode,
      }, LONG_CALL_MS);
      const result = await withOperationProgress(o, `restoring ${o.token} into ${o.partition}`, null, call);
      print(result, o, (r: { added: number; skipped: number; removed: number }) =>
        `${r.added} object(s) restored into ${o.partition}${r.removed ? `, ${r.removed} replaced` : ''}${r.skipped ? `, ${r.skipped} already there` : ''}\n`);
    });

  withCommon(token.command('show').description('one token: slot, state, last backup'))
    .requiredOption('-t, --token <name>', 'image file name, serial number or label')
    .action(async (o: Common & { token: string }) => print(await admin(o, 'token.show', { token: o.token }), o, (r: never) => fields(r)));
}
