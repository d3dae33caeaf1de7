// A token image: the file that stands for a USB-attached token (backup device, PKI bundle).
// It is an ntls HSM store (src/store) holding exactly one partition, the token, plus a
// `token_image` table saying what it is: kind "ntls-token-image", format version, creation
// time and the record of the last backup written into it. docs/token-image.md describes it.
//
// Reading never writes: a damaged or foreign file is refused and left exactly as it was.

import Database from 'better-sqlite3';
import { randomInt } from 'node:crypto';
import { closeSync, linkSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import {
  SoftwareHsm, STORE_APPLICATION_ID as APPLICATION_ID, STORE_MAGIC as MAGIC, STORE_SCHEMA_VERSION as SCHEMA_VERSION,
  checkPinLength, createTokenStore, pinBytes, type HsmOptions, type KdfParameters, type PinPolicy,
} from '../hsm/index.js';
import { TokenError } from './errors.js';

export const IMAGE_KIND = 'ntls-token-image';
/** Raised when a reader of the previous version could no longer read an image correctly. */
export const IMAGE_FORMAT_VERSION = 1;
export const IMAGE_SUFFIX = '.ntlstoken';
/** The token's partition inside its image. */
export const IMAGE_PARTITION_ID = 1;

const CREATE_IMAGE_TABLE = 'CREATE TABLE token_image (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;';
const SQLITE_HEADER = Buffer.from('SQLite format 3\0', 'latin1');
const LABEL_BYTES = 32;

/** What the last backup wrote into the image. */
export interface BackupRecord {
  /** ISO time the backup completed. */
  at: string;
  /** Chosen by whoever asked for the backup, to recognise its own backup afterwards. */
  id: string;
  sourceLabel: string;
  sourceSerial: string;
  objects: number;
}

export interface ImageInfo {
  path: string;
  label: string;
  serial: string;
  formatVersion: number;
  createdAt: string;
  objects: number;
  hasUserPin: boolean;
  backup: BackupRecord | null;
}

function damaged(path: string, why: string, cause?: unknown): TokenError {
  return new TokenError('NTLS_ERR_IMAGE_DAMAGED', `${path} is a damaged token image: ${why}`,
    'the file was left as it is; copy the device again or remove it', { cause });
}

function foreign(path: string, why: string): TokenError {
  return new TokenError('NTLS_ERR_IMAGE_FOREIGN', `${path} is not an ntls token image: ${why}`,
    'only files made by `ntls token init` (or a backup) are tokens; the file was left as it is');
}

/** Checks the SQLite header by hand: the file's kind and completeness are known before SQLite opens it. */
function checkHeader(path: string): void {
  let size: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw foreign(path, 'not a regular file');
    size = stat.size;
  } catch (error) {
    if (error instanceof TokenError) throw error;
    throw new TokenError('NTLS_ERR_IMAGE_UNREADABLE', `${path} cannot be read: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, undefined, { cause: error });
  }
  const header = Buffer.alloc(100);
  const fd = openSync(path, 'r');
  let read: number;
  try { read = readSync(fd, header, 0, 100, 0); } finally { closeSync(fd); }
  if (read < 100 || !header.subarray(0, 16).equals(SQLITE_HEADER)) throw damaged(path, 'not an SQLite file, or cut short');
  const rawPageSize = header.readUInt16BE(16);
  const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
  const pages = header.readUInt32BE(28);
  const pagesValid = header.readUInt32BE(92) === header.readUInt32BE(24);
  if (pageSize < 512 || size % pageSize !== 0 || (pagesValid && size < pages * pageSize)) {
    throw damaged(path, `truncated (${size} bytes)`);
  }
  if (header.readUInt32BE(68) !== APPLICATION_ID) throw foreign(path, 'an SQLite database of another program');
  // Images are always in rollback-journal mode; opening a WAL file, even read-only, would
  // create files beside it. A WAL file with our id is the home's store, not a token.
  if (header[18] === 2 || header[19] === 2) throw foreign(path, 'an ntls HSM store, not a token image');
}

/** SQLite's own result code (SQLITE_BUSY, ...) of a better-sqlite3 error, or '' for any other. */
function sqliteCode(error: unknown): string {
  return error instanceof Database.SqliteError ? error.code : '';
}

function openReadOnly(path: string): Database.Database {
  try {
    return new Database(path, { readonly: true, fileMustExist: true, timeout: 0 });
  } catch (error) {
    throw new TokenError('NTLS_ERR_IMAGE_UNREADABLE', `${path} cannot be opened: ${(error as Error).message}`, undefined, { cause: error });
  }
}

/** Reads an image's description. Throws TokenError (DAMAGED, FOREIGN, VERSION, BUSY, UNREADABLE); never writes. */
export function readImage(path: string): ImageInfo {
  checkHeader(path);
  let db = openReadOnly(path);
  try {
    try {
      return describe(db, path);
    } catch (error) {
      // A hot journal left by a writer that died: only a read-write connection rolls it back.
      // The header already says the file is ours, so letting SQLite finish its own write is safe.
      if (!sqliteCode(error).startsWith('SQLITE_READONLY')) throw error;
      db.close();
      db = new Database(path, { fileMustExist: true, timeout: 0 });
      return describe(db, path);
    }
  } catch (error) {
    if (error instanceof TokenError) throw error;
    const code = sqliteCode(error);
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      throw new TokenError('NTLS_ERR_IMAGE_BUSY', `${path} is in use by another HSM (process)`, 'stop the other program using it');
    }
    throw damaged(path, (error as Error).message, error);
  } finally {
    db.close();
  }
}

function describe(db: Database.Database, path: string): ImageInfo {
  const tables = new Set((db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
  if (!tables.has('meta')) throw foreign(path, 'no ntls store inside');
  const meta = keyValues(db, 'meta');
  if (meta.get('magic') !== MAGIC) throw foreign(path, 'no ntls store inside');
  if (!tables.has('token_image')) throw foreign(path, 'an ntls HSM store, not a token image');
  const image = keyValues(db, 'token_image');
  if (image.get('kind') !== IMAGE_KIND) throw foreign(path, `kind "${image.get('kind') ?? ''}"`);
  const version = Number(image.get('format_version'));
  if (!Number.isInteger(version) || version < 1) throw damaged(path, 'no format version');
  if (version > IMAGE_FORMAT_VERSION || meta.get('schema_version') !== String(SCHEMA_VERSION)) {
    throw new TokenError('NTLS_ERR_IMAGE_VERSION', `${path} is a token image of format ${version}, newer than this ntls reads (${IMAGE_FORMAT_VERSION})`,
      'use the ntls version that made it, or a newer one; the file was left as it is');
  }
  const check = db.pragma('quick_check', { simple: true });
  if (check !== 'ok') throw damaged(path, `integrity check: ${String(check)}`);
  const partitions = db.prepare('SELECT id, label, serial, initialized, co_credential FROM partitions').all() as
    { id: number; label: string; serial: string; initialized: number; co_credential: string | null }[];
  const token = partitions[0];
  if (partitions.length !== 1 || token === undefined || token.id !== IMAGE_PARTITION_ID || token.initialized !== 1) {
    throw damaged(path, `it holds ${partitions.length} token(s), not one initialised token`);
  }
  const objects = (db.prepare('SELECT count(*) AS n FROM objects').get() as { n: number }).n;
  return {
    path, label: token.label, serial: token.serial, formatVersion: version, createdAt: image.get('created_at') ?? '',
    objects, hasUserPin: token.co_credential !== null, backup: backupRecord(image),
  };
}

function keyValues(db: Database.Database, table: 'meta' | 'token_image'): Map<string, string> {
  return new Map((db.prepare(`SELECT key, value FROM ${table}`).all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
}

function backupRecord(image: Map<string, string>): BackupRecord | null {
  const at = image.get('backup_at');
  if (at === undefined) return null;
  return {
    at, id: image.get('backup_id') ?? '', sourceLabel: image.get('backup_source_label') ?? '',
    sourceSerial: image.get('backup_source_serial') ?? '', objects: Number(image.get('backup_objects') ?? 0),
  };
}

/** Writes the backup record into an image that nobody holds open (the backup's working copy). */
export function writeBackupRecord(path: string, record: BackupRecord): void {
  const db = new Database(path, { fileMustExist: true, timeout: 0 });
  try {
    const put = db.prepare('INSERT OR REPLACE INTO token_image (key, value) VALUES (?, ?)');
    db.transaction(() => {
      put.run('backup_at', record.at);
      put.run('backup_id', record.id);
      put.run('backup_source_label', record.sourceLabel);
      put.run('backup_source_serial', record.sourceSerial);
      put.run('backup_objects', String(record.objects));
    })();
  } finally {
    db.close();
  }
}

export interface NewImage {
  /** Token label, at most 32 bytes; may be empty. */
  label: string;
  /** Serial number; digits, made up when absent. */
  serial?: string;
  soPin: string;
  /** The token's user (Crypto Officer) PIN. */
  userPin: string;
  kdf: KdfParameters;
  pinPolicy: PinPolicy;
}

/** Makes a new, empty token image at `path`; refuses to replace an existing file. */
export async function createImage(path: string, image: NewImage): Promise<ImageInfo> {
  const label = image.label.replace(/ +$/, '');
  if (Buffer.byteLength(label, 'utf8') > LABEL_BYTES) throw new TokenError('NTLS_ERR_IMAGE_ARGUMENT', `a label has at most ${LABEL_BYTES} bytes`, 'choose a shorter label');
  const serial = image.serial ?? String(randomInt(100_000_000, 999_999_999)) + String(randomInt(100, 999));
  if (!/^\d{1,16}$/.test(serial)) throw new TokenError('NTLS_ERR_IMAGE_ARGUMENT', `serial "${serial}" is not 1-16 digits`, 'give digits only');
  for (const [what, pin] of [['SO PIN', image.soPin], ['user PIN', image.userPin]] as const) {
    try {
      checkPinLength(image.pinPolicy, pinBytes(pin));
    } catch {
      throw new TokenError('NTLS_ERR_IMAGE_ARGUMENT', `the ${what} is not ${image.pinPolicy.minLength}-${image.pinPolicy.maxLength} bytes long`, 'see `ntls partition policy`');
    }
  }
  if (exists(path)) throw new TokenError('NTLS_ERR_IMAGE_EXISTS', `${path} exists`, 'choose another name, or remove the file');
  // Built under a hidden name (the watcher ignores it), then linked into place: a watcher never
  // sees a half-made image, and an existing file is never replaced.
  const building = join(dirname(path), `.${basename(path)}.creating-${process.pid}`);
  const clean = () => { for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(building + suffix, { force: true }); };
  clean();
  try {
    await createTokenStore(building, { partitionId: IMAGE_PARTITION_ID, serial, label, soPin: image.soPin, userPin: image.userPin, kdf: image.kdf });
    const db = new Database(building, { fileMustExist: true });
    try {
      db.transaction(() => {
        db.exec(CREATE_IMAGE_TABLE);
        const put = db.prepare('INSERT INTO token_image (key, value) VALUES (?, ?)');
        put.run('kind', IMAGE_KIND);
        put.run('format_version', String(IMAGE_FORMAT_VERSION));
        put.run('created_at', new Date().toISOString());
      })();
    } finally {
      db.close();
    }
    linkSync(building, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new TokenError('NTLS_ERR_IMAGE_EXISTS', `${path} exists`, 'choose another name');
    throw error;
  } finally {
    clean();
  }
  return readImage(path);
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

export type ImageHsmOptions = Omit<HsmOptions, 'home' | 'storeFile' | 'logger'>;

/**
 * Opens the token of an image as an HSM (the same class as the home's). The image is checked
 * first (readImage); a failure of the HSM itself comes as StoreOpenError.
 */
export async function openImageHsm(path: string, options: ImageHsmOptions): Promise<{ info: ImageInfo; hsm: SoftwareHsm }> {
  const info = readImage(path);
  const hsm = await SoftwareHsm.open({ ...options, home: dirname(path), storeFile: path });
  return { info, hsm };
}

/** `<home>/devices`: where attached token images appear. */
export function devicesFolder(home: string): string {
  return join(home, 'devices');
}
