// The PINs of a partition: C_InitToken, the users' PINs, and the check behind every login.
//
// A login opens the role's credential: the PIN-derived key unwraps the partition key, which
// the partition then keeps in memory while any holder stays logged in. A wrong PIN is counted
// in the store before the call returns, so a lock survives a restart. A PIN that already
// opened the role's credential since start is recognised without the KDF (login-cache.ts).

import { randomBytes } from 'node:crypto';
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { createCredential, openCredential, type Credential } from '../store/credential.js';
import type { Role } from '../store/store.js';
import { KEY_BYTES } from '../store/seal.js';
import type { Partition } from './partition.js';
import { checkPinLength, isLocked } from './pin-policy.js';
import type { Vault } from './vault.js';

const LABEL_BYTES = 32;

/** Additional data binding a role's wrapped copy of the partition key to the partition and role. */
export function credentialAad(partitionId: number, role: Role): Buffer {
  return Buffer.from(`ntls-credential:${partitionId}:${role}`);
}

/**
 * Checks a PIN against a role's credential, counting a failure durably. Returns the partition
 * key (a fresh copy the caller owns) or throws CKR_PIN_INCORRECT / CKR_PIN_LOCKED.
 */
export async function verifyPin(vault: Vault, partition: Partition, role: Role, pin: Buffer): Promise<Buffer> {
  const known = await knownOrLocked(vault, partition, role, pin);
  if (known !== null) return known;
  // PINs the KDF must judge take turns per role: each is judged after the one before was
  // counted, so that guesses sent at once cannot pass the lock while their KDFs run.
  return oneAtATime(partition, role, () => verifyPinByKdf(vault, partition, role, pin));
}

/** The key for a PIN that already succeeded, null when the KDF must judge it; throws when there is no credential or the role is locked. */
async function knownOrLocked(vault: Vault, partition: Partition, role: Role, pin: Buffer): Promise<Buffer | null> {
  const credential: Credential | null = partition.row.credentials[role];
  if (credential === null) {
    throw new Pkcs11Error(role === 'so' ? CKR.TOKEN_NOT_RECOGNIZED : CKR.USER_PIN_NOT_INITIALIZED);
  }
  if (isLocked(vault.policy, partition.failures(role))) {
    vault.logins.forget(partition.id, role);
    // Locked by failures the store could not take: stored now if it takes them (a success on a
    // locked role keeps the count), so that the lock outlives a restart.
    if (partition.unstoredFailures(role) > 0) await vault.recordLogin(partition, role, true).catch(() => undefined);
    throw new Pkcs11Error(CKR.PIN_LOCKED);
  }
  const known = vault.logins.check(partition.id, role, credential, pin);
  return known === null ? null : withFailuresCleared(vault, partition, role, known);
}

async function verifyPinByKdf(vault: Vault, partition: Partition, role: Role, pin: Buffer): Promise<Buffer> {
  // Judged again on its turn: a lock or a right PIN may have come while it waited.
  const known = await knownOrLocked(vault, partition, role, pin);
  if (known !== null) return known;
  const credential = partition.row.credentials[role]!;
  vault.logins.kdfRuns();
  const key = await openCredential(pin, credential, credentialAad(partition.id, role));
  if (partition.row.credentials[role] !== credential) {
    // The credential changed while the KDF ran (C_InitPIN, C_SetPIN): judge against the new one.
    key?.fill(0);
    return verifyPinByKdf(vault, partition, role, pin);
  }
  if (key === null) {
    // The stored count, which other nodes add to: locked there before this try, locked here.
    const failures = await vault.recordLogin(partition, role, false);
    if (isLocked(vault.policy, failures)) vault.logins.forget(partition.id, role);
    throw new Pkcs11Error(isLocked(vault.policy, failures - 1) ? CKR.PIN_LOCKED : CKR.PIN_INCORRECT);
  }
  vault.logins.remember(partition.id, role, credential, pin, key);
  return withFailuresCleared(vault, partition, role, key);
}

/** The last PIN judgement queued for each role of a partition. */
const turns = new WeakMap<Partition, Map<Role, Promise<unknown>>>();

function oneAtATime<T>(partition: Partition, role: Role, judge: () => Promise<T>): Promise<T> {
  let roles = turns.get(partition);
  if (!roles) turns.set(partition, roles = new Map<Role, Promise<unknown>>());
  const before = roles.get(role) ?? Promise.resolve();
  const mine = before.then(judge, judge);
  const tail = mine.catch(() => undefined);
  roles.set(role, tail);
  void tail.then(() => {
    if (roles.get(role) === tail) roles.delete(role);
  });
  return mine;
}

/** A right PIN ends the run of failures (written before the call returns). */
async function withFailuresCleared(vault: Vault, partition: Partition, role: Role, key: Buffer): Promise<Buffer> {
  try {
    // Failures counted (on another node) while the KDF ran: a lock reached meanwhile holds.
    if (partition.failures(role) !== 0 && isLocked(vault.policy, await vault.recordLogin(partition, role, true))) throw new Pkcs11Error(CKR.PIN_LOCKED);
  } catch (error) {
    key.fill(0);
    throw error;
  }
  return key;
}

/**
 * C_InitToken: (re)initialises a partition; an initialised one needs its SO PIN, judged (and a
 * wrong one counted) before anything else about it, its length included.
 */
export async function initToken(vault: Vault, partition: Partition, pin: Buffer, label: string): Promise<void> {
  if (partition.sessions.size > 0) throw new Pkcs11Error(CKR.SESSION_EXISTS);
  const trimmed = label.replace(/ +$/, '');
  if (Buffer.byteLength(trimmed, 'utf8') > LABEL_BYTES) throw new Pkcs11Error(CKR.ARGUMENTS_BAD, 'label longer than 32 bytes');
  if (partition.initialized) (await verifyPin(vault, partition, 'so', pin)).fill(0);
  checkPinLength(vault.policy, pin);
  const key = randomBytes(KEY_BYTES);
  const so = await createCredential(pin, key, vault.kdf, credentialAad(partition.id, 'so'));
  key.fill(0);
  // Sessions may have opened while the KDF ran.
  if (partition.sessions.size > 0) throw new Pkcs11Error(CKR.SESSION_EXISTS);
  await vault.savePartition(partition, {
    ...partition.row, label: trimmed, initialized: true,
    credentials: { so, co: null, cu: null }, failures: { so: 0, co: 0, cu: 0 },
  }, true);
  for (const role of ['so', 'co', 'cu'] as const) partition.clearUnstoredFailures(role);
  partition.objects.clear();
  partition.forget();
  vault.logins.forget(partition.id);
}

/** C_InitPIN and the Crypto User's PIN: a new credential for the role under the partition key a login holds. */
export async function setCredential(vault: Vault, partition: Partition, role: Role, pin: Buffer): Promise<void> {
  checkPinLength(vault.policy, pin);
  const key = partition.partitionKey;
  if (key === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
  const credential = await createCredential(pin, key, vault.kdf, credentialAad(partition.id, role));
  await vault.savePartition(partition, {
    ...partition.row,
    credentials: { ...partition.row.credentials, [role]: credential },
    failures: { ...partition.row.failures, [role]: 0 },
  });
  partition.clearUnstoredFailures(role);
  vault.logins.forget(partition.id, role);
}

/** C_SetPIN: changes the PIN of `role` (the one logged in on the session, or the Crypto Officer's). */
export async function changePin(vault: Vault, partition: Partition, role: Role, oldPin: Buffer, newPin: Buffer): Promise<void> {
  checkPinLength(vault.policy, newPin);
  const key = await verifyPin(vault, partition, role, oldPin);
  try {
    const credential = await createCredential(newPin, key, vault.kdf, credentialAad(partition.id, role));
    await vault.savePartition(partition, { ...partition.row, credentials: { ...partition.row.credentials, [role]: credential } });
    vault.logins.forget(partition.id, role);
  } finally {
    key.fill(0);
  }
}
