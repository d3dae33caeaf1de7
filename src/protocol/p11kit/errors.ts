// Codec failures as values. Every failure has a stable `code` (what tests and callers check),
// the CKR_ value a p11-kit server answers for it, and whether p11-kit would instead drop the
// connection (p11-kit/rpc-server.c: a call id or signature it cannot parse ends the session;
// a malformed argument is answered with an ERROR message carrying CKR_DEVICE_ERROR).

import { NtlsError } from '../../errors/ntls-error.js';
import { CKR } from '../../pkcs11/constants.js';

export const P11KitErrorCode = {
  /** A frame header declares more options or body bytes than the configured maximum. */
  FrameTooLarge: 'NTLS_ERR_P11KIT_FRAME_TOO_LARGE',
  /** The input ended before a value it announced. */
  Truncated: 'NTLS_ERR_P11KIT_TRUNCATED',
  /** A byte-array or count larger than the bytes that remain, or at/over p11-kit's 0x7fffffff cap. */
  BadLength: 'NTLS_ERR_P11KIT_BAD_LENGTH',
  /** The call id is outside the call table (or ERROR used as a request). */
  BadCallId: 'NTLS_ERR_P11KIT_BAD_CALL_ID',
  /** The signature string does not match the call table. */
  SignatureMismatch: 'NTLS_ERR_P11KIT_SIGNATURE_MISMATCH',
  /** Bytes left over after the last argument of the signature. */
  TrailingData: 'NTLS_ERR_P11KIT_TRAILING_DATA',
  /** A value whose encoding is well formed but not acceptable (bad date length, IV length, ...). */
  BadValue: 'NTLS_ERR_P11KIT_BAD_VALUE',
  /** A CK_ULONG beyond what a JavaScript number holds exactly (other than ~0). */
  UlongRange: 'NTLS_ERR_P11KIT_ULONG_RANGE',
  /** An attribute array nested inside an attribute array nested inside an attribute array. */
  NestingTooDeep: 'NTLS_ERR_P11KIT_NESTING_TOO_DEEP',
  /** A template (or a template inside one) of more attributes than a call may carry. */
  TooManyAttributes: 'NTLS_ERR_P11KIT_TOO_MANY_ATTRIBUTES',
  /** C_Initialize without the PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1 handshake. */
  BadHandshake: 'NTLS_ERR_P11KIT_BAD_HANDSHAKE',
  /** A response that answers another call than the one asked (client side). */
  CallMismatch: 'NTLS_ERR_P11KIT_CALL_MISMATCH',
  /** A response frame header with call code 0 ("perhaps wrong protocol", rpc-transport.c). */
  BadHeader: 'NTLS_ERR_P11KIT_BAD_HEADER',
  /** The encoder was given a value it cannot put on the wire. */
  Unencodable: 'NTLS_ERR_P11KIT_UNENCODABLE',
} as const;
export type P11KitErrorCodeValue = (typeof P11KitErrorCode)[keyof typeof P11KitErrorCode];

export class P11KitCodecError extends NtlsError {
  declare readonly code: P11KitErrorCodeValue;
  /** The CKR_ a p11-kit server puts in its ERROR answer for this failure. */
  readonly rv: number;
  /** True when p11-kit's server closes the connection instead of answering. */
  readonly fatal: boolean;
  /** Offset in the body (or stream) where the failure was found, when known. */
  readonly offset: number;

  constructor(code: P11KitErrorCodeValue, detail: string, options: { rv?: number; fatal?: boolean; offset?: number } = {}) {
    super(code, `${code}: ${detail}`);
    this.rv = options.rv ?? CKR.DEVICE_ERROR;
    this.fatal = options.fatal ?? false;
    this.offset = options.offset ?? -1;
  }
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: P11KitCodecError };

export function ok<T>(value: T): Result<T> {
  return { ok: true, value };
}

export function fail<T>(error: P11KitCodecError): Result<T> {
  return { ok: false, error };
}
