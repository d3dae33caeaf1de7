// The partition PIN policy: length bounds and the bad-login count that locks a role.

import { CKF, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { Role } from '../store/hsm-store.js';

export interface PinPolicy {
  /** Shortest PIN accepted, in bytes (ulMinPinLen). */
  minLength: number;
  /** Longest PIN accepted, in bytes (ulMaxPinLen). */
  maxLength: number;
  /** Consecutive bad logins after which the role is locked (CKR_PIN_LOCKED). */
  maxFailedLogins: number;
}

export const DEFAULT_PIN_POLICY: PinPolicy = { minLength: 7, maxLength: 255, maxFailedLogins: 10 };

export function pinBytes(pin: string | Buffer): Buffer {
  return typeof pin === 'string' ? Buffer.from(pin, 'utf8') : pin;
}

export function checkPinLength(policy: PinPolicy, pin: Buffer): void {
  if (pin.length < policy.minLength || pin.length > policy.maxLength) throw new Pkcs11Error(CKR.PIN_LEN_RANGE);
}

export function isLocked(policy: PinPolicy, failures: number): boolean {
  return failures >= policy.maxFailedLogins;
}

/** CK_TOKEN_INFO flags for a role's failure count (the Crypto User has no flags of its own). */
export function pinFlags(policy: PinPolicy, role: Role, failures: number): number {
  if (role === 'cu' || failures === 0) return 0;
  const so = role === 'so';
  if (isLocked(policy, failures)) return so ? CKF.SO_PIN_LOCKED : CKF.USER_PIN_LOCKED;
  let flags = so ? CKF.SO_PIN_COUNT_LOW : CKF.USER_PIN_COUNT_LOW;
  if (policy.maxFailedLogins - failures === 1) flags |= so ? CKF.SO_PIN_FINAL_TRY : CKF.USER_PIN_FINAL_TRY;
  return flags;
}
