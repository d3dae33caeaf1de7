// The store's one failure kind the service cares about at start: the container list could not
// be read. It carries the guide's return code so the caller logs and refuses to start.

import { NtlsError } from '../errors/ntls-error.js';

export class StoreOpenError extends NtlsError {
  declare readonly code: 'LUNA_RET_DEVICE_ERROR';
  constructor(readonly path: string, readonly reason: string, options?: { cause?: unknown }) {
    super('LUNA_RET_DEVICE_ERROR', `HSM store ${path} cannot be used: ${reason}. The file was left as it is; restore it from a backup or move it away to start with an empty HSM.`, { cause: options?.cause });
  }
}
