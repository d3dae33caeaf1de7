// The one base of ntls's errors: a stable code (the guide's RC_ and LUNA_RET_ names, PKCS#11's
// CKR_ names, or ours, NTLS_ERR_*), what to do about it (the hint), and what caused it. Kinds of
// error extend it and narrow the code; callers test `instanceof` and the code, never the text.
export interface NtlsErrorOptions {
  /** What the user can do about it, in a few words. */
  hint?: string;
  cause?: unknown;
}

export class NtlsError extends Error {
  readonly hint: string | undefined;

  constructor(readonly code: string, message: string, options: NtlsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
  }
}

// eslint-disable-next-line no-control-regex -- control characters are what this finds
const CONTROL = /[\x00-\x1f\x7f-\x9f]/g;

/**
 * The one-line form of a failure both CLIs print on stderr: `<program>: <message>; <hint>. [<code>]`.
 * A message repeats what was typed (a client name): its control characters are shown as \xNN, as
 * src/log/printable.ts does for the log, so an escape sequence never reaches the terminal and the
 * failure stays one line.
 */
export function failureLine(program: string, code: string, message: string, hint?: string): string {
  const line = `${message.replace(/\.$/, '')}${hint ? `; ${hint.replace(/\.$/, '')}` : ''}`;
  return `${program}: ${line.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}. [${code}]`;
}
