// Who is logged in: PKCS#11's two users plus the Crypto User, and the session states they give.
//
// Roles on a partition:
//   so  Partition Security Officer (CKU_SO): initialises the token and the Crypto Officer PIN,
//       manages public objects; cannot use keys.
//   co  Crypto Officer (CKU_USER): the normal PKCS#11 user; creates, uses and destroys keys.
//   cu  Crypto User (CKU_CRYPTO_USER, vendor-defined): uses existing keys (sign, verify,
//       encrypt, decrypt), sees private objects, but creates, changes, destroys and wraps
//       nothing (CKR_ACTION_PROHIBITED).

import { CKR, CKS, CKU, Pkcs11Error } from '../pkcs11/constants.js';

export type Role = 'so' | 'co' | 'cu';

/** Vendor user type for the Crypto User (the value Luna uses for it). */
export const CKU_CRYPTO_USER = 0x80000001;

export function roleOfUserType(userType: number): Role {
  switch (userType) {
    case CKU.SO: return 'so';
    case CKU.USER: return 'co';
    case CKU_CRYPTO_USER: return 'cu';
    default: throw new Pkcs11Error(CKR.USER_TYPE_INVALID);
  }
}

export function sessionState(readWrite: boolean, role: Role | null): number {
  if (role === 'so') return CKS.RW_SO_FUNCTIONS;
  const user = role === 'co' || role === 'cu';
  if (readWrite) return user ? CKS.RW_USER_FUNCTIONS : CKS.RW_PUBLIC_SESSION;
  return user ? CKS.RO_USER_FUNCTIONS : CKS.RO_PUBLIC_SESSION;
}

/** Private objects are visible to the users who may use keys: Crypto Officer and Crypto User. */
export function seesPrivateObjects(role: Role | null): boolean {
  return role === 'co' || role === 'cu';
}
