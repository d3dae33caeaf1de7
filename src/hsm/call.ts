// One call on a software session, and the rules of the software HSM's keys that only it can
// judge: a key's usage attributes and allowed mechanisms, whether a stored secret may open for
// this caller. Visibility, login and who may write what are the token model's (src/token).

import { CKA, CKO, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { Caller } from '../token/device.js';
import type { KeyMaterial } from './mechanisms/contract.js';
import type { HsmObject } from './object.js';
import type { Partition } from './partition.js';
import { checkRsaKeySize } from './policy.js';
import type { SoftwareSession } from './session.js';
import type { Vault } from './vault.js';

/** Everything a call on a session needs, resolved once at its start. */
export interface Call {
  vault: Vault;
  session: SoftwareSession;
  partition: Partition;
  role: Caller;
}

const seesPrivate = (role: Caller) => role === 'co' || role === 'cu';

/** An object of the session's partition (the model has judged that the caller sees it). */
export function objectOf(call: Call, handle: number, invalid: number = CKR.OBJECT_HANDLE_INVALID): HsmObject {
  const object = call.partition.objects.get(handle);
  if (!object) throw new Pkcs11Error(invalid);
  return object;
}

/**
 * The key for an operation: a key object whose usage attribute allows it and whose
 * CKA_ALLOWED_MECHANISMS (if any) lists the mechanism.
 */
export function usableKey(call: Call, handle: number, usage: number, mechanism: number, invalid: number = CKR.KEY_HANDLE_INVALID): HsmObject {
  const key = objectOf(call, handle, invalid);
  if (!key.isKey) throw new Pkcs11Error(invalid);
  if (!key.flag(usage)) throw new Pkcs11Error(CKR.KEY_FUNCTION_NOT_PERMITTED);
  const allowed = key.attributes.get(CKA.ALLOWED_MECHANISMS) as readonly number[] | undefined;
  if (allowed && allowed.length > 0 && !allowed.includes(mechanism)) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
  checkRsaKeySize(call.partition.row.policy, key.attributes, CKR.KEY_SIZE_RANGE);
  return key;
}

/**
 * An object's secret part in clear, for this caller. Session objects hold it in memory; a token
 * object's is sealed and opens only for a caller logged in as Crypto Officer or Crypto User (the
 * partition key may be in memory for another application: that is not this caller's login).
 */
export function secretFor(call: Call, object: HsmObject): Buffer {
  if (object.secret !== null) return object.secret;
  if (!seesPrivate(call.role)) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'a stored secret needs a login');
  return call.vault.secretOf(call.partition, object);
}

/** A stored secret this caller cannot open reads as sensitive rather than failing the whole call. */
export function secretAvailable(call: Call, object: HsmObject): boolean {
  return object.secret !== null || seesPrivate(call.role);
}

/** May this caller have a secret part sealed (a token key or private value)? The caller's own login must hold the partition key. */
export function checkCanSeal(call: Call): void {
  if (call.role !== 'co' && call.role !== 'so') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'storing a secret needs a login');
}

/** The key as the mechanisms take it. Secret and private keys need a Crypto Officer or Crypto User login. */
export function materialOf(call: Call, key: HsmObject): KeyMaterial {
  const objectClass = key.objectClass;
  const keyType = key.keyType!;
  if (objectClass === CKO.PUBLIC_KEY) {
    return { objectClass, keyType, der: key.attributes.get(CKA.PUBLIC_KEY_INFO) as Buffer };
  }
  return { objectClass, keyType, der: secretFor(call, key) };
}

/** The session may have been closed while the crypto ran: its new objects then have nowhere to go. */
export function checkStillOpen(call: Call): void {
  if (call.session.closed) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
}
