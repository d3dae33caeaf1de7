// Failures a user can cause with the log tools: each one line naming the problem and the fix,
// with a stable code for tests and scripts (exit status 2).

export type LogToolErrorCode =
  | 'ERR_LOG_FILE_MISSING'
  | 'ERR_LOG_IS_DIRECTORY'
  | 'ERR_LOG_UNREADABLE'
  | 'ERR_LOG_BAD_LEVEL'
  | 'ERR_LOG_BAD_CODE'
  | 'ERR_LOG_BAD_COUNT'
  | 'ERR_LOG_BAD_ID'
  | 'ERR_LOG_BAD_DURATION'
  | 'ERR_LOG_BAD_USAGE';

export class LogToolError extends Error {
  readonly exitStatus = 2;
  constructor(readonly code: LogToolErrorCode, message: string) {
    super(message);
    this.name = 'LogToolError';
  }
}
