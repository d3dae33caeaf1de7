// A refused request on a token image or a virtual token: `code` is stable (tests and scripts
// read it), `message` names the problem, `hint` the fix. The admin channel passes all three on.

import { NtlsError } from '../errors/ntls-error.js';

export type TokenErrorCode =
  | 'NTLS_ERR_IMAGE_DAMAGED' | 'NTLS_ERR_IMAGE_FOREIGN' | 'NTLS_ERR_IMAGE_VERSION' | 'NTLS_ERR_IMAGE_BUSY'
  | 'NTLS_ERR_IMAGE_UNREADABLE' | 'NTLS_ERR_IMAGE_EXISTS' | 'NTLS_ERR_IMAGE_ARGUMENT'
  | 'NTLS_ERR_UNKNOWN_TOKEN' | 'NTLS_ERR_TOKEN_AMBIGUOUS' | 'NTLS_ERR_TOKEN_DEPLOYED' | 'NTLS_ERR_TOKEN_NOT_DEPLOYED'
  | 'NTLS_ERR_TOKEN_IN_TABLE' | 'NTLS_ERR_TOKEN_START' | 'NTLS_ERR_TOKEN_BUSY' | 'NTLS_ERR_DEPLOYED_LIST'
  | 'NTLS_ERR_BACKUP_INTERRUPTED' | 'NTLS_ERR_RESTORE_MODE';

export class TokenError extends NtlsError {
  declare readonly code: TokenErrorCode;
  constructor(code: TokenErrorCode, message: string, hint?: string, options?: { cause?: unknown }) {
    super(code, message, { hint, cause: options?.cause });
  }
}
