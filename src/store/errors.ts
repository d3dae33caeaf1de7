// The store's failure kinds: the container list could not be read at start (StoreOpenError), and
// a record that fails its integrity check when read (StoreIntegrityError, integrity.ts). Both
// carry the guide's return code, LUNA_RET_DEVICE_ERROR (CKR_DEVICE_ERROR to a PKCS#11 caller).

import { NtlsError } from '../errors/ntls-error.js';

export class StoreOpenError extends NtlsError {
  declare readonly code: 'LUNA_RET_DEVICE_ERROR';
  constructor(readonly path: string, readonly reason: string, options?: { cause?: unknown; advice?: string }) {
    super('LUNA_RET_DEVICE_ERROR', `HSM store ${path} cannot be used: ${reason}. ${options?.advice ?? 'The file was left as it is; restore it from a backup or move it away to start with an empty HSM.'}`, { cause: options?.cause });
  }
}

export { StoreIntegrityError, type CorruptRow } from './integrity.js';

/** A write refused because the store has no room: SQLite's SQLITE_FULL, PostgreSQL's disk_full (53100). */
export function isStoreFull(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === 'SQLITE_FULL' || code === '53100';
}
