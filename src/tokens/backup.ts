// Backup of a partition's token objects into a token image, and restore from one.
//
// Backup: every token object of the partition, every attribute, its secret part re-sealed under
// the image's partition key (opened with the token's user PIN). It is written into a hidden
// working copy of the image and renamed over it only when complete, so an interruption (the
// daemon killed, the token ejected) leaves the image with its previous content.
// Restore: all or nothing, in one store transaction; --replace drops the partition's token
// objects first, --add skips objects identical to one already there (same attributes and secret).

import { closeSync, copyFileSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ClearObject, PartitionCredential, SoftwareHsm } from '../hsm/index.js';
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { TokenError } from './errors.js';
import { openImageHsm, writeBackupRecord, type ImageHsmOptions, type ImageInfo } from './image.js';

export type Progress = (done: number, total: number) => void | Promise<void>;

export interface ImageHandle {
  path: string;
  info: ImageInfo;
  /** Called once the finished copy has replaced the image (the watcher must not see an eject). */
  adopt(): void;
}

export type { PartitionCredential };

/** A partition and a token image, opened with their credentials. */
interface TransferRequest {
  hsm: SoftwareHsm;
  slot: number;
  partition: PartitionCredential;
  image: ImageHandle;
  /** The token's user (Crypto Officer) PIN. */
  tokenPin: string;
  hsmOptions: ImageHsmOptions;
  onProgress?: Progress;
}

export interface BackupRequest extends TransferRequest {
  /** Recorded in the image, so that whoever asked can tell afterwards whether its backup landed. */
  id: string;
}

export interface BackupResult {
  token: { label: string; serial: string };
  partition: { label: string; serial: string };
  objects: number;
  at: string;
  id: string;
}

export function interruptedMessage(info: ImageInfo): string {
  return info.backup === null
    ? 'backup interrupted: the token keeps its previous content (it held no backup)'
    : `backup interrupted: the token keeps its previous backup of ${info.backup.at}`;
}

/** The token inside an image, opened for one piece of work and closed after. */
async function withImageHsm<T>(path: string, options: ImageHsmOptions, work: (hsm: SoftwareHsm) => Promise<T>): Promise<T> {
  const { hsm } = await openImageHsm(path, options);
  try {
    return await work(hsm);
  } finally {
    hsm.close();
  }
}

function wipe(objects: readonly ClearObject[]): void {
  for (const object of objects) object.secret?.fill(0);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

const TOKEN_PIN = 'the token\'s PIN (--token-pin)';
const PARTITION_PIN = 'the partition\'s PIN (--partition-pin or --partition-so-pin)';

/** A PIN refused on one side of a transfer says which of the two PINs it was: each locks its own role. */
async function judged<T>(whose: string, work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof Pkcs11Error && (error.rv === CKR.PIN_INCORRECT || error.rv === CKR.PIN_LOCKED || error.rv === CKR.PIN_LEN_RANGE)) {
      throw new Pkcs11Error(error.rv, error.rv === CKR.PIN_LOCKED ? `${whose} is locked` : `${whose} is wrong`);
    }
    throw error;
  }
}

export async function backupPartition(request: BackupRequest): Promise<BackupResult> {
  const { hsm, image } = request;
  const partition = hsm.token(request.slot);
  const tokenCredential: PartitionCredential = { role: 'co', pin: request.tokenPin };
  // The token's PIN is judged on the token itself first: a wrong one counts there.
  await judged(TOKEN_PIN, () => withImageHsm(image.path, request.hsmOptions, (token) => token.checkCredential(0, tokenCredential)));
  const working = join(dirname(image.path), `.${basename(image.path)}.backup-${process.pid}`);
  const original = statSync(image.path);
  const stillInserted = () => {
    try {
      const now = statSync(image.path);
      return now.ino === original.ino && now.dev === original.dev;
    } catch {
      return false;
    }
  };
  const interrupted = () => new TokenError('NTLS_ERR_BACKUP_INTERRUPTED', interruptedMessage(image.info), 'insert the token again and run the backup again');
  let objects: ClearObject[] = [];
  try {
    objects = await judged(PARTITION_PIN, () => hsm.exportObjects(request.slot, request.partition));
    rmSync(working, { force: true });
    copyFileSync(image.path, working);
    await withImageHsm(working, request.hsmOptions, (copy) => copy.importObjects(0, tokenCredential, objects, 'replace', async (done, total) => {
      if (!stillInserted()) throw interrupted();
      await request.onProgress?.(done, total);
    }));
    const at = new Date().toISOString();
    writeBackupRecord(working, { at, id: request.id, sourceLabel: partition.label, sourceSerial: partition.serial, objects: objects.length });
    fsyncPath(working);
    if (!stillInserted()) throw interrupted();
    renameSync(working, image.path);
    image.adopt();
    fsyncPath(dirname(image.path));
    return {
      token: { label: image.info.label, serial: image.info.serial },
      partition: { label: partition.label, serial: partition.serial },
      objects: objects.length, at, id: request.id,
    };
  } finally {
    wipe(objects);
    for (const suffix of ['', '-journal']) rmSync(working + suffix, { force: true });
  }
}

export type RestoreMode = 'replace' | 'add';

export interface RestoreRequest extends TransferRequest {
  mode: RestoreMode;
}

export interface RestoreResult {
  token: { label: string; serial: string };
  partition: { label: string; serial: string };
  mode: RestoreMode;
  added: number;
  skipped: number;
  removed: number;
}

export async function restorePartition(request: RestoreRequest): Promise<RestoreResult> {
  const { hsm, image } = request;
  const partition = hsm.token(request.slot);
  // Read the whole backup in clear first: nothing changes in the partition unless all of it reads.
  const backup = await judged(TOKEN_PIN, () => withImageHsm(image.path, request.hsmOptions, (token) => token.exportObjects(0, { role: 'co', pin: request.tokenPin })));
  try {
    const result = await judged(PARTITION_PIN, () => hsm.importObjects(request.slot, request.partition, backup, request.mode, request.onProgress));
    return {
      token: { label: image.info.label, serial: image.info.serial },
      partition: { label: partition.label, serial: partition.serial },
      mode: request.mode, ...result,
    };
  } finally {
    wipe(backup);
  }
}
