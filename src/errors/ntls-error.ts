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

/** The one-line form of a failure both CLIs print on stderr: `<program>: <message>; <hint>. [<code>]`. */
export function failureLine(program: string, code: string, message: string, hint?: string): string {
  return `${program}: ${message.replace(/\.$/, '')}${hint ? `; ${hint.replace(/\.$/, '')}` : ''}. [${code}]`;
}
