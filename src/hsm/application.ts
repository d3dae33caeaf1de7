// One client application's view of the HSM: the PKCS#11 calls, by their C_ names. PKCS#11
// keeps login state per application per token, and sessions and session objects belong to the
// application that opened them; so each client connection (or NTLS application ID) gets its own
// HsmApplication, and a handle from another application is CKR_SESSION_HANDLE_INVALID here.
//
// Calls taking a session are serialised per session and return Promises; failures are
// Pkcs11Error with the CKR_ code in `.rv`. Calls returning bytes take an optional capacity:
// omitted = any length, null = length query, a number = the caller's buffer size (see output.ts).

import type { TokenApplication } from './backend.js';
import { CKF, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import type { Template } from './attributes.js';
import type { Call } from './access.js';
import type { Hsm, LibraryInfo, SlotInfo, TokenInfo } from './hsm.js';
import type { MechanismInfo } from './mechanisms/contract.js';
import type { Partition } from './partition.js';
import { Session } from './session.js';
import { sessionState, type Role } from './roles.js';
import type { Capacity } from './output.js';
import * as login from './login.js';
import * as objects from './object-calls.js';
import * as crypto from './crypto-calls.js';
import * as keys from './key-calls.js';

/** Whatever fails inside a call reaches the caller as a Pkcs11Error; an unexpected one as CKR_GENERAL_ERROR. */
function asPkcs11Error(error: unknown): Pkcs11Error {
  if (error instanceof Pkcs11Error) return error;
  const wrapped = new Pkcs11Error(CKR.GENERAL_ERROR, error instanceof Error ? error.message : String(error));
  Object.defineProperty(wrapped, 'cause', { value: error });
  return wrapped;
}

export interface SessionInfo {
  slotID: number;
  state: number;
  flags: number;
  deviceError: number;
}

export class HsmApplication implements TokenApplication {
  private readonly sessions = new Map<number, Session>();
  private readonly roles = new Map<Partition, Role>();
  private finalized = false;

  constructor(private readonly hsm: Hsm, readonly id: string) {}

  // --- State the call modules ask about -------------------------------------------------------

  roleOn(partition: Partition): Role | null {
    return this.roles.get(partition) ?? null;
  }

  setRole(partition: Partition, role: Role): void {
    this.roles.set(partition, role);
  }

  /** Logs the application out of a partition: its private session objects go, key operations end. */
  clearRole(partition: Partition): void {
    if (!this.roles.delete(partition)) return;
    partition.release(this.id);
    for (const [handle, object] of partition.objects) {
      if (object.owner?.app === this.id && object.isPrivate) partition.objects.delete(handle);
    }
    for (const session of this.sessions.values()) {
      if (session.partition !== partition) continue;
      session.sign = session.verify = session.encrypt = session.decrypt = null;
      session.wrap.pending = null;
    }
  }

  owns(session: Session): boolean {
    return this.sessions.get(session.handle) === session;
  }

  hasReadOnlySession(partition: Partition): boolean {
    for (const s of this.sessions.values()) if (s.partition === partition && !s.readWrite) return true;
    return false;
  }

  /** The partition was deleted by the administrator: its sessions end. */
  dropPartition(partition: Partition): void {
    for (const session of [...this.sessions.values()]) if (session.partition === partition) this.endSession(session);
    this.roles.delete(partition);
  }

  /**
   * The application is gone (connection closed, C_Finalize): every session closes and the HSM
   * forgets this view. Opening a session on it again makes the HSM track it again.
   */
  finalize(): void {
    for (const session of [...this.sessions.values()]) this.endSession(session);
    this.finalized = true;
    this.hsm.dropApplication(this.id);
  }

  private endSession(session: Session): void {
    session.cancelOperations();
    const partition = session.partition;
    for (const [handle, object] of partition.objects) {
      if (object.owner?.app === this.id && object.owner.session === session.handle) partition.objects.delete(handle);
    }
    this.sessions.delete(session.handle);
    partition.sessions.delete(session);
    // Closing an application's last session on a token logs it out of that token.
    if (![...this.sessions.values()].some((s) => s.partition === partition)) this.clearRole(partition);
  }

  private resolve(handle: number): Call {
    const session = this.sessions.get(handle);
    if (!session) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
    return { hsm: this.hsm, app: this, session, partition: session.partition, role: this.roleOn(session.partition) };
  }

  /** Runs a call on a session after the calls before it on the same session. */
  private run<T>(handle: number, body: (call: Call) => T | Promise<T>): Promise<T> {
    const session = this.sessions.get(handle);
    if (!session) return Promise.reject(new Pkcs11Error(CKR.SESSION_HANDLE_INVALID));
    return session.run(async () => {
      try {
        return await body(this.resolve(handle));
      } catch (error) {
        throw asPkcs11Error(error);
      }
    });
  }

  // --- General, slot and token information ----------------------------------------------------

  C_GetInfo(): LibraryInfo { return this.hsm.getInfo(); }
  /** Every partition is a present token, so tokenPresent changes nothing. */
  C_GetSlotList(_tokenPresent: boolean): number[] { return this.hsm.getSlotList(); }
  C_GetSlotInfo(slotId: number): SlotInfo { return this.hsm.getSlotInfo(slotId); }
  C_GetTokenInfo(slotId: number): TokenInfo { return this.hsm.getTokenInfo(slotId); }
  C_GetMechanismList(slotId: number): number[] { return this.hsm.getMechanismList(slotId); }
  C_GetMechanismInfo(slotId: number, type: number): MechanismInfo { return this.hsm.getMechanismInfo(slotId, type); }

  C_InitToken(slotId: number, soPin: login.Pin, label: string): Promise<void> {
    return login.initToken(this.hsm, slotId, soPin, label);
  }

  C_InitPIN(session: number, pin: login.Pin): Promise<void> {
    return this.run(session, (c) => login.initPin(this.hsm, this, c.session, pin));
  }

  C_SetPIN(session: number, oldPin: login.Pin, newPin: login.Pin): Promise<void> {
    return this.run(session, (c) => login.setPin(this.hsm, this, c.session, oldPin, newPin));
  }

  /** Vendor extension: sets the Crypto User PIN (SO or Crypto Officer, read-write session). */
  CA_InitCryptoUserPIN(session: number, pin: login.Pin): Promise<void> {
    return this.run(session, (c) => login.initCryptoUserPin(this.hsm, this, c.session, pin));
  }

  // --- Sessions -------------------------------------------------------------------------------

  C_OpenSession(slotId: number, flags: number): number {
    const partition = this.hsm.partition(slotId);
    // Used again after finalize() (C_Finalize then C_Initialize on one connection): tracked again.
    if (this.finalized) {
      this.hsm.adoptApplication(this);
      this.finalized = false;
    }
    if ((flags & CKF.SERIAL_SESSION) === 0) throw new Pkcs11Error(CKR.SESSION_PARALLEL_NOT_SUPPORTED);
    if (!partition.initialized) throw new Pkcs11Error(CKR.TOKEN_NOT_RECOGNIZED);
    const readWrite = (flags & CKF.RW_SESSION) !== 0;
    if (!readWrite && this.roleOn(partition) === 'so') throw new Pkcs11Error(CKR.SESSION_READ_WRITE_SO_EXISTS);
    const session = new Session(this.hsm.newSessionHandle(), this.id, partition, readWrite);
    this.sessions.set(session.handle, session);
    partition.sessions.add(session);
    return session.handle;
  }

  C_CloseSession(session: number): void {
    const s = this.sessions.get(session);
    if (!s) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
    this.endSession(s);
  }

  C_CloseAllSessions(slotId: number): void {
    const partition = this.hsm.partition(slotId);
    for (const s of [...this.sessions.values()]) if (s.partition === partition) this.endSession(s);
  }

  C_GetSessionInfo(session: number): SessionInfo {
    const c = this.resolve(session);
    return {
      slotID: c.partition.slotId, state: sessionState(c.session.readWrite, c.role),
      flags: CKF.SERIAL_SESSION | (c.session.readWrite ? CKF.RW_SESSION : 0), deviceError: 0,
    };
  }

  C_Login(session: number, userType: number, pin: login.Pin): Promise<void> {
    return this.run(session, (c) => login.login(this.hsm, this, c.session, userType, pin));
  }

  C_Logout(session: number): Promise<void> {
    return this.run(session, (c) => login.logout(this, c.session));
  }

  // --- Objects --------------------------------------------------------------------------------

  C_CreateObject(session: number, template: Template): Promise<number> {
    return this.run(session, (c) => objects.createObject(c, template));
  }

  C_CopyObject(session: number, object: number, template: Template): Promise<number> {
    return this.run(session, (c) => objects.copyObject(c, object, template));
  }

  C_DestroyObject(session: number, object: number): Promise<void> {
    return this.run(session, (c) => objects.destroyObject(c, object));
  }

  C_GetAttributeValue(session: number, object: number, requests: readonly objects.AttributeRequest[]): Promise<objects.AttributeReadout> {
    return this.run(session, (c) => objects.getAttributeValue(c, object, requests));
  }

  C_SetAttributeValue(session: number, object: number, template: Template): Promise<void> {
    return this.run(session, (c) => objects.setAttributeValue(c, object, template));
  }

  C_FindObjectsInit(session: number, template: Template): Promise<void> {
    return this.run(session, (c) => objects.findObjectsInit(c, template));
  }

  C_FindObjects(session: number, maxCount: number): Promise<number[]> {
    return this.run(session, (c) => objects.findObjects(c, maxCount));
  }

  C_FindObjectsFinal(session: number): Promise<void> {
    return this.run(session, (c) => objects.findObjectsFinal(c));
  }

  // --- Keys -----------------------------------------------------------------------------------

  C_GenerateKey(session: number, mechanism: Mechanism, template: Template): Promise<number> {
    return this.run(session, (c) => keys.generateKey(c, mechanism, template));
  }

  C_GenerateKeyPair(session: number, mechanism: Mechanism, publicTemplate: Template, privateTemplate: Template): Promise<keys.KeyPairHandles> {
    return this.run(session, (c) => keys.generateKeyPair(c, mechanism, publicTemplate, privateTemplate));
  }

  C_WrapKey(session: number, mechanism: Mechanism, wrappingKey: number, key: number, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => keys.wrapKey(c, mechanism, wrappingKey, key, capacity));
  }

  C_UnwrapKey(session: number, mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: Template): Promise<number> {
    return this.run(session, (c) => keys.unwrapKey(c, mechanism, unwrappingKey, wrapped, template));
  }

  C_DeriveKey(session: number, mechanism: Mechanism, baseKey: number, template: Template): Promise<number> {
    return this.run(session, (c) => keys.deriveKey(c, mechanism, baseKey, template));
  }

  C_GenerateRandom(session: number, length: number): Promise<Buffer> {
    return this.run(session, (c) => keys.generateRandom(c, length));
  }

  C_SeedRandom(session: number, _seed: Buffer): Promise<void> {
    return this.run(session, () => { throw new Pkcs11Error(CKR.RANDOM_SEED_NOT_SUPPORTED); });
  }

  // --- Sign and verify ------------------------------------------------------------------------

  C_SignInit(session: number, mechanism: Mechanism, key: number): Promise<void> {
    return this.run(session, (c) => crypto.keyOperationInit(c, 'sign', mechanism, key));
  }
  C_Sign(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => crypto.singlePart(c, 'sign', data, capacity));
  }
  C_SignUpdate(session: number, data: Buffer): Promise<void> {
    return this.run(session, async (c) => { await crypto.update(c, 'sign', data, undefined); });
  }
  C_SignFinal(session: number, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => crypto.final(c, 'sign', capacity));
  }

  C_VerifyInit(session: number, mechanism: Mechanism, key: number): Promise<void> {
    return this.run(session, (c) => crypto.keyOperationInit(c, 'verify', mechanism, key));
  }
  C_Verify(session: number, data: Buffer, signature: Buffer): Promise<void> {
    return this.run(session, (c) => crypto.verify(c, data, signature));
  }
  C_VerifyUpdate(session: number, data: Buffer): Promise<void> {
    return this.run(session, (c) => crypto.verifyUpdate(c, data));
  }
  C_VerifyFinal(session: number, signature: Buffer): Promise<void> {
    return this.run(session, (c) => crypto.verifyFinal(c, signature));
  }

  // --- Encrypt and decrypt --------------------------------------------------------------------

  C_EncryptInit(session: number, mechanism: Mechanism, key: number): Promise<void> {
    return this.run(session, (c) => crypto.keyOperationInit(c, 'encrypt', mechanism, key));
  }
  C_Encrypt(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => crypto.singlePart(c, 'encrypt', data, capacity));
  }
  C_EncryptUpdate(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => crypto.update(c, 'encrypt', data, capacity));
  }
  C_EncryptFinal(session: number, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => crypto.final(c, 'encrypt', capacity));
  }

  C_DecryptInit(session: number, mechanism: Mechanism, key: number): Promise<void> {
    return this.run(session, (c) => crypto.keyOperationInit(c, 'decrypt', mechanism, key));
  }
  C_Decrypt(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => crypto.singlePart(c, 'decrypt', data, capacity));
  }
  C_DecryptUpdate(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => crypto.update(c, 'decrypt', data, capacity));
  }
  C_DecryptFinal(session: number, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => crypto.final(c, 'decrypt', capacity));
  }

  // --- Digest ---------------------------------------------------------------------------------

  C_DigestInit(session: number, mechanism: Mechanism): Promise<void> {
    return this.run(session, (c) => crypto.digestInit(c, mechanism));
  }
  C_Digest(session: number, data: Buffer, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => crypto.singlePart(c, 'digest', data, capacity));
  }
  C_DigestUpdate(session: number, data: Buffer): Promise<void> {
    return this.run(session, async (c) => { await crypto.update(c, 'digest', data, undefined); });
  }
  C_DigestKey(session: number, key: number): Promise<void> {
    return this.run(session, (c) => crypto.digestKey(c, key));
  }
  C_DigestFinal(session: number, capacity?: Capacity): Promise<Buffer> {
    return this.run(session, (c) => crypto.final(c, 'digest', capacity));
  }
}
