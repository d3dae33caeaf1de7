// One client application's PKCS#11 calls, by their C_ names, over whatever device holds each
// token: the token model's semantics, written once. PKCS#11 keeps login state per application
// per token, and sessions and session objects belong to the application that opened them; so
// each client connection (or NTLS application ID) gets its own Application, and a handle from
// another application is CKR_SESSION_HANDLE_INVALID here.
//
// Here, for every device: session handles and states, login per application (closing its last
// session on a token logs it out), which objects a caller sees (token objects, its own session
// objects, private ones only while a user is logged in), who may create, change or destroy what,
// find cursors, output sizing (length query, CKR_BUFFER_TOO_SMALL) and operation state. The
// device (device.ts) does the work. Calls taking a session run in order per session and return
// Promises; failures are Pkcs11Error with the CKR_ code in `.rv`. Calls returning bytes take an
// optional capacity: omitted = any length, null = length query, a number = the caller's buffer.

import {
  attributeLength, normaliseAttribute, type AttributeReadout, type AttributeRequest, type AttributeResult, type AttributeValue, type Template,
} from '../pkcs11/attributes.js';
import { runAsOwner } from './device.js';
import type { FindBudget } from './find-budget.js';
import { CKA, CKF, CKO, CKR, CKU, Pkcs11Error } from '../pkcs11/constants.js';
import { UNAVAILABLE_INFORMATION, type LibraryInfo, type MechanismInfo, type SessionInfo, type SlotInfo, type TokenInfo } from '../pkcs11/info.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import type { MaybePromise, ObjectFacts, OperationKind } from './device.js';
import { ObjectHandles } from './object-handles.js';
import { BufferTooSmallError, dropPending, isPendingFor, sizedOutput, type Capacity } from './output.js';
import { roleOfUserType, seesPrivateObjects, sessionState, CKU_CRYPTO_USER, type Role } from './roles.js';
import { Session, type OperationState } from './session.js';
import type { Mount, SlotTable } from './slots.js';

export type Pin = string | Buffer;

export interface KeyPairHandles {
  publicKey: number;
  privateKey: number;
}

const EMPTY = Buffer.alloc(0);
const KEY_USAGE_FLAG: Record<OperationKind, number> = {
  sign: CKF.SIGN, verify: CKF.VERIFY, encrypt: CKF.ENCRYPT, decrypt: CKF.DECRYPT, digest: CKF.DIGEST,
};

/**
 * A PIN as the device takes it. NULL (pPin NULL_PTR) asks for a protected authentication path,
 * which no token here offers (CKF_PROTECTED_AUTHENTICATION_PATH is never set): CKR_ARGUMENTS_BAD,
 * as SoftHSM2 answers, and never a wrong PIN that counts toward the lock.
 */
function pinBytes(pin: Pin | null): Buffer {
  if (pin === null) throw new Pkcs11Error(CKR.ARGUMENTS_BAD, 'no PIN (no protected authentication path)');
  return typeof pin === 'string' ? Buffer.from(pin, 'utf8') : pin;
}

/** Continues with a value that a device gives at once or later; stays synchronous when it can. */
function after<T, R>(value: MaybePromise<T>, next: (value: T) => R): R | Promise<Awaited<R>> {
  return value instanceof Promise ? value.then(next) as Promise<Awaited<R>> : next(value);
}

/** Whatever fails inside a call reaches the caller as a Pkcs11Error; an unexpected one as CKR_GENERAL_ERROR. */
function asPkcs11Error(error: unknown): Pkcs11Error {
  if (error instanceof Pkcs11Error) return error;
  return new Pkcs11Error(CKR.GENERAL_ERROR, error instanceof Error ? error.message : String(error), { cause: error });
}

/** An attribute of a template, brought to its kind (a bad value is CKR_ATTRIBUTE_VALUE_INVALID). */
function templateValue(template: Template, type: number): AttributeValue | undefined {
  const found = template.find((a) => a.type === type);
  return found === undefined ? undefined : normaliseAttribute(found).value;
}

/** What an application needs of the model that made it (TokenModel). */
export interface ApplicationHost {
  readonly libraryInfo: LibraryInfo;
  readonly slots: SlotTable;
  newSessionHandle(): number;
  /** A finalized application is used again: the model tracks it again. */
  adopt(app: Application): void;
  /** The application finalized: the model forgets it. */
  drop(app: Application): void;
  /** What open searches hold, per client. */
  readonly findBudget: FindBudget;
}

export class Application {
  private readonly sessions = new Map<number, Session>();
  private readonly roles = new Map<Mount, Role>();
  private readonly objectHandles = new Map<Mount, ObjectHandles>();
  /** Handles to private objects outlive a logout (NTLS_KeepObjectHandles: the HA client's member links). */
  private keepsObjectHandles = false;
  private finalized = false;

  constructor(private readonly model: ApplicationHost, readonly id: string, readonly owner?: string) {}

  /** The role this application holds on a token, or null. */
  roleOn(mount: Mount): Role | null {
    return this.roles.get(mount) ?? null;
  }

  /**
   * The application is gone (connection closed, C_Finalize): every session closes and the model
   * forgets it. Opening a session on it again makes the model track it again.
   */
  finalize(): void {
    for (const session of [...this.sessions.values()]) void this.settle(this.endSession(session));
    this.finalized = true;
    this.model.drop(this);
  }

  /** The token was taken away (partition deleted, token ejected): its sessions end, its login goes. */
  dropMount(mount: Mount): void {
    for (const session of [...this.sessions.values()]) if (session.mount === mount) void this.settle(this.endSession(session));
    this.roles.delete(mount);
  }

  // --- General, slot and token information ----------------------------------------------------

  C_GetInfo(): LibraryInfo {
    return this.model.libraryInfo;
  }

  /** Every token is present: tokenPresent changes nothing. */
  C_GetSlotList(_tokenPresent: boolean): number[] {
    return this.model.slots.list().map((m) => m.slot);
  }

  C_GetSlotInfo(slot: number): MaybePromise<SlotInfo> {
    const mount = this.model.slots.get(slot);
    return mount.device.slotInfo(mount.deviceSlot);
  }

  C_GetTokenInfo(slot: number): MaybePromise<TokenInfo> {
    const mount = this.model.slots.get(slot);
    return mount.device.tokenInfo(mount.deviceSlot);
  }

  C_GetMechanismList(slot: number): number[] {
    const mount = this.model.slots.get(slot);
    return [...mount.device.mechanismsOf(mount.deviceSlot).keys()].sort((a, b) => a - b);
  }

  C_GetMechanismInfo(slot: number, type: number): MechanismInfo {
    const mount = this.model.slots.get(slot);
    const info = mount.device.mechanismsOf(mount.deviceSlot).get(type);
    if (!info) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
    return { ...info };
  }

  async C_InitToken(slot: number, soPin: Pin | null, label: string): Promise<void> {
    const mount = this.model.slots.get(slot);
    const secret = pinBytes(soPin);
    if (mount.sessions.size > 0) throw new Pkcs11Error(CKR.SESSION_EXISTS);
    await mount.device.initToken(mount.deviceSlot, secret, label);
    mount.sessionObjects.clear();
  }

  // --- Sessions -------------------------------------------------------------------------------

  C_OpenSession(slot: number, flags: number): MaybePromise<number> {
    const mount = this.model.slots.get(slot);
    // Used again after finalize() (C_Finalize then C_Initialize on one connection): tracked again.
    if (this.finalized) {
      this.model.adopt(this);
      this.finalized = false;
    }
    if ((flags & CKF.SERIAL_SESSION) === 0) throw new Pkcs11Error(CKR.SESSION_PARALLEL_NOT_SUPPORTED);
    const readWrite = (flags & CKF.RW_SESSION) !== 0;
    if (!readWrite && this.roleOn(mount) === 'so') throw new Pkcs11Error(CKR.SESSION_READ_WRITE_SO_EXISTS);
    return after(mount.device.openSession(mount.deviceSlot, readWrite), (device) => {
      const session = new Session(this.model.newSessionHandle(), this.id, mount, device);
      this.sessions.set(session.handle, session);
      mount.sessions.add(session);
      return session.handle;
    });
  }

  C_CloseSession(handle: number): MaybePromise<void> {
    return this.endSession(this.session(handle));
  }

  C_CloseAllSessions(slot: number): MaybePromise<void> {
    const mount = this.model.slots.get(slot);
    const ending = [...this.sessions.values()].filter((s) => s.mount === mount).map((s) => this.endSession(s));
    if (ending.some((e) => e instanceof Promise)) return Promise.all(ending.map(async (e) => e)).then(() => undefined);
  }

  C_GetSessionInfo(handle: number): SessionInfo {
    const session = this.session(handle);
    return {
      slotId: session.mount.slot, state: sessionState(session.readWrite, this.roleOn(session.mount)),
      flags: CKF.SERIAL_SESSION | (session.readWrite ? CKF.RW_SESSION : 0), deviceError: 0,
    };
  }

  private session(handle: number): Session {
    const session = this.sessions.get(handle);
    if (!session) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
    this.checkAlive(session);
    return session;
  }

  /** A session its device lost (a module host that died) ends here too. */
  private checkAlive(session: Session): void {
    try {
      session.mount.device.assertOpen(session.device);
    } catch (error) {
      void this.settle(this.endSession(session));
      throw error;
    }
  }

  private owns(session: Session): boolean {
    return this.sessions.get(session.handle) === session;
  }

  /** Runs a call on a session after the calls before it on the same session. */
  private run<T>(handle: number, body: (session: Session, role: Role | null) => T | Promise<T>): Promise<T> {
    const session = this.sessions.get(handle);
    if (!session) return Promise.reject(new Pkcs11Error(CKR.SESSION_HANDLE_INVALID));
    return session.run(async () => {
      if (!this.owns(session)) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
      this.checkAlive(session);
      try {
        return await runAsOwner(this.owner, () => body(session, this.roleOn(session.mount)));
      } catch (error) {
        throw asPkcs11Error(error);
      }
    });
  }

  private endSession(session: Session): MaybePromise<void> {
    const { mount } = session;
    this.sessions.delete(session.handle);
    mount.sessions.delete(session);
    for (const op of session.operations.values()) dropPending(op);
    session.operations.clear();
    dropPending(session.wrap);
    this.endFind(session);
    // The device drops the session's objects with it.
    for (const [handle, owner] of mount.sessionObjects) {
      if (owner.app !== this.id || owner.session !== session.handle) continue;
      mount.sessionObjects.delete(handle);
      this.objectHandles.get(mount)?.forget(handle);
    }
    const closed = mount.device.closeSession(session.device);
    // Closing an application's last session on a token logs it out of that token.
    const last = ![...this.sessions.values()].some((s) => s.mount === mount);
    if (!last || !this.roles.has(mount)) return closed;
    return after(closed, () => this.clearRole(mount));
  }

  /** Settles a call made on the way out (closing, finalizing) whose failure has nobody to go to. */
  private settle(result: MaybePromise<void>): Promise<void> | undefined {
    return result instanceof Promise ? result.catch(() => undefined) : undefined;
  }

  // --- Login and PINs -------------------------------------------------------------------------

  /** `pin` null: the caller passed no PIN (CKR_ARGUMENTS_BAD once the session is known). */
  C_Login(handle: number, userType: number, pin: Pin | null): Promise<void> {
    return this.run(handle, async (session, current) => {
      const { mount } = session;
      const secret = pinBytes(pin);
      if (userType === CKU.CONTEXT_SPECIFIC) {
        // CKA_ALWAYS_AUTHENTICATE: the PIN again, for the operation just initialised with such a key.
        if (current === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
        const waiting = [...session.operations.values()].filter((op) => op.contextLogin === 'required' || op.contextLogin === 'device');
        if (waiting.length === 0) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED, 'no operation waits for a context-specific login');
        await mount.device.contextLogin(session.device, secret, current);
        for (const op of waiting) if (op.contextLogin === 'required') op.contextLogin = 'done';
        return;
      }
      const role = roleOfUserType(userType);
      const check = () => {
        const now = this.roleOn(mount);
        if (now === role) throw new Pkcs11Error(CKR.USER_ALREADY_LOGGED_IN);
        if (now !== null) throw new Pkcs11Error(CKR.USER_ANOTHER_ALREADY_LOGGED_IN);
        if (role === 'so' && [...this.sessions.values()].some((s) => s.mount === mount && !s.readWrite)) {
          throw new Pkcs11Error(CKR.SESSION_READ_ONLY_EXISTS);
        }
      };
      check();
      await mount.device.login(mount.deviceSlot, role, secret, this.id);
      try {
        // The PIN check took time: the state may have changed meanwhile.
        check();
        if (!this.owns(session)) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
      } catch (error) {
        await mount.device.logout(mount.deviceSlot, this.id);
        throw error;
      }
      this.roles.set(mount, role);
    });
  }

  C_Logout(handle: number): Promise<void> {
    return this.run(handle, async (session, role) => {
      if (role === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
      await this.clearRole(session.mount);
    });
  }

  /** Logs the application out of a token: its private session objects go, key operations end. */
  private clearRole(mount: Mount): MaybePromise<void> {
    if (!this.roles.delete(mount)) return;
    if (!this.keepsObjectHandles) this.objectHandles.get(mount)?.retirePrivate();
    for (const session of this.sessions.values()) {
      if (session.mount !== mount) continue;
      for (const kind of ['sign', 'verify', 'encrypt', 'decrypt'] as const) this.endOperation(session, kind);
      if (session.operations.get('digest')?.keyed) this.endOperation(session, 'digest');
      dropPending(session.wrap);
    }
    const drops: MaybePromise<void>[] = [];
    for (const [handle, owner] of [...mount.sessionObjects]) {
      const session = owner.app === this.id ? this.sessions.get(owner.session) : undefined;
      if (!session) continue;
      drops.push(after(mount.device.facts(session.device, handle), (facts) => {
        if (!facts?.private) return;
        mount.sessionObjects.delete(handle);
        return after(mount.device.destroyObject(session.device, handle), () => this.objectHandles.get(mount)?.forget(handle));
      }));
    }
    const logout = () => mount.device.logout(mount.deviceSlot, this.id);
    if (!drops.some((d) => d instanceof Promise)) return logout();
    return Promise.all(drops.map((d) => Promise.resolve(d).catch(() => undefined))).then(logout);
  }

  /**
   * From now on a logout leaves this application's handles to private objects valid. The HA
   * client asks it of each member link: it carries a handle from one member to another, which
   * holds only while every member knows an object by its store id.
   */
  keepObjectHandles(): void {
    this.keepsObjectHandles = true;
  }

  C_InitPIN(handle: number, pin: Pin | null): Promise<void> {
    return this.run(handle, async (session, role) => {
      const secret = pinBytes(pin);
      if (role !== 'so') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
      if (!session.readWrite) throw new Pkcs11Error(CKR.SESSION_READ_ONLY);
      await session.mount.device.setUserPin(session.device, 'co', secret, role);
    });
  }

  /**
   * Vendor call: sets the Crypto User's PIN. Allowed to the SO and to the Crypto Officer, in a
   * read-write session. The Crypto User then logs in with user type CKU_CRYPTO_USER.
   */
  CA_InitCryptoUserPIN(handle: number, pin: Pin): Promise<void> {
    return this.run(handle, async (session, role) => {
      if (role !== 'so' && role !== 'co') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
      if (!session.readWrite) throw new Pkcs11Error(CKR.SESSION_READ_ONLY);
      await session.mount.device.setUserPin(session.device, 'cu', pinBytes(pin), role);
    });
  }

  C_SetPIN(handle: number, oldPin: Pin | null, newPin: Pin | null): Promise<void> {
    return this.run(handle, async (session, role) => {
      const [oldSecret, newSecret] = [pinBytes(oldPin), pinBytes(newPin)];
      if (!session.readWrite) throw new Pkcs11Error(CKR.SESSION_READ_ONLY);
      await session.mount.device.changePin(session.device, oldSecret, newSecret, role);
    });
  }

  // --- Who sees and who may change what ---------------------------------------------------------

  /** Token objects of the token and this application's session objects; private ones only to a logged-in user. */
  private visible(session: Session, role: Role | null, facts: ObjectFacts): boolean {
    if (!facts.token) {
      const owner = session.mount.sessionObjects.get(facts.handle);
      if (owner === undefined || owner.app !== this.id) return false;
    }
    return !facts.private || seesPrivateObjects(role);
  }

  private handles(mount: Mount): ObjectHandles {
    let handles = this.objectHandles.get(mount);
    if (handles === undefined) this.objectHandles.set(mount, handles = new ObjectHandles());
    return handles;
  }

  /** The device's id for an object handle the application gives. */
  private deviceId(session: Session, handle: number): number {
    return this.handles(session.mount).toDevice(handle);
  }

  /** The handle the application gets for an object. */
  private given(session: Session, facts: ObjectFacts): number {
    return this.handles(session.mount).toApplication(facts.handle, facts.private);
  }

  private async object(session: Session, role: Role | null, handle: number, invalid: number = CKR.OBJECT_HANDLE_INVALID): Promise<ObjectFacts> {
    const facts = await session.mount.device.facts(session.device, handle);
    if (facts === null || !this.visible(session, role, facts)) throw new Pkcs11Error(invalid);
    return facts;
  }

  /**
   * May this caller create, change or destroy an object with these properties? The Crypto User
   * may not change anything; a token object needs a read-write session; a private object needs
   * the Crypto Officer.
   */
  private checkWrite(session: Session, role: Role | null, token: boolean, isPrivate: boolean): void {
    if (role === 'cu') throw new Pkcs11Error(CKR.ACTION_PROHIBITED, 'the Crypto User cannot create, change or destroy objects');
    if (token && !session.readWrite) throw new Pkcs11Error(CKR.SESSION_READ_ONLY);
    if (isPrivate && role !== 'co') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
  }

  /** The write check for an object a template describes, before the device makes it. */
  private checkNew(session: Session, role: Role | null, template: Template, objectClass: number | undefined): void {
    const token = templateValue(template, CKA.TOKEN) === true;
    const given = templateValue(template, CKA.PRIVATE);
    const isPrivate = given !== undefined ? given === true
      : objectClass === undefined ? false : session.mount.device.defaultPrivate(objectClass) ?? false;
    this.checkWrite(session, role, token, isPrivate);
  }

  /** Key use (sign, encrypt, wrap ...) is for the Crypto Officer, the Crypto User, and public sessions on public keys; never the SO. */
  private checkKeyUser(role: Role | null): void {
    if (role === 'so') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'the SO cannot use keys');
  }

  private checkMechanism(session: Session, mechanism: Mechanism, flag: number): void {
    const info = session.mount.device.mechanismsOf(session.mount.deviceSlot).get(mechanism.type);
    if (!info || (info.flags & flag) === 0) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
  }

  /**
   * Takes objects the device just made for this caller: session objects become this session's.
   * A device that decides CKA_PRIVATE itself may have made a private object for a caller who
   * may not have one: it is destroyed again and the call refused.
   */
  private async admit(session: Session, role: Role | null, made: readonly ObjectFacts[]): Promise<void> {
    const { mount } = session;
    if (!this.owns(session) || made.some((o) => o.private && role !== 'co') || made.some((o) => o.token && !session.readWrite)) {
      for (const o of made) await Promise.resolve().then(() => mount.device.destroyObject(session.device, o.handle)).catch(() => undefined);
      if (!this.owns(session)) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
      this.checkWrite(session, role, made.some((o) => o.token), made.some((o) => o.private));
    }
    for (const o of made) if (!o.token) mount.sessionObjects.set(o.handle, { app: this.id, session: session.handle });
  }

  // --- Objects --------------------------------------------------------------------------------

  C_CreateObject(handle: number, template: Template): Promise<number> {
    return this.run(handle, async (session, role) => {
      const objectClass = templateValue(template, CKA.CLASS) as number | undefined;
      if (objectClass === undefined) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_CLASS');
      this.checkNew(session, role, template, objectClass);
      const made = await session.mount.device.createObject(session.device, template, role);
      await this.admit(session, role, [made]);
      return this.given(session, made);
    });
  }

  C_CopyObject(handle: number, given: number, template: Template): Promise<number> {
    return this.run(handle, async (session, role) => {
      const object = this.deviceId(session, given);
      const original = await this.object(session, role, object);
      if (role === 'cu') throw new Pkcs11Error(CKR.ACTION_PROHIBITED);
      const token = templateValue(template, CKA.TOKEN);
      const isPrivate = templateValue(template, CKA.PRIVATE);
      this.checkWrite(session, role, token === undefined ? original.token : token === true, isPrivate === undefined ? original.private : isPrivate === true);
      const made = await session.mount.device.copyObject(session.device, object, template, role);
      await this.admit(session, role, [made]);
      return this.given(session, made);
    });
  }

  C_DestroyObject(handle: number, given: number): Promise<void> {
    return this.run(handle, async (session, role) => {
      const object = this.deviceId(session, given);
      const facts = await this.object(session, role, object);
      this.checkWrite(session, role, facts.token, facts.private);
      await session.mount.device.destroyObject(session.device, object);
      session.mount.sessionObjects.delete(object);
      this.objectHandles.get(session.mount)?.forget(object);
    });
  }

  /** C_GetObjectSize: the object is checked; its size is not something this token tells (CK_UNAVAILABLE_INFORMATION). */
  C_GetObjectSize(handle: number, given: number): Promise<number> {
    return this.run(handle, async (session, role) => {
      await this.object(session, role, this.deviceId(session, given));
      return UNAVAILABLE_INFORMATION;
    });
  }

  C_GetAttributeValue(handle: number, given: number, requests: readonly AttributeRequest[]): Promise<AttributeReadout> {
    return this.run(handle, async (session, role) => {
      const object = this.deviceId(session, given);
      await this.object(session, role, object);
      // Each type is read once, however often the template names it.
      const types = [...new Set(requests.map((r) => r.type))];
      const readList = await session.mount.device.readAttributes(session.device, object, types, role);
      const reads = new Map(types.map((type, i) => [type, readList[i]!]));
      let rv: number = CKR.OK;
      const fail = (code: number) => { if (rv === CKR.OK) rv = code; };
      const attributes = requests.map((request): AttributeResult => {
        const read = reads.get(request.type)!;
        if ('rv' in read) {
          fail(read.rv);
          return { type: request.type, value: null, length: null };
        }
        const length = attributeLength(read.value);
        if (request.length === null) return { type: request.type, value: null, length };
        if (request.length !== undefined && request.length < length) {
          fail(CKR.BUFFER_TOO_SMALL);
          return { type: request.type, value: null, length: null };
        }
        return { type: request.type, value: read.value, length };
      });
      return { rv, attributes };
    });
  }

  C_SetAttributeValue(handle: number, given: number, template: Template): Promise<void> {
    return this.run(handle, async (session, role) => {
      const object = this.deviceId(session, given);
      const before = await this.object(session, role, object);
      this.checkWrite(session, role, before.token, before.private);
      const token = templateValue(template, CKA.TOKEN);
      const isPrivate = templateValue(template, CKA.PRIVATE);
      if (token !== undefined || isPrivate !== undefined) {
        this.checkWrite(session, role, token === undefined ? before.token : token === true, isPrivate === undefined ? before.private : isPrivate === true);
      }
      const after = await session.mount.device.writeAttributes(session.device, object, template, role);
      if (after.private) this.given(session, after); // made private: its handle goes at logout too
      if (after.token) session.mount.sessionObjects.delete(object);
      else if (before.token) session.mount.sessionObjects.set(object, { app: this.id, session: session.handle });
    });
  }

  C_FindObjectsInit(handle: number, template: Template): Promise<void> {
    return this.run(handle, async (session, role) => {
      if (session.find !== null) throw new Pkcs11Error(CKR.OPERATION_ACTIVE);
      const found = await session.mount.device.find(session.device, template, role);
      const handles: number[] = [];
      for (const o of found) if (this.visible(session, role, o)) handles.push(o.handle);
      if (!this.model.findBudget.take(this.owner ?? '', handles.length)) {
        throw new Pkcs11Error(CKR.HOST_MEMORY, `open searches would hold more than ${this.model.findBudget.perOwner} handles for this client`);
      }
      session.find = { handles, next: 0 };
    });
  }

  /** `maxCount` null: the caller passed no array (CKR_ARGUMENTS_BAD once the session is known). */
  C_FindObjects(handle: number, maxCount: number | null): Promise<number[]> {
    return this.run(handle, async (session, role) => {
      if (maxCount === null || !Number.isInteger(maxCount) || maxCount < 0) throw new Pkcs11Error(CKR.ARGUMENTS_BAD);
      if (session.find === null) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED);
      const out: number[] = [];
      const find = session.find;
      while (out.length < maxCount && find.next < find.handles.length) {
        const next = find.handles[find.next++]!;
        // Gone or out of sight since the search began (destroyed, logged out): skipped.
        const pending = session.mount.device.facts(session.device, next);
        const facts = pending instanceof Promise ? await pending : pending;
        if (facts !== null && this.visible(session, role, facts)) out.push(this.given(session, facts));
      }
      return out;
    });
  }

  C_FindObjectsFinal(handle: number): Promise<void> {
    return this.run(handle, (session) => {
      if (session.find === null) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED);
      this.endFind(session);
    });
  }

  private endFind(session: Session): void {
    if (session.find === null) return;
    this.model.findBudget.give(this.owner ?? '', session.find.handles.length);
    session.find = null;
  }

  // --- Keys -----------------------------------------------------------------------------------

  C_GenerateKey(handle: number, mechanism: Mechanism, template: Template): Promise<number> {
    return this.run(handle, async (session, role) => {
      this.checkMechanism(session, mechanism, CKF.GENERATE);
      this.checkKeyUser(role);
      this.checkNew(session, role, template, CKO.SECRET_KEY);
      const made = await session.mount.device.generateKey(session.device, mechanism, template, role);
      await this.admit(session, role, [made]);
      return this.given(session, made);
    });
  }

  C_GenerateKeyPair(handle: number, mechanism: Mechanism, publicTemplate: Template, privateTemplate: Template): Promise<KeyPairHandles> {
    return this.run(handle, async (session, role) => {
      this.checkMechanism(session, mechanism, CKF.GENERATE_KEY_PAIR);
      this.checkKeyUser(role);
      this.checkNew(session, role, publicTemplate, CKO.PUBLIC_KEY);
      this.checkNew(session, role, privateTemplate, CKO.PRIVATE_KEY);
      const [publicKey, privateKey] = await session.mount.device.generateKeyPair(session.device, mechanism, publicTemplate, privateTemplate, role);
      await this.admit(session, role, [publicKey, privateKey]);
      return { publicKey: this.given(session, publicKey), privateKey: this.given(session, privateKey) };
    });
  }

  C_WrapKey(handle: number, mechanism: Mechanism, givenWrappingKey: number, givenKey: number, capacity?: Capacity): Promise<Buffer> {
    return this.run(handle, async (session, role) => {
      const wrappingKey = this.deviceId(session, givenWrappingKey);
      const key = this.deviceId(session, givenKey);
      this.checkMechanism(session, mechanism, CKF.WRAP);
      // The Crypto User uses keys where they are; taking one out, even wrapped, is the Crypto Officer's.
      if (role === 'cu') throw new Pkcs11Error(CKR.ACTION_PROHIBITED, 'the Crypto User cannot wrap keys');
      this.checkKeyUser(role);
      await this.object(session, role, wrappingKey, CKR.WRAPPING_KEY_HANDLE_INVALID);
      await this.object(session, role, key, CKR.KEY_HANDLE_INVALID);
      // The call is named by everything that decides its output (the parameter too: an IV). A wrap
      // is no operation: a pending output from a different call (one that ended in
      // CKR_BUFFER_TOO_SMALL and was never repeated) is dropped, not held against this one.
      const identity = Buffer.from(JSON.stringify([mechanism, wrappingKey, key]));
      if (session.wrap.pending !== null && !isPendingFor(session.wrap.pending, 'wrap', identity)) dropPending(session.wrap);
      const { output } = await sizedOutput(session.wrap, this.owner, 'wrap', identity, capacity,
        () => session.mount.device.wrapKey(session.device, mechanism, wrappingKey, key, role));
      return output;
    });
  }

  C_UnwrapKey(handle: number, mechanism: Mechanism, givenUnwrappingKey: number, wrapped: Buffer, template: Template): Promise<number> {
    return this.run(handle, async (session, role) => {
      const unwrappingKey = this.deviceId(session, givenUnwrappingKey);
      this.checkMechanism(session, mechanism, CKF.UNWRAP);
      this.checkKeyUser(role);
      await this.object(session, role, unwrappingKey, CKR.UNWRAPPING_KEY_HANDLE_INVALID);
      this.checkNew(session, role, template, templateValue(template, CKA.CLASS) as number | undefined);
      const made = await session.mount.device.unwrapKey(session.device, mechanism, unwrappingKey, wrapped, template, role);
      await this.admit(session, role, [made]);
      return this.given(session, made);
    });
  }

  C_DeriveKey(handle: number, mechanism: Mechanism, givenBaseKey: number, template: Template): Promise<number> {
    return this.run(handle, async (session, role) => {
      const baseKey = this.deviceId(session, givenBaseKey);
      this.checkMechanism(session, mechanism, CKF.DERIVE);
      this.checkKeyUser(role);
      await this.object(session, role, baseKey, CKR.KEY_HANDLE_INVALID);
      this.checkNew(session, role, template, (templateValue(template, CKA.CLASS) as number | undefined) ?? CKO.SECRET_KEY);
      const made = await session.mount.device.deriveKey(session.device, mechanism, baseKey, template, role);
      await this.admit(session, role, [made]);
      return this.given(session, made);
    });
  }

  /** `length` null: the caller passed no buffer (CKR_ARGUMENTS_BAD once the session is known). */
  C_GenerateRandom(handle: number, length: number | null): Promise<Buffer> {
    return this.run(handle, (session) => {
      if (length === null || !Number.isInteger(length) || length < 0) throw new Pkcs11Error(CKR.ARGUMENTS_BAD);
      return session.mount.device.random(session.device, length);
    });
  }

  C_SeedRandom(handle: number, seed: Buffer): Promise<void> {
    return this.run(handle, (session) => session.mount.device.seedRandom(session.device, seed));
  }

  // --- Operations -----------------------------------------------------------------------------

  private active(session: Session, kind: OperationKind): OperationState {
    const op = session.operations.get(kind);
    if (op === undefined) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED);
    if (op.contextLogin === 'required') {
      // A CKA_ALWAYS_AUTHENTICATE key used without C_Login(CKU_CONTEXT_SPECIFIC) after its init: the operation fails, and ends.
      this.endOperation(session, kind);
      throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'the key needs a context-specific login for each operation');
    }
    return op;
  }

  private endOperation(session: Session, kind: OperationKind): void {
    const op = session.operations.get(kind);
    if (op === undefined) return;
    dropPending(op);
    session.operations.delete(kind);
    session.mount.device.operationEnd(session.device, kind);
  }

  /** Runs a step; as PKCS#11 says, any failure but CKR_BUFFER_TOO_SMALL ends the operation. */
  private async step<T>(session: Session, kind: OperationKind, body: () => Promise<T>): Promise<T> {
    try {
      return await body();
    } catch (error) {
      if (!(error instanceof BufferTooSmallError)) this.endOperation(session, kind);
      if (error instanceof Pkcs11Error) throw error;
      throw new Pkcs11Error(CKR.FUNCTION_FAILED, (error as Error).message, { cause: error });
    }
  }

  /**
   * An output a single-part call computed and the caller has not taken: an update or final now is
   * CKR_OPERATION_ACTIVE, and, as a failed update or final does, ends the operation.
   */
  private checkNoSinglePartPending(session: Session, kind: OperationKind, op: OperationState): void {
    if (op.pending?.step !== 'single') return;
    this.endOperation(session, kind);
    throw new Pkcs11Error(CKR.OPERATION_ACTIVE, 'a single-part call waits for its output to be taken');
  }

  /**
   * A single-part call (C_Sign, C_Encrypt, C_Digest, C_Verify ...) while a multi-part operation
   * is under way: CKR_OPERATION_ACTIVE, and, as any failed single-part call does (PKCS#11 3.0
   * 5.8-5.12: it "always terminates the active operation" unless CKR_BUFFER_TOO_SMALL or a
   * length query), ends the operation.
   */
  private checkNotMultiPart(session: Session, kind: OperationKind, op: OperationState): void {
    if (!op.multiPart) return;
    this.endOperation(session, kind);
    throw new Pkcs11Error(CKR.OPERATION_ACTIVE, 'a multi-part operation is under way');
  }

  private operationInit(handle: number, kind: OperationKind, mechanism: Mechanism, givenKey: number | null): Promise<void> {
    return this.run(handle, async (session, role) => {
      const key = givenKey === null ? null : this.deviceId(session, givenKey);
      if (session.operations.has(kind)) throw new Pkcs11Error(CKR.OPERATION_ACTIVE);
      this.checkMechanism(session, mechanism, KEY_USAGE_FLAG[kind]);
      if (key !== null) {
        this.checkKeyUser(role);
        await this.object(session, role, key, CKR.KEY_HANDLE_INVALID);
      }
      const contextLogin = await session.mount.device.operationInit(session.device, kind, mechanism, key, role);
      session.operations.set(kind, { mechanism, multiPart: false, pending: null, contextLogin });
    });
  }

  private single(handle: number, kind: Exclude<OperationKind, 'verify'>, data: Buffer, capacity: Capacity): Promise<Buffer> {
    return this.run(handle, async (session) => {
      const op = this.active(session, kind);
      this.checkNotMultiPart(session, kind, op);
      return this.step(session, kind, async () => {
        const { output, delivered } = await sizedOutput(op, this.owner, 'single', data, capacity,
          () => session.mount.device.operationSingle(session.device, kind, data));
        if (delivered) this.endOperation(session, kind);
        return output;
      });
    });
  }

  /** Single-part mechanisms (raw ECDSA, RSA PKCS#1, key wrap) end the operation on C_xxxUpdate and C_xxxFinal, as SoftHSM does. */
  private refuseMultiPart(session: Session, kind: OperationKind, op: OperationState): void {
    if (!session.mount.device.singlePartMechanisms.has(op.mechanism.type)) return;
    this.endOperation(session, kind);
    throw new Pkcs11Error(CKR.FUNCTION_NOT_SUPPORTED, 'single-part mechanism');
  }

  private update(handle: number, kind: OperationKind, data: Buffer, capacity: Capacity): Promise<Buffer> {
    return this.run(handle, async (session) => {
      const op = this.active(session, kind);
      this.refuseMultiPart(session, kind, op);
      this.checkNoSinglePartPending(session, kind, op);
      op.multiPart = true;
      return this.step(session, kind, async () => {
        const { output } = await sizedOutput(op, this.owner, 'update', data, capacity,
          async () => (await session.mount.device.operationUpdate(session.device, kind, data)) ?? EMPTY);
        return output;
      });
    });
  }

  private final(handle: number, kind: Exclude<OperationKind, 'verify'>, capacity: Capacity): Promise<Buffer> {
    return this.run(handle, async (session) => {
      const op = this.active(session, kind);
      this.refuseMultiPart(session, kind, op);
      this.checkNoSinglePartPending(session, kind, op);
      return this.step(session, kind, async () => {
        const { output, delivered } = await sizedOutput(op, this.owner, 'final', EMPTY, capacity, () => session.mount.device.operationFinal(session.device, kind));
        if (delivered) this.endOperation(session, kind);
        return output;
      });
    });
  }

  /**
   * C_SessionCancel (PKCS#11 3.0): ends the session's active operations that `flags` names, by
   * their mechanism-info flags (CKF_SIGN, CKF_ENCRYPT ...) and CKF_FIND_OBJECTS for a search; a
   * flag for an operation not active, or one this token has no operation for, is ignored. The
   * client module calls it for the CKR_ARGUMENTS_BAD it finds itself (a NULL length pointer),
   * which PKCS#11 says ends the operation as any other failure does.
   */
  C_SessionCancel(handle: number, flags: number): Promise<void> {
    return this.run(handle, (session) => {
      for (const kind of Object.keys(KEY_USAGE_FLAG) as OperationKind[]) {
        if ((flags & KEY_USAGE_FLAG[kind]) !== 0) this.endOperation(session, kind);
      }
      if ((flags & CKF.FIND_OBJECTS) !== 0) this.endFind(session);
    });
  }

  C_SignInit(handle: number, mechanism: Mechanism, key: number): Promise<void> { return this.operationInit(handle, 'sign', mechanism, key); }
  C_Sign(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.single(handle, 'sign', data, capacity); }
  async C_SignUpdate(handle: number, data: Buffer): Promise<void> { await this.update(handle, 'sign', data, undefined); }
  C_SignFinal(handle: number, capacity?: Capacity): Promise<Buffer> { return this.final(handle, 'sign', capacity); }

  C_VerifyInit(handle: number, mechanism: Mechanism, key: number): Promise<void> { return this.operationInit(handle, 'verify', mechanism, key); }

  /** C_Verify: CKR_SIGNATURE_INVALID when the signature does not verify; the operation ends either way. */
  C_Verify(handle: number, data: Buffer, signature: Buffer): Promise<void> {
    return this.run(handle, async (session) => {
      this.checkNotMultiPart(session, 'verify', this.active(session, 'verify'));
      await this.step(session, 'verify', () => session.mount.device.verify(session.device, data, signature));
      this.endOperation(session, 'verify');
    });
  }

  async C_VerifyUpdate(handle: number, data: Buffer): Promise<void> { await this.update(handle, 'verify', data, undefined); }

  C_VerifyFinal(handle: number, signature: Buffer): Promise<void> {
    return this.run(handle, async (session) => {
      this.refuseMultiPart(session, 'verify', this.active(session, 'verify'));
      await this.step(session, 'verify', () => session.mount.device.verify(session.device, null, signature));
      this.endOperation(session, 'verify');
    });
  }

  C_EncryptInit(handle: number, mechanism: Mechanism, key: number): Promise<void> { return this.operationInit(handle, 'encrypt', mechanism, key); }
  C_Encrypt(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.single(handle, 'encrypt', data, capacity); }
  C_EncryptUpdate(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.update(handle, 'encrypt', data, capacity); }
  C_EncryptFinal(handle: number, capacity?: Capacity): Promise<Buffer> { return this.final(handle, 'encrypt', capacity); }

  C_DecryptInit(handle: number, mechanism: Mechanism, key: number): Promise<void> { return this.operationInit(handle, 'decrypt', mechanism, key); }
  C_Decrypt(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.single(handle, 'decrypt', data, capacity); }
  C_DecryptUpdate(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.update(handle, 'decrypt', data, capacity); }
  C_DecryptFinal(handle: number, capacity?: Capacity): Promise<Buffer> { return this.final(handle, 'decrypt', capacity); }

  C_DigestInit(handle: number, mechanism: Mechanism): Promise<void> { return this.operationInit(handle, 'digest', mechanism, null); }
  C_Digest(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.single(handle, 'digest', data, capacity); }
  async C_DigestUpdate(handle: number, data: Buffer): Promise<void> { await this.update(handle, 'digest', data, undefined); }
  C_DigestFinal(handle: number, capacity?: Capacity): Promise<Buffer> { return this.final(handle, 'digest', capacity); }

  /**
   * C_DigestKey: feeds a secret key's value into the digest (the key is not revealed). A handle
   * that names no key this caller sees is CKR_KEY_HANDLE_INVALID before the digest is touched, and
   * the digest goes on (PKCS#11 ends a digest on a failed C_DigestUpdate, not on this argument).
   */
  C_DigestKey(handle: number, givenKey: number): Promise<void> {
    return this.run(handle, async (session, role) => {
      const key = this.deviceId(session, givenKey);
      const op = this.active(session, 'digest');
      this.checkNoSinglePartPending(session, 'digest', op);
      await this.object(session, role, key, CKR.KEY_HANDLE_INVALID);
      op.multiPart = true;
      op.keyed = true;
      await this.step(session, 'digest', () => session.mount.device.digestKey(session.device, key, role));
    });
  }
}

export { CKU_CRYPTO_USER };
