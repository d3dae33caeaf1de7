// How `ntls` ends when something fails (docs/operations.md, "Errors and exit status"): one line
// on stderr, `ntls: <message>; <hint>. [<code>]`, never a stack; with --json also
// {"ok":false,"error":{"code","message","hint"}} on stdout; the exit status says which kind.
import { userInfo } from 'node:os';
import { AdminError } from '../admin/protocol.js';
import { ConfigError } from '../config/load.js';
import { failureLine, NtlsError } from '../errors/ntls-error.js';

/** Exit statuses of `ntls` (and `ntls-client`): the same in human and JSON output. */
export const Exit = {
  Ok: 0,
  /** The operation failed or was refused (by the daemon, the HSM, the system). */
  Failed: 1,
  /** The input cannot be used: a bad argument or value, a missing, unreadable or malformed file, an invalid configuration. */
  BadInput: 2,
  /** `ntls status`: no daemon runs for the home. */
  NotRunning: 3,
} as const;

export interface Failure {
  code: string;
  message: string;
  hint?: string;
  status: number;
}

/** A failure the CLI itself finds (before or without the daemon). */
export class CliError extends NtlsError {
  constructor(code: string, message: string, readonly status: number = Exit.Failed, hint?: string) {
    super(code, message, { hint });
  }
}

let jsonOutput = false;

/** Set once the command's options are known (commander's preAction hook). */
export function setJsonOutput(on: boolean): void {
  jsonOutput = on;
}

/** Admin codes that mean the input was wrong rather than the operation failing. */
const BAD_INPUT_CODES = new Set([
  'NTLS_ERR_ADMIN_ARGUMENT', 'NTLS_ERR_BAD_HOST', 'NTLS_ERR_NOT_A_CERTIFICATE', 'NTLS_ERR_CLIENT_NAME', 'NTLS_ERR_LABEL_INVALID',
  'NTLS_ERR_FILE', 'NTLS_ERR_CONFIG', 'NTLS_ERR_HOST_REQUIRED', 'NTLS_ERR_BACKUP_FILE', 'NTLS_ERR_BACKUP_DAMAGED',
]);

/** Who runs this command, for a permission refused (a service's user is not the operator's). */
function userName(): string {
  try {
    return userInfo().username;
  } catch {
    return String(process.getuid?.() ?? '?');
  }
}

const ERRNO_TEXT: Record<string, [string, string]> = {
  EEXIST: ['is a file, not a folder', 'give a folder (or a path where one can be made)'],
  ENOTDIR: ['is not a folder (a part of the path is a file)', 'give a path made of folders'],
  EISDIR: ['is a folder, not a file', 'give a file'],
  ENOENT: ['does not exist', 'check the path'],
  EACCES: ['cannot be used: permission denied', `run as the user that owns it, or fix its permissions (and those of the folders on its path) for user ${userName()}`],
  EPERM: ['cannot be used: operation not permitted', 'run as the user that owns it, or fix its permissions'],
  EROFS: ['is on a read-only file system', 'give a writable place'],
  ENOSPC: ['cannot be written: no space left on the device', 'free some space'],
  ELOOP: ['has too many symbolic links', 'give the real path'],
  ENAMETOOLONG: ['is too long a path', 'give a shorter path'],
};

/** Any error as one failure: code, message, hint and exit status. */
export function describeFailure(error: unknown): Failure {
  if (error instanceof CliError) return { code: error.code, message: error.message, hint: error.hint, status: error.status };
  if (error instanceof ConfigError) {
    return { code: error.code, message: `${error.file}: "${error.key}": ${error.problem}`, hint: 'correct it; `ntls config show` lists every setting', status: Exit.BadInput };
  }
  if (error instanceof AdminError) {
    return { code: error.code, message: error.message, hint: error.hint, status: BAD_INPUT_CODES.has(error.code) ? Exit.BadInput : Exit.Failed };
  }
  const errno = error as NodeJS.ErrnoException;
  if (errno && typeof errno.code === 'string' && typeof errno.syscall === 'string') {
    const [what, hint] = ERRNO_TEXT[errno.code] ?? [`cannot be used (${errno.syscall}: ${errno.code})`, 'check the path and its permissions'];
    return { code: 'NTLS_ERR_FILE', message: `${errno.path ?? 'a file'} ${what}`, hint, status: Exit.BadInput };
  }
  if (error instanceof NtlsError) return { code: error.code, message: error.message, hint: error.hint, status: BAD_INPUT_CODES.has(error.code) ? Exit.BadInput : Exit.Failed };
  return { code: 'NTLS_ERR_INTERNAL', message: `unexpected failure: ${(error as Error)?.message ?? String(error)}`, hint: 'please report it with the command you ran', status: Exit.Failed };
}

/** Writes the failure (stderr line; JSON on stdout with --json) and exits with its status. */
export function exitWithFailure(failure: Failure): never {
  const { code, message, hint, status } = failure;
  if (jsonOutput) process.stdout.write(JSON.stringify({ ok: false, error: { code, message, ...(hint ? { hint } : {}) } }) + '\n');
  process.stderr.write(failureLine('ntls', code, message, hint) + '\n');
  process.exit(status);
}

export function exitWithError(error: unknown): never {
  exitWithFailure(describeFailure(error));
}

/** Shorthand for the commands: refuse with a code, a message, a hint and a status. */
export function fail(code: string, message: string, hint?: string, status: number = Exit.Failed): never {
  exitWithFailure({ code, message, hint, status });
}
