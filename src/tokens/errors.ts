// A refused request on a token image or a virtual token: `code` is stable (tests and scripts
// read it), `message` names the problem, `hint` the fix. The admin channel passes all three on.

export type TokenErrorCode =
  | 'NTLS_ERR_IMAGE_DAMAGED' | 'NTLS_ERR_IMAGE_FOREIGN' | 'NTLS_ERR_IMAGE_VERSION' | 'NTLS_ERR_IMAGE_BUSY'
  | 'NTLS_ERR_IMAGE_UNREADABLE' | 'NTLS_ERR_IMAGE_EXISTS' | 'NTLS_ERR_IMAGE_ARGUMENT'
  | 'NTLS_ERR_UNKNOWN_TOKEN' | 'NTLS_ERR_TOKEN_AMBIGUOUS' | 'NTLS_ERR_TOKEN_DEPLOYED' | 'NTLS_ERR_TOKEN_NOT_DEPLOYED'
  | 'NTLS_ERR_TOKEN_IN_TABLE' | 'NTLS_ERR_TOKEN_START' | 'NTLS_ERR_TOKEN_BUSY' | 'NTLS_ERR_DEPLOYED_LIST'
  | 'NTLS_ERR_BACKUP_INTERRUPTED' | 'NTLS_ERR_RESTORE_MODE';

export class TokenError extends Error {
  constructor(readonly code: TokenErrorCode, message: string, readonly hint?: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TokenError';
  }
}
