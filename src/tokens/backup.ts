// Backup of a partition's token objects into a token image, and restore from one.
//
// Backup: every token object of the partition, every attribute, its secret part re-sealed under
// the image's partition key (opened with the token's user PIN). It is written into a hidden
// working copy of the image and renamed over it only when complete, so an interruption (the
// daemon killed, the token ejected) leaves the image with its previous content.
// Restore: all or nothing, in one store transaction; --replace drops the partition's token
// objects first, --add skips objects identical to one already there (same attributes and secret).

import { createHash } from 'node:crypto';
import { closeSync, copyFileSync, fsyncSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { decodeAttributes, encodeAttributes } from '../hsm/attributes.js';
import type { Hsm } from '../hsm/hsm.js';
import { partitionKeyOf } from '../hsm/login.js';
import { HsmObject, objectAad } from '../hsm/object.js';
import type { Partition } from '../hsm/partition.js';
import type { Role } from '../hsm/roles.js';
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { HsmStore, type ObjectRow } from '../store/hsm-store.js';
import { seal, unseal } from '../store/seal.js';
import { TokenError } from './errors.js';
import { IMAGE_PARTITION_ID, openImageHsm, writeBackupRecord, type ImageHsmOptions, type ImageInfo } from './image.js';

/** Objects copied between two looks at the image (and two progress reports). */
const BATCH = 32;

export type Progress = (done: number, total: number) => void | Promise<void>;

export interface ImageHandle {
  path: string;
  info: ImageInfo;
  /** Called once the finished copy has replaced the image (the watcher must not see an eject). */
  adopt(): void;
}

export interface PartitionCredential {
  /** 'co' (Crypto Officer, the default) or 'so'; both open the partition key. */
  role: Role;
  pin: string;
}

/** A partition and a token image, opened with their credentials. */
interface TransferRequest {
  hsm: Hsm;
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

/** The key of the token inside an image, opened with its user PIN (a wrong PIN is counted in the image). */
async function tokenKey(image: ImageHandle, pin: string, options: ImageHsmOptions): Promise<Buffer> {
  const { hsm } = await openImageHsm(image.path, options);
  try {
    const partition = hsm.partitions.get(0)!;
    return await partitionKeyOf(hsm, partition, 'co', pin);
  } finally {
    hsm.close();
  }
}

function openSecret(key: Buffer, partitionId: number, object: HsmObject): Buffer | null {
  if (object.sealed === null) return null;
  const clear = unseal(key, object.sealed, objectAad(partitionId, object.handle));
  if (clear === null) throw new Pkcs11Error(CKR.DEVICE_ERROR, `the secret of object ${object.handle} does not open`);
  return clear;
}

function tokenObjects(partition: Partition): HsmObject[] {
  return [...partition.objects.values()].filter((o) => o.isToken).sort((a, b) => a.handle - b.handle);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

export async function backupPartition(request: BackupRequest): Promise<BackupResult> {
  const { hsm, image } = request;
  const partition = hsm.partition(request.slot);
  const keyOfToken = await tokenKey(image, request.tokenPin, request.hsmOptions);
  let keyOfPartition: Buffer | null = null;
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
  try {
    keyOfPartition = await partitionKeyOf(hsm, partition, request.partition.role, request.partition.pin);
    const objects = tokenObjects(partition);
    rmSync(working, { force: true });
    copyFileSync(image.path, working);
    const store = HsmStore.open(working, { create: false, journal: 'delete' });
    try {
      const row = store.partitions()[0]!;
      store.updatePartition(row, true);
      for (let start = 0; start < objects.length; start += BATCH) {
        const rows: ObjectRow[] = objects.slice(start, start + BATCH).map((object, i) => {
          const id = start + i + 1;
          const clear = openSecret(keyOfPartition!, partition.id, object);
          const sealed = clear === null ? null : seal(keyOfToken, clear, objectAad(IMAGE_PARTITION_ID, id));
          clear?.fill(0);
          return { id, partitionId: IMAGE_PARTITION_ID, attributes: encodeAttributes(object.attributes), sealed };
        });
        store.putObjects(rows);
        if (!stillInserted()) throw interrupted();
        await request.onProgress?.(start + rows.length, objects.length);
        await yieldToEventLoop();
      }
    } finally {
      store.close();
    }
    const at = new Date().toISOString();
    writeBackupRecord(working, { at, id: request.id, sourceLabel: partition.row.label, sourceSerial: partition.row.serial, objects: objects.length });
    fsyncPath(working);
    if (!stillInserted()) throw interrupted();
    renameSync(working, image.path);
    image.adopt();
    fsyncPath(dirname(image.path));
    if (objects.length === 0) await request.onProgress?.(0, 0);
    return {
      token: { label: image.info.label, serial: image.info.serial },
      partition: { label: partition.row.label, serial: partition.row.serial },
      objects: objects.length, at, id: request.id,
    };
  } finally {
    keyOfToken.fill(0);
    keyOfPartition?.fill(0);
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

interface Clear { attributes: Buffer; secret: Buffer | null }

/** What makes two objects the same object: every attribute, and the secret part. */
function fingerprint(o: Clear): string {
  const hash = createHash('sha256').update(o.attributes);
  hash.update(o.secret === null ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), o.secret]));
  return hash.digest('hex');
}

export async function restorePartition(request: RestoreRequest): Promise<RestoreResult> {
  const { hsm, image } = request;
  const partition = hsm.partition(request.slot);
  // Read the whole backup in clear first: nothing changes in the partition unless all of it reads.
  const backup: Clear[] = [];
  const { hsm: tokenHsm } = await openImageHsm(image.path, request.hsmOptions);
  try {
    const tokenPartition = tokenHsm.partitions.get(0)!;
    const key = await partitionKeyOf(tokenHsm, tokenPartition, 'co', request.tokenPin);
    try {
      for (const object of tokenObjects(tokenPartition)) {
        backup.push({ attributes: encodeAttributes(object.attributes), secret: openSecret(key, tokenPartition.id, object) });
      }
    } finally {
      key.fill(0);
    }
  } finally {
    tokenHsm.close();
  }
  const key = await partitionKeyOf(hsm, partition, request.partition.role, request.partition.pin);
  try {
    const existing = tokenObjects(partition);
    const known = new Set<string>();
    if (request.mode === 'add') {
      for (const object of existing) {
        const secret = openSecret(key, partition.id, object);
        known.add(fingerprint({ attributes: encodeAttributes(object.attributes), secret }));
        secret?.fill(0);
      }
    }
    const made: HsmObject[] = [];
    let skipped = 0;
    for (const [i, entry] of backup.entries()) {
      if (request.mode === 'add' && known.has(fingerprint(entry))) {
        skipped++;
      } else {
        const handle = hsm.newObjectHandle();
        const sealed = entry.secret === null ? null : seal(key, entry.secret, objectAad(partition.id, handle));
        made.push(new HsmObject(handle, partition.id, decodeAttributes(entry.attributes), null, sealed, null));
      }
      entry.secret?.fill(0);
      if ((i + 1) % BATCH === 0) {
        await request.onProgress?.(i + 1, backup.length);
        await yieldToEventLoop();
      }
    }
    // The KDF and the yields let other requests run: the partition may be gone.
    if (hsm.partitions.get(request.slot) !== partition) throw new Pkcs11Error(CKR.DEVICE_REMOVED, 'the partition was deleted during the restore; nothing was restored');
    const rows: ObjectRow[] = made.map((o) => ({ id: o.handle, partitionId: partition.id, attributes: encodeAttributes(o.attributes), sealed: o.sealed }));
    try {
      if (request.mode === 'replace') hsm.store.replaceObjects(partition.id, rows);
      else hsm.store.putObjects(rows);
    } catch (error) {
      throw new Pkcs11Error(CKR.DEVICE_ERROR, (error as Error).message);
    }
    let removed = 0;
    if (request.mode === 'replace') {
      for (const object of tokenObjects(partition)) {
        partition.objects.delete(object.handle);
        partition.dropUnsealed(object.handle);
        removed++;
      }
    }
    for (const object of made) partition.objects.set(object.handle, object);
    await request.onProgress?.(backup.length, backup.length);
    return {
      token: { label: image.info.label, serial: image.info.serial },
      partition: { label: partition.row.label, serial: partition.row.serial },
      mode: request.mode, added: made.length, skipped, removed,
    };
  } finally {
    key.fill(0);
  }
}
