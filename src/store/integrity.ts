// Integrity of the store's rows. Every partition and object row carries an HMAC-SHA256 of its
// clear fields under the store's integrity key (a random key in the meta table), so a record
// changed on disk by anything but the store (a flipped bit, a torn or stray write, an edit by a
// tool) is found when it is read, instead of being served: a key's attributes (its type, its
// public values, what it may be used for), a partition's name, label, credentials, failure counts or policy.
//
// A sealed secret is not in the MAC: it is AES-256-GCM under the partition key with the
// partition and object as additional data (seal.ts), checked each time it is unsealed, which a
// bit flip cannot pass and no one without the partition's credentials can forge; a damaged one
// fails that object alone (CKR_DEVICE_ERROR), not the whole store. The MAC covers whether the
// row has one. The integrity key lives in the file, so the MAC detects corruption, not a
// deliberate edit by someone who can write the file and read this code: file permissions guard
// that.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { NtlsError } from '../errors/ntls-error.js';

export const INTEGRITY_KEY_BYTES = 32;
/** meta key of the integrity key (hex) and of the scheme's name. */
export const INTEGRITY_KEY = 'integrity_key';
export const INTEGRITY_SCHEME = 'integrity';
export const INTEGRITY_SCHEME_NAME = 'hmac-sha256-rows-v1';

export function newIntegrityKey(): Buffer {
  return randomBytes(INTEGRITY_KEY_BYTES);
}

/** A store row whose MAC does not match its fields: found on read, never served. */
export class StoreIntegrityError extends NtlsError {
  /** The guide's return code for an HSM that cannot give its containers; CKR_DEVICE_ERROR to a PKCS#11 caller. */
  declare readonly code: 'LUNA_RET_DEVICE_ERROR';
  readonly rv = 0x30;
  constructor(readonly path: string, readonly rows: readonly CorruptRow[]) {
    super('LUNA_RET_DEVICE_ERROR',
      `${rows.length} record(s) of ${path} fail their integrity check (${rows.slice(0, 5).map((r) => `${r.table} ${r.id}`).join(', ')}${rows.length > 5 ? ', ...' : ''})`,
      { hint: 'restore the store from a backup; the file was left as it is' });
  }
}

export interface CorruptRow {
  table: 'partitions' | 'objects';
  id: number;
}

type Field = Buffer | string | number | null;

/** Length-prefixed fields under a domain label: no two rows of different fields encode alike. */
function mac(key: Buffer, domain: string, fields: readonly Field[]): Buffer {
  const h = createHmac('sha256', key);
  h.update(`${domain}\0`);
  for (const field of fields) {
    if (field === null) {
      h.update(Buffer.from([0]));
      continue;
    }
    const bytes = typeof field === 'number' ? Buffer.from(String(field)) : Buffer.isBuffer(field) ? field : Buffer.from(field, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = typeof field === 'number' ? 1 : Buffer.isBuffer(field) ? 2 : 3;
    head.writeUInt32BE(bytes.length, 1);
    h.update(head);
    h.update(bytes);
  }
  return h.digest();
}

export interface PartitionFields {
  id: number; slot_id: number; serial: string; label: string; initialized: number;
  /** The operator's name; absent in a store made before partitions had one. */
  name?: string | null;
  so_credential: string | null; co_credential: string | null; cu_credential: string | null;
  so_failures: number; co_failures: number; cu_failures: number;
  /** The partition's policy (JSON); absent or null while it is the default. */
  policy?: string | null;
}

export interface ObjectFields {
  id: number; partition_id: number; attributes: Buffer; sealed: Buffer | null;
}

export function partitionMac(key: Buffer, p: PartitionFields): Buffer {
  return mac(key, 'ntls-partition-row-v1', [
    p.id, p.slot_id, p.serial, p.name ?? null, p.label, p.initialized, p.so_credential, p.co_credential, p.cu_credential,
    p.so_failures, p.co_failures, p.cu_failures,
    // A default policy adds nothing: rows written before policies existed keep their MAC.
    ...(p.policy === undefined || p.policy === null ? [] : [p.policy]),
  ]);
}

export function objectMac(key: Buffer, o: ObjectFields): Buffer {
  return mac(key, 'ntls-object-row-v1', [o.id, o.partition_id, o.attributes, o.sealed === null ? 0 : 1]);
}

export function macMatches(expected: Buffer, stored: Buffer | null): boolean {
  return stored !== null && stored.length === expected.length && timingSafeEqual(expected, stored);
}
