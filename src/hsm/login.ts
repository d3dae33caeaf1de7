// C_InitToken, C_InitPIN, C_SetPIN, C_Login, C_Logout, and the Crypto User's PIN.
//
// A login opens the role's credential: the PIN-derived key unwraps the partition key, which
// the partition then keeps in memory while any application stays logged in. A wrong PIN is
// counted in the store before the call returns, so a lock survives a restart.

import { CKR, CKU, Pkcs11Error } from '../pkcs11/constants.js';
import { createCredential, openCredential, type Credential } from '../store/credential.js';
import { KEY_BYTES } from '../store/seal.js';
import { randomBytes } from 'node:crypto';
import type { Hsm } from './hsm.js';
import type { HsmApplication } from './application.js';
import type { Partition } from './partition.js';
import type { Session } from './session.js';
import { checkPinLength, isLocked, pinBytes } from './pin-policy.js';
import { roleOfUserType, type Role } from './roles.js';

export type Pin = string | Buffer;

/** Additional data binding a role's wrapped copy of the partition key to the partition and role. */
export function credentialAad(partitionId: number, role: Role): Buffer {
  return Buffer.from(`ntls-credential:${partitionId}:${role}`);
}

/**
 * Checks a PIN against a role's credential, counting a failure durably. Returns the partition
 * key (a fresh copy the caller owns) or throws CKR_PIN_INCORRECT / CKR_PIN_LOCKED.
 */
async function verify(hsm: Hsm, partition: Partition, role: Role, pin: Buffer): Promise<Buffer> {
  const credential: Credential | null = partition.row.credentials[role];
  if (credential === null) {
    throw new Pkcs11Error(role === 'so' ? CKR.TOKEN_NOT_RECOGNIZED : CKR.USER_PIN_NOT_INITIALIZED);
  }
  if (isLocked(hsm.policy, partition.row.failures[role])) throw new Pkcs11Error(CKR.PIN_LOCKED);
  const key = await openCredential(pin, credential, credentialAad(partition.id, role));
  if (partition.row.credentials[role] !== credential) {
    // The credential changed while the KDF ran (C_InitPIN, C_SetPIN): judge against the new one.
    key?.fill(0);
    return verify(hsm, partition, role, pin);
  }
  if (key === null) {
    hsm.saveFailures(partition, role, partition.row.failures[role] + 1);
    throw new Pkcs11Error(CKR.PIN_INCORRECT);
  }
  try {
    if (partition.row.failures[role] !== 0) hsm.saveFailures(partition, role, 0);
  } catch (error) {
    key.fill(0);
    throw error;
  }
  return key;
}

/**
 * The partition key for an administrator's request made outside a session (backup, restore):
 * the PIN is judged, and a wrong one counted, as at C_Login. The caller wipes the key.
 */
export function partitionKeyOf(hsm: Hsm, partition: Partition, role: Role, pin: Pin): Promise<Buffer> {
  return verify(hsm, partition, role, pinBytes(pin));
}

/** C_InitToken: (re)initialises a partition; an initialised one needs its SO PIN. */
export async function initToken(hsm: Hsm, slotId: number, soPin: Pin, label: string): Promise<void> {
  const partition = hsm.partition(slotId);
  if (hsm.sessionsOn(partition) > 0) throw new Pkcs11Error(CKR.SESSION_EXISTS);
  const pin = pinBytes(soPin);
  checkPinLength(hsm.policy, pin);
  const trimmed = label.replace(/ +$/, '');
  if (Buffer.byteLength(trimmed, 'utf8') > 32) throw new Pkcs11Error(CKR.ARGUMENTS_BAD, 'label longer than 32 bytes');
  if (partition.initialized) (await verify(hsm, partition, 'so', pin)).fill(0);
  const key = randomBytes(KEY_BYTES);
  const so = await createCredential(pin, key, hsm.kdf, credentialAad(partition.id, 'so'));
  key.fill(0);
  // Sessions may have opened while the KDF ran.
  if (hsm.sessionsOn(partition) > 0) throw new Pkcs11Error(CKR.SESSION_EXISTS);
  hsm.savePartition(partition, {
    ...partition.row, label: trimmed, initialized: true,
    credentials: { so, co: null, cu: null }, failures: { so: 0, co: 0, cu: 0 },
  }, true);
  partition.objects.clear();
  partition.forget();
}

export async function login(hsm: Hsm, app: HsmApplication, session: Session, userType: number, userPin: Pin): Promise<void> {
  const partition = session.partition;
  const current = app.roleOn(partition);
  if (userType === CKU.CONTEXT_SPECIFIC) {
    // No key here has CKA_ALWAYS_AUTHENTICATE, so no operation ever waits for this login.
    if (current === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
    throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED);
  }
  const role = roleOfUserType(userType);
  const check = () => {
    const now = app.roleOn(partition);
    if (now === role) throw new Pkcs11Error(CKR.USER_ALREADY_LOGGED_IN);
    if (now !== null) throw new Pkcs11Error(CKR.USER_ANOTHER_ALREADY_LOGGED_IN);
    if (role === 'so' && app.hasReadOnlySession(partition)) throw new Pkcs11Error(CKR.SESSION_READ_ONLY_EXISTS);
  };
  check();
  const key = await verify(hsm, partition, role, pinBytes(userPin));
  try {
    check();
    if (!app.owns(session)) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
  } catch (error) {
    key.fill(0);
    throw error;
  }
  partition.hold(app.id, key);
  app.setRole(partition, role);
}

export function logout(app: HsmApplication, session: Session): void {
  if (app.roleOn(session.partition) === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
  app.clearRole(session.partition);
}

/** C_InitPIN: the SO sets the Crypto Officer's PIN (and so unlocks a locked CO). */
export async function initPin(hsm: Hsm, app: HsmApplication, session: Session, userPin: Pin): Promise<void> {
  if (app.roleOn(session.partition) !== 'so') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
  if (!session.readWrite) throw new Pkcs11Error(CKR.SESSION_READ_ONLY);
  await setCredential(hsm, session.partition, 'co', userPin);
}

/**
 * Vendor call: sets the Crypto User's PIN. Allowed to the SO and to the Crypto Officer, in a
 * read-write session. The Crypto User then logs in with user type CKU_CRYPTO_USER.
 */
export async function initCryptoUserPin(hsm: Hsm, app: HsmApplication, session: Session, userPin: Pin): Promise<void> {
  const role = app.roleOn(session.partition);
  if (role !== 'so' && role !== 'co') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
  if (!session.readWrite) throw new Pkcs11Error(CKR.SESSION_READ_ONLY);
  await setCredential(hsm, session.partition, 'cu', userPin);
}

async function setCredential(hsm: Hsm, partition: Partition, role: Role, userPin: Pin): Promise<void> {
  const pin = pinBytes(userPin);
  checkPinLength(hsm.policy, pin);
  const key = partition.partitionKey;
  if (key === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
  const credential = await createCredential(pin, key, hsm.kdf, credentialAad(partition.id, role));
  hsm.savePartition(partition, {
    ...partition.row,
    credentials: { ...partition.row.credentials, [role]: credential },
    failures: { ...partition.row.failures, [role]: 0 },
  });
}

/** C_SetPIN: changes the PIN of the role logged in on this session, or the CO's when none is. */
export async function setPin(hsm: Hsm, app: HsmApplication, session: Session, oldPin: Pin, newPin: Pin): Promise<void> {
  if (!session.readWrite) throw new Pkcs11Error(CKR.SESSION_READ_ONLY);
  const partition = session.partition;
  const role = app.roleOn(partition) ?? 'co';
  const fresh = pinBytes(newPin);
  checkPinLength(hsm.policy, fresh);
  const key = await verify(hsm, partition, role, pinBytes(oldPin));
  try {
    const credential = await createCredential(fresh, key, hsm.kdf, credentialAad(partition.id, role));
    hsm.savePartition(partition, { ...partition.row, credentials: { ...partition.row.credentials, [role]: credential } });
  } finally {
    key.fill(0);
  }
}
