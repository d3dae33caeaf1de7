// The admin channel: a unix stream socket in the home (owner-only), one JSON object per line.
//   request   {"id": 1, "command": "client.list", "args": {...}}
//   response  {"id": 1, "ok": true, "result": ...}  |  {"id": 1, "ok": false, "error": {"code", "message", "hint"}}
import { NtlsError } from '../errors/ntls-error.js';

export const ADMIN_SOCKET = 'admin.sock';
/** Largest request line accepted. */
export const ADMIN_MAX_LINE = 1024 * 1024;

export interface AdminRequest {
  id: number;
  command: string;
  args: Record<string, unknown>;
  /** Who asks, as the CLI says ({uid, user}): for the audit trail (the socket is the daemon user's alone). */
  who?: unknown;
}

export interface AdminFailure {
  code: string;
  message: string;
  hint?: string;
}

export type AdminResponse =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: AdminFailure };

/** A refused admin request: `code` is stable, `message` names the problem, `hint` the fix. */
export class AdminError extends NtlsError {
  constructor(code: string, message: string, hint?: string) {
    super(code, message, { hint });
  }

  toFailure(): AdminFailure {
    return { code: this.code, message: this.message, hint: this.hint };
  }
}
