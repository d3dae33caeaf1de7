// The NTLS identity exchange: the first bytes on a fresh TLS link, before any command.
// Each side sends one ASCII line naming itself and the identity protocol version:
//
//   client → server   "NTLS-IDENTITY/1 client <name>\n"
//   server → client   "NTLS-IDENTITY/1 server <name>\n"
//
// A peer whose first bytes are not such a line is not an NTLS client (or server).

import { NtlsError } from '../errors/ntls-error.js';

export const IDENTITY_VERSION = 1;
export const IDENTITY_MAGIC = 'NTLS-IDENTITY/';
/** Longest identity line accepted, newline included. */
export const IDENTITY_MAX_BYTES = 256;

export type IdentityRole = 'client' | 'server';

export interface Identity {
  version: number;
  role: IdentityRole;
  name: string;
}

type IdentityErrorCode = 'NTLS_ERR_NOT_NTLS' | 'NTLS_ERR_IDENTITY_TOO_LONG' | 'NTLS_ERR_IDENTITY_VERSION';

export class IdentityError extends NtlsError {
  declare readonly code: IdentityErrorCode;
  constructor(code: IdentityErrorCode, detail: string) {
    super(code, detail);
  }
}

const NAME = /^[\x21-\x7e]{1,200}$/;

export function encodeIdentity(role: IdentityRole, name: string): Buffer {
  if (!NAME.test(name)) throw new RangeError(`identity name must be 1-200 printable ASCII characters without spaces: ${JSON.stringify(name)}`);
  return Buffer.from(`${IDENTITY_MAGIC}${IDENTITY_VERSION} ${role} ${name}\n`, 'ascii');
}

export type IdentityScan =
  | { done: false }
  | { done: true; identity: Identity; rest: Buffer };

/**
 * Looks for a complete identity line at the start of `received`. Throws IdentityError as soon
 * as the bytes cannot be one (wrong magic, too long), so a non-NTLS peer is found without
 * waiting for a newline that may never come.
 */
export function scanIdentity(received: Buffer, expectedRole: IdentityRole): IdentityScan {
  const magic = Buffer.from(IDENTITY_MAGIC, 'ascii');
  const head = received.subarray(0, magic.length);
  if (!magic.subarray(0, head.length).equals(head)) throw new IdentityError('NTLS_ERR_NOT_NTLS', 'peer did not send an NTLS identity line');
  const newline = received.indexOf(0x0a);
  if (newline < 0) {
    if (received.length >= IDENTITY_MAX_BYTES) throw new IdentityError('NTLS_ERR_IDENTITY_TOO_LONG', 'identity line too long');
    return { done: false };
  }
  if (newline + 1 > IDENTITY_MAX_BYTES) throw new IdentityError('NTLS_ERR_IDENTITY_TOO_LONG', 'identity line too long');
  const line = received.subarray(magic.length, newline).toString('ascii');
  const match = /^(\d+) (client|server) (\S+)$/.exec(line);
  if (!match || match[2] !== expectedRole || !NAME.test(match[3]!)) {
    throw new IdentityError('NTLS_ERR_NOT_NTLS', 'malformed NTLS identity line');
  }
  const version = Number(match[1]);
  if (version !== IDENTITY_VERSION) throw new IdentityError('NTLS_ERR_IDENTITY_VERSION', `identity version ${version} is not supported`);
  return { done: true, identity: { version, role: expectedRole, name: match[3]! }, rest: received.subarray(newline + 1) };
}
