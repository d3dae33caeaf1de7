// Failures a user can cause with the log tools: each one line naming the problem and the fix,
// with a stable code for tests and scripts (exit status 2).
import { NtlsError } from '../../errors/ntls-error.js';

export type LogToolErrorCode =
  | 'NTLS_ERR_LOG_FILE_MISSING'
  | 'NTLS_ERR_LOG_IS_DIRECTORY'
  | 'NTLS_ERR_LOG_UNREADABLE'
  | 'NTLS_ERR_LOG_BAD_LEVEL'
  | 'NTLS_ERR_LOG_BAD_CODE'
  | 'NTLS_ERR_LOG_BAD_COUNT'
  | 'NTLS_ERR_LOG_BAD_ID'
  | 'NTLS_ERR_LOG_BAD_DURATION'
  | 'NTLS_ERR_LOG_BAD_USAGE';

export class LogToolError extends NtlsError {
  readonly exitStatus = 2;
  declare readonly code: LogToolErrorCode;
  constructor(code: LogToolErrorCode, message: string) {
    super(code, message);
  }
}
