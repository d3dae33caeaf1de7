// The access rules of one call: which objects the caller sees, who may write what, who may use
// keys. Every call module asks here; none decides on its own.

import { CKA, CKO, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { Hsm } from './hsm.js';
import type { HsmApplication } from './application.js';
import type { HsmObject } from './object.js';
import type { Partition } from './partition.js';
import { seesPrivateObjects, type Role } from './roles.js';
import type { Session } from './session.js';
import type { KeyMaterial } from './mechanisms/contract.js';

/** Everything a call on a session needs, resolved once at its start. */
export interface Call {
  hsm: Hsm;
  app: HsmApplication;
  session: Session;
  partition: Partition;
  role: Role | null;
}

/** Token objects of the partition and this application's session objects; private ones only to CO and CU. */
export function isVisible(call: Call, object: HsmObject): boolean {
  if (object.owner !== null && object.owner.app !== call.app.id) return false;
  return !object.isPrivate || seesPrivateObjects(call.role);
}

export function visibleObject(call: Call, handle: number, invalid: number = CKR.OBJECT_HANDLE_INVALID): HsmObject {
  const object = call.partition.objects.get(handle);
  if (!object || !isVisible(call, object)) throw new Pkcs11Error(invalid);
  return object;
}

/**
 * May this call create, change or destroy an object with these properties? The Crypto User
 * may not change anything; a token object needs a read-write session; a private object needs
 * the Crypto Officer.
 */
export function checkWrite(call: Call, token: boolean, isPrivate: boolean): void {
  if (call.role === 'cu') throw new Pkcs11Error(CKR.ACTION_PROHIBITED, 'the Crypto User cannot create, change or destroy objects');
  if (token && !call.session.readWrite) throw new Pkcs11Error(CKR.SESSION_READ_ONLY);
  if (isPrivate && call.role !== 'co') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
}

/** Key use (sign, encrypt, wrap ...) is for the Crypto Officer, the Crypto User, and public sessions on public keys; never the SO. */
export function checkKeyUser(call: Call): void {
  if (call.role === 'so') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'the SO cannot use keys');
}

/**
 * The key for an operation: a visible key object whose usage attribute allows it and whose
 * CKA_ALLOWED_MECHANISMS (if any) lists the mechanism.
 */
export function usableKey(call: Call, handle: number, usage: number, mechanism: number, invalid: number = CKR.KEY_HANDLE_INVALID): HsmObject {
  checkKeyUser(call);
  const key = visibleObject(call, handle, invalid);
  if (!key.isKey) throw new Pkcs11Error(invalid);
  if (!key.flag(usage)) throw new Pkcs11Error(CKR.KEY_FUNCTION_NOT_PERMITTED);
  const allowed = key.attributes.get(CKA.ALLOWED_MECHANISMS) as readonly number[] | undefined;
  if (allowed && allowed.length > 0 && !allowed.includes(mechanism)) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
  return key;
}

/**
 * An object's secret part in clear, for this caller. Session objects hold it in memory; a token
 * object's is sealed and opens only for a caller logged in as Crypto Officer or Crypto User (the
 * partition key may be in memory for another application: that is not this caller's login).
 */
export function secretFor(call: Call, object: HsmObject): Buffer {
  if (object.secret !== null) return object.secret;
  if (!seesPrivateObjects(call.role)) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'a stored secret needs a login');
  return call.hsm.secretOf(call.partition, object);
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
