// The narrow contract under the token model: what a device that holds tokens must do. The
// token model (application.ts) owns PKCS#11's semantics once: session handles, login state per
// application, which objects a caller sees, find cursors, output sizing, operation state and
// the rules of who may write what. A device does the work underneath: its tokens' PINs, objects
// and their attributes, and cryptographic operations, each on a device session it opened.
//
// Two devices implement it: the software HSM (src/hsm, node:crypto over the store; a mounted
// USB token image is one too) and the PKCS#11 module host (src/hsm/passthrough). A device
// checks what only it can know (an attribute a template may not set, a key's usage flags and
// mechanism fit, a PIN) and answers with Pkcs11Error; it never decides visibility or login.

import type { Template, AttributeValue } from '../pkcs11/attributes.js';
import type { SlotInfo, TokenInfo, MechanismInfo, LibraryInfo } from '../pkcs11/info.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import type { Role } from './roles.js';

export type MaybePromise<T> = T | Promise<T>;

/** One token of a device, as the administrator and the slot table know it. */
export interface DeviceToken {
  /** The device's own slot number. */
  slot: number;
  serial: string;
  /** The operator's name for it (`ntls partition ...`); clients cannot change it. */
  name: string;
  /** The token label (CK_TOKEN_INFO), which the token's SO sets with C_InitToken. */
  label: string;
  initialized: boolean;
  /** null when the device cannot count them (a PKCS#11 module's token). */
  tokenObjects: number | null;
}

/** What decides who sees an object: whether it outlives its session, whether it is private. */
export interface ObjectFacts {
  handle: number;
  token: boolean;
  private: boolean;
}

/** One attribute read: its value, or the CKR_ code it is refused with (sensitive, not of this object). */
export type AttributeRead = { value: AttributeValue } | { rv: number };

export type OperationKind = 'sign' | 'verify' | 'encrypt' | 'decrypt' | 'digest';
/** How an operation's key wants a context-specific login (CKA_ALWAYS_AUTHENTICATE): see Device.operationInit. */
export type ContextLogin = 'none' | 'required' | 'device';
export type KeyOperationKind = Exclude<OperationKind, 'digest'>;

/**
 * A session the device opened for one model session. The model keeps it and hands it back on
 * every call; what is inside is the device's (its token, its own handle, operation state).
 */
export interface DeviceSession {
  readonly slot: number;
  readonly readWrite: boolean;
}

/**
 * The role the calling application holds on the session's token (null: a public session). The
 * model has checked it against PKCS#11's rules; the device uses it where the work depends on it
 * (a stored secret opens only for a logged-in user; the SO may set fewer attributes).
 */
export type Caller = Role | null;

export interface Device<S extends DeviceSession = DeviceSession> {
  /** 'software' (built in) or 'pkcs11' (a module behind ntls). */
  readonly kind: 'software' | 'pkcs11';
  readonly libraryInfo: LibraryInfo;
  /** Mechanisms whose C_xxxUpdate the model refuses (CKR_FUNCTION_NOT_SUPPORTED). */
  readonly singlePartMechanisms: ReadonlySet<number>;

  tokens(): DeviceToken[];
  slotInfo(slot: number): MaybePromise<SlotInfo>;
  /** Session counts included: the device counts the sessions it opened. */
  tokenInfo(slot: number): MaybePromise<TokenInfo>;
  /** The token's mechanisms; CKR_SLOT_ID_INVALID or CKR_DEVICE_ERROR when it cannot answer. */
  mechanismsOf(slot: number): ReadonlyMap<number, MechanismInfo>;
  /** CKA_PRIVATE of a new object of this class when the template does not say; null: the device decides later. */
  defaultPrivate(objectClass: number): boolean | null;

  // --- Tokens and PINs -------------------------------------------------------------------------
  initToken(slot: number, soPin: Buffer, label: string): Promise<void>;
  /** Checks the role's PIN (a failure counted toward the lock) and keeps the token open for `holder`. */
  login(slot: number, role: Role, pin: Buffer, holder: string): Promise<void>;
  /** `holder` logged out; the device may close what it kept open for it. */
  logout(slot: number, holder: string): MaybePromise<void>;
  /** C_InitPIN ('co') and the Crypto User's PIN ('cu'), by a caller the model let through. */
  setUserPin(session: S, role: 'co' | 'cu', pin: Buffer, caller: Caller): Promise<void>;
  /** C_SetPIN: the PIN of `caller`'s role (the Crypto Officer's when null). */
  changePin(session: S, oldPin: Buffer, newPin: Buffer, caller: Caller): Promise<void>;

  // --- Sessions ----------------------------------------------------------------------------------
  openSession(slot: number, readWrite: boolean): MaybePromise<S>;
  /**
   * Throws when the device lost the session by itself (a module host that died took its
   * sessions along): CKR_SESSION_HANDLE_INVALID, or CKR_DEVICE_ERROR while the device is down.
   */
  assertOpen(session: S): void;
  /** Closes the session; the device drops the session objects made in it. */
  closeSession(session: S): MaybePromise<void>;

  // --- Objects -----------------------------------------------------------------------------------
  /** The facts of an object the session's token holds, or null when there is none by that handle. */
  facts(session: S, handle: number): MaybePromise<ObjectFacts | null>;
  createObject(session: S, template: Template, caller: Caller): Promise<ObjectFacts>;
  copyObject(session: S, handle: number, template: Template, caller: Caller): Promise<ObjectFacts>;
  destroyObject(session: S, handle: number): MaybePromise<void>;
  readAttributes(session: S, handle: number, types: readonly number[], caller: Caller): Promise<AttributeRead[]>;
  /** Changes attributes; returns the object's facts afterwards. */
  writeAttributes(session: S, handle: number, template: Template, caller: Caller): Promise<ObjectFacts>;
  /** Every object of the token matching the template, whoever it belongs to; the model filters. */
  find(session: S, template: Template, caller: Caller): Promise<ObjectFacts[]>;

  // --- Keys --------------------------------------------------------------------------------------
  generateKey(session: S, mechanism: Mechanism, template: Template, caller: Caller): Promise<ObjectFacts>;
  generateKeyPair(session: S, mechanism: Mechanism, publicTemplate: Template, privateTemplate: Template, caller: Caller): Promise<[ObjectFacts, ObjectFacts]>;
  wrapKey(session: S, mechanism: Mechanism, wrappingKey: number, key: number, caller: Caller): Promise<Buffer>;
  unwrapKey(session: S, mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: Template, caller: Caller): Promise<ObjectFacts>;
  deriveKey(session: S, mechanism: Mechanism, baseKey: number, template: Template, caller: Caller): Promise<ObjectFacts>;
  random(session: S, length: number): Promise<Buffer>;
  seedRandom(session: S, seed: Buffer): Promise<void>;

  // --- Operations (one of each kind per session; the model keeps the state) ----------------------
  /**
   * Starts an operation. Says how its key's CKA_ALWAYS_AUTHENTICATE is judged: 'none' (no
   * context-specific login needed), 'required' (the model refuses the operation's use until
   * C_Login(CKU_CONTEXT_SPECIFIC) succeeds), 'device' (the device judges it itself and the model
   * passes a context-specific login on to it).
   */
  operationInit(session: S, kind: OperationKind, mechanism: Mechanism, key: number | null, caller: Caller): Promise<ContextLogin>;
  /** C_Login(CKU_CONTEXT_SPECIFIC): checks the PIN of the caller's role (a wrong one counted toward its lock). */
  contextLogin(session: S, pin: Buffer, caller: Role): Promise<void>;
  /** Output so far for encrypt/decrypt, null for sign/verify/digest. */
  operationUpdate(session: S, kind: OperationKind, data: Buffer): Promise<Buffer | null>;
  operationFinal(session: S, kind: Exclude<OperationKind, 'verify'>): Promise<Buffer>;
  /** C_Sign, C_Encrypt, C_Decrypt, C_Digest: the whole input at once; ends the device's operation. */
  operationSingle(session: S, kind: Exclude<OperationKind, 'verify'>, data: Buffer): Promise<Buffer>;
  /** C_Verify and C_VerifyFinal: CKR_SIGNATURE_INVALID when it does not verify. */
  verify(session: S, data: Buffer | null, signature: Buffer): Promise<void>;
  digestKey(session: S, key: number, caller: Caller): Promise<void>;
  /** The model ended the operation (a failure, a logout): the device forgets its state. */
  operationEnd(session: S, kind: OperationKind): void;
}

// --- The owner of a call ---------------------------------------------------------------------
// Whom the call a device serves is for: the client an application belongs to. A device counts
// what a client's open operations keep against that client's share (the software HSM's
// hsm.operationMemoryBudget), so that one client cannot leave the others nothing.
//
// Only the synchronous part of a call is its owner's: an application runs each device call so
// (Application.run), and a device reads the owner before its first await. Not
// AsyncLocalStorage: on Node 20 its promise hooks cost every request of the daemon about 4 µs.

let current: string | undefined;

export function runAsOwner<T>(owner: string | undefined, call: () => T): T {
  const before = current;
  current = owner;
  try {
    return call();
  } finally {
    current = before;
  }
}

/** The owner of the call under way, if it has one. */
export function callOwner(): string | undefined {
  return current;
}
