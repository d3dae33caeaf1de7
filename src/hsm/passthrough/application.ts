// One client application on the PKCS#11 passthrough backend. The module sees ntls as a single
// application, so the isolation PKCS#11 promises between applications is kept here:
//   - session handles are ntls's own, mapped to the module's; another client's are invalid;
//   - an object handle is usable only once this client has learned it (found, created,
//     generated, unwrapped, derived) and only while it may see the object: private objects
//     while it is logged in, session objects only those its own sessions made;
//   - login state is the client's own (TokenLink), and session states are reported from it;
//   - an object a client makes while not logged in must not be private: the module, logged in
//     for someone else, would accept it, so it is destroyed again and CKR_USER_NOT_LOGGED_IN.
// The module's return codes reach the client unchanged otherwise.
import { CKA, CKF, CKR, CKS, CKU, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import { attributeKind, attributeLength, type AttributeValue, type Template } from '../attributes.js';
import type { TokenApplication } from '../backend.js';
import type { LibraryInfo, SlotInfo, TokenInfo } from '../hsm.js';
import type { SessionInfo } from '../application.js';
import type { MechanismInfo } from '../mechanisms/contract.js';
import type { AttributeReadout, AttributeRequest, AttributeResult } from '../object-calls.js';
import type { KeyPairHandles } from '../key-calls.js';
import type { Pin } from '../login.js';
import { sizedOutput, type Capacity, type Holder } from '../output.js';
import type { PendingOutput } from '../session.js';
import type { CryptoStep, ObjectFacts } from './host-protocol.js';
import type { TokenLink } from './token-link.js';

export interface PassthroughContext {
  tokens: readonly TokenLink[];
  libraryInfo: LibraryInfo;
  newSessionHandle(): number;
  dropApplication(id: string): void;
}

interface OpenSession extends Holder {
  handle: number;
  slot: number;
  token: TokenLink;
  module: number;
  flags: number;
  generation: number;
  pending: PendingOutput | null;
  found: number[] | null;
}

interface KnownObject {
  token: boolean;
  private: boolean;
  /** The client session that made it, for a session object. */
  session: number | null;
}

const EMPTY = Buffer.alloc(0);
const pinText = (pin: Pin): string => (Buffer.isBuffer(pin) ? pin.toString('utf8') : pin);

/** The module's bytes as the attribute's kind (the HSM's typed values); unknown types stay bytes. */
function typedValue(type: number, raw: Buffer): AttributeValue {
  switch (attributeKind(type)) {
    case 'bool': return raw.length > 0 && raw[0] !== 0;
    case 'ulong': return raw.length === 8 ? Number(raw.readBigUInt64LE()) : raw.length === 4 ? raw.readUInt32LE() : raw;
    case 'mechanisms': {
      const list: number[] = [];
      for (let at = 0; at + 8 <= raw.length; at += 8) list.push(Number(raw.readBigUInt64LE(at)));
      return list;
    }
    // The module's CK_ATTRIBUTE array holds its own pointers; what it says cannot travel.
    case 'template': return [];
    default: return raw;
  }
}

export class PassthroughApplication implements TokenApplication {
  private readonly sessions = new Map<number, OpenSession>();
  private readonly known = new Map<TokenLink, Map<number, KnownObject>>();

  constructor(private readonly context: PassthroughContext, readonly id: string) {}

  finalize(): void {
    for (const session of [...this.sessions.values()]) void this.close(session).catch(() => undefined);
    this.context.dropApplication(this.id);
  }

  // --- Slots and tokens ----------------------------------------------------------------------

  private token(slotId: number): TokenLink {
    const token = Number.isInteger(slotId) ? this.context.tokens[slotId] : undefined;
    if (!token) throw new Pkcs11Error(CKR.SLOT_ID_INVALID);
    return token;
  }

  private liveToken(slotId: number): TokenLink {
    const token = this.token(slotId);
    if (!token.host.available || !token.ready) throw new Pkcs11Error(CKR.DEVICE_ERROR, `the module host of partition ${token.mapping.partition} is down`);
    return token;
  }

  C_GetInfo(): LibraryInfo {
    return this.context.libraryInfo;
  }

  async C_GetSlotInfo(slotId: number): Promise<SlotInfo> {
    const token = this.token(slotId);
    if (!token.host.available) {
      // A host that is down is a slot whose token was removed.
      return { slotDescription: `NTLS partition ${token.mapping.partition}`, manufacturerID: 'NTLS', flags: CKF.HW_SLOT, hardwareVersion: { major: 0, minor: 0 }, firmwareVersion: { major: 0, minor: 0 } };
    }
    return await token.host.request('slotInfo');
  }

  async C_GetTokenInfo(slotId: number): Promise<TokenInfo> {
    const token = this.liveToken(slotId);
    const t = await token.host.request('tokenInfo');
    return { ...t, totalPublicMemory: null, freePublicMemory: null, totalPrivateMemory: null, freePrivateMemory: null };
  }

  C_GetMechanismList(slotId: number): number[] {
    return [...this.liveToken(slotId).mechanisms.keys()].sort((a, b) => a - b);
  }

  C_GetMechanismInfo(slotId: number, type: number): MechanismInfo {
    const info = this.liveToken(slotId).mechanisms.get(type);
    if (!info) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
    return { ...info };
  }

  async C_InitToken(slotId: number, soPin: Pin, label: string): Promise<void> {
    const token = this.liveToken(slotId);
    if (token.sessionOwners.size > 0) throw new Pkcs11Error(CKR.SESSION_EXISTS);
    await token.host.request('initToken', pinText(soPin), label);
    token.reset();
    this.known.delete(token);
  }

  // --- Sessions ------------------------------------------------------------------------------

  async C_OpenSession(slotId: number, flags: number): Promise<number> {
    const token = this.liveToken(slotId);
    const module = await token.host.request('openSession', flags);
    const handle = this.context.newSessionHandle();
    this.sessions.set(handle, { handle, slot: slotId, token, module, flags, generation: token.generation, pending: null, found: null });
    token.sessionOwners.set(module, this.id);
    return handle;
  }

  async C_CloseSession(handle: number): Promise<void> {
    await this.close(this.session(handle));
  }

  async C_CloseAllSessions(slotId: number): Promise<void> {
    const token = this.token(slotId);
    for (const session of [...this.sessions.values()]) if (session.token === token) await this.close(session).catch(() => undefined);
  }

  C_GetSessionInfo(handle: number): SessionInfo {
    const session = this.session(handle);
    const rw = (session.flags & CKF.RW_SESSION) !== 0;
    const role = session.token.roleOf(this.id);
    const state = role === 'so' ? CKS.RW_SO_FUNCTIONS
      : role === 'user' ? (rw ? CKS.RW_USER_FUNCTIONS : CKS.RO_USER_FUNCTIONS)
        : (rw ? CKS.RW_PUBLIC_SESSION : CKS.RO_PUBLIC_SESSION);
    return { slotID: session.slot, state, flags: session.flags, deviceError: 0 };
  }

  private async close(session: OpenSession): Promise<void> {
    this.sessions.delete(session.handle);
    const { token } = session;
    const current = session.generation === token.generation;
    if (current) token.sessionOwners.delete(session.module);
    // The module destroys the session's objects with it.
    const known = this.known.get(token);
    if (known) for (const [handle, object] of known) if (object.session === session.handle) known.delete(handle);
    if (current) await token.host.request('closeSession', session.module);
    // PKCS#11: closing an application's last session on a token logs it out there.
    if (current && ![...this.sessions.values()].some((s) => s.token === token) && token.roleOf(this.id) !== null) {
      await this.logout(token);
    }
  }

  private session(handle: number): OpenSession {
    const session = this.sessions.get(handle);
    if (!session) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
    if (session.generation !== session.token.generation) {
      // The module host was lost: the module's sessions are gone with it.
      this.sessions.delete(handle);
      throw new Pkcs11Error(session.token.host.available ? CKR.SESSION_HANDLE_INVALID : CKR.DEVICE_ERROR);
    }
    return session;
  }

  // --- Login -----------------------------------------------------------------------------------

  async C_Login(handle: number, userType: number, pin: Pin): Promise<void> {
    const session = this.session(handle);
    if (userType === CKU.CONTEXT_SPECIFIC) {
      await session.token.host.request('login', userType, pinText(pin), session.module);
      return;
    }
    if (userType === CKU.SO && [...this.sessions.values()].some((s) => s.token === session.token && (s.flags & CKF.RW_SESSION) === 0)) {
      throw new Pkcs11Error(CKR.SESSION_READ_ONLY_EXISTS);
    }
    await session.token.loginClient(this.id, userType, pinText(pin));
  }

  async C_Logout(handle: number): Promise<void> {
    await this.logout(this.session(handle).token);
  }

  /** Private token objects stay known (usable after the next login); private session objects go, as on the built-in HSM. */
  private async logout(token: TokenLink): Promise<void> {
    await token.logoutClient(this.id);
    const known = this.known.get(token);
    if (!known) return;
    for (const [handle, object] of known) {
      if (!object.private || object.session === null) continue;
      known.delete(handle);
      const session = this.sessions.get(object.session);
      if (session) await token.host.request('destroyObject', session.module, handle).catch(() => undefined);
    }
  }

  async C_InitPIN(handle: number, pin: Pin): Promise<void> {
    const session = this.session(handle);
    if (session.token.roleOf(this.id) !== 'so') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
    await session.token.host.request('initPin', session.module, pinText(pin));
  }

  async C_SetPIN(handle: number, oldPin: Pin, newPin: Pin): Promise<void> {
    const session = this.session(handle);
    const { token } = session;
    const role = token.roleOf(this.id);
    // The module changes the PIN of whoever it is logged in as: only that role's own client may.
    if (role === null && token.login !== 'none') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
    await token.host.request('setPin', session.module, pinText(oldPin), pinText(newPin));
    if (role !== 'so') token.pinChanged(pinText(newPin));
  }

  // --- Objects -------------------------------------------------------------------------------

  private knownOn(token: TokenLink): Map<number, KnownObject> {
    let known = this.known.get(token);
    if (!known) {
      known = new Map();
      this.known.set(token, known);
    }
    return known;
  }

  /** The module's handle of an object this client may use in this session. */
  private object(session: OpenSession, handle: number): number {
    const object = this.known.get(session.token)?.get(handle);
    if (!object) throw new Pkcs11Error(CKR.OBJECT_HANDLE_INVALID);
    if (object.private && session.token.roleOf(this.id) === null) throw new Pkcs11Error(CKR.OBJECT_HANDLE_INVALID);
    return handle;
  }

  private key(session: OpenSession, handle: number): number {
    try {
      return this.object(session, handle);
    } catch {
      throw new Pkcs11Error(CKR.KEY_HANDLE_INVALID);
    }
  }

  /** Takes objects the module just made for this client, or takes them back (see the head). */
  private async admit(session: OpenSession, made: readonly ObjectFacts[]): Promise<void> {
    if (session.token.roleOf(this.id) === null && made.some((o) => o.private)) {
      for (const o of made) await session.token.host.request('destroyObject', session.module, o.handle).catch(() => undefined);
      throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'a private object needs a login');
    }
    const known = this.knownOn(session.token);
    for (const o of made) known.set(o.handle, { token: o.token, private: o.private, session: o.token ? null : session.handle });
  }

  async C_CreateObject(handle: number, template: Template): Promise<number> {
    const session = this.session(handle);
    const made = await session.token.host.request('createObject', session.module, template);
    await this.admit(session, [made]);
    return made.handle;
  }

  async C_CopyObject(handle: number, object: number, template: Template): Promise<number> {
    const session = this.session(handle);
    const made = await session.token.host.request('copyObject', session.module, this.object(session, object), template);
    await this.admit(session, [made]);
    return made.handle;
  }

  async C_DestroyObject(handle: number, object: number): Promise<void> {
    const session = this.session(handle);
    await session.token.host.request('destroyObject', session.module, this.object(session, object));
    this.known.get(session.token)?.delete(object);
  }

  async C_GetAttributeValue(handle: number, object: number, requests: readonly AttributeRequest[]): Promise<AttributeReadout> {
    const session = this.session(handle);
    const raw = await session.token.host.request('getAttributes', session.module, this.object(session, object), requests.map((r) => r.type));
    let rv: number = CKR.OK;
    const attributes = requests.map((request, i): AttributeResult => {
      const read = raw[i]!;
      if (read.value === null) {
        if (rv === CKR.OK) rv = read.rv;
        return { type: request.type, value: null, length: null };
      }
      const value = typedValue(request.type, read.value);
      const length = attributeLength(value);
      if (request.length === null) return { type: request.type, value: null, length };
      if (request.length !== undefined && request.length < length) {
        if (rv === CKR.OK) rv = CKR.BUFFER_TOO_SMALL;
        return { type: request.type, value: null, length: null };
      }
      return { type: request.type, value, length };
    });
    return { rv, attributes };
  }

  async C_SetAttributeValue(handle: number, object: number, template: Template): Promise<void> {
    const session = this.session(handle);
    const moduleObject = this.object(session, object);
    await session.token.host.request('setAttributes', session.module, moduleObject, template);
    // Only these two decide who may see the object.
    if (!template.some((a) => a.type === CKA.TOKEN || a.type === CKA.PRIVATE)) return;
    const facts = await session.token.host.request('facts', session.module, moduleObject);
    const known = this.knownOn(session.token);
    const before = known.get(object);
    known.set(object, { token: facts.token, private: facts.private, session: facts.token ? null : before?.session ?? session.handle });
  }

  async C_FindObjectsInit(handle: number, template: Template): Promise<void> {
    const session = this.session(handle);
    if (session.found !== null) throw new Pkcs11Error(CKR.OPERATION_ACTIVE);
    const all = await session.token.host.request('findAll', session.module, template);
    const loggedIn = session.token.roleOf(this.id) !== null;
    const known = this.knownOn(session.token);
    const visible = all.filter((o) => {
      if (o.private && !loggedIn) return false;
      if (o.token) return true;
      // A session object is visible to the application whose session made it.
      const mine = known.get(o.handle);
      return mine !== undefined && mine.session !== null && this.sessions.has(mine.session);
    });
    for (const o of visible) if (o.token) known.set(o.handle, { token: true, private: o.private, session: null });
    session.found = visible.map((o) => o.handle);
  }

  async C_FindObjects(handle: number, maxCount: number): Promise<number[]> {
    const session = this.session(handle);
    if (session.found === null) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED);
    return session.found.splice(0, Math.max(0, maxCount));
  }

  async C_FindObjectsFinal(handle: number): Promise<void> {
    const session = this.session(handle);
    if (session.found === null) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED);
    session.found = null;
  }

  // --- Keys ----------------------------------------------------------------------------------

  async C_GenerateKey(handle: number, mechanism: Mechanism, template: Template): Promise<number> {
    const session = this.session(handle);
    const made = await session.token.host.request('generateKey', session.module, mechanism, template);
    await this.admit(session, [made]);
    return made.handle;
  }

  async C_GenerateKeyPair(handle: number, mechanism: Mechanism, publicTemplate: Template, privateTemplate: Template): Promise<KeyPairHandles> {
    const session = this.session(handle);
    const pair = await session.token.host.request('generateKeyPair', session.module, mechanism, publicTemplate, privateTemplate);
    await this.admit(session, [pair.publicKey, pair.privateKey]);
    return { publicKey: pair.publicKey.handle, privateKey: pair.privateKey.handle };
  }

  async C_WrapKey(handle: number, mechanism: Mechanism, wrappingKey: number, key: number, capacity?: Capacity): Promise<Buffer> {
    const session = this.session(handle);
    const wrapping = this.key(session, wrappingKey);
    const wrapped = this.key(session, key);
    return await this.sized(session, 'wrap', EMPTY, capacity, () => session.token.host.request('wrapKey', session.module, mechanism, wrapping, wrapped));
  }

  async C_UnwrapKey(handle: number, mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: Template): Promise<number> {
    const session = this.session(handle);
    const made = await session.token.host.request('unwrapKey', session.module, mechanism, this.key(session, unwrappingKey), wrapped, template);
    await this.admit(session, [made]);
    return made.handle;
  }

  async C_DeriveKey(handle: number, mechanism: Mechanism, baseKey: number, template: Template): Promise<number> {
    const session = this.session(handle);
    const made = await session.token.host.request('deriveKey', session.module, mechanism, this.key(session, baseKey), template);
    await this.admit(session, [made]);
    return made.handle;
  }

  async C_GenerateRandom(handle: number, length: number): Promise<Buffer> {
    const session = this.session(handle);
    return await session.token.host.request('random', session.module, length);
  }

  async C_SeedRandom(handle: number, seed: Buffer): Promise<void> {
    const session = this.session(handle);
    await session.token.host.request('seedRandom', session.module, seed);
  }

  // --- Cryptographic operations ----------------------------------------------------------------

  private async init(step: CryptoStep, handle: number, mechanism: Mechanism, key: number | null): Promise<void> {
    const session = this.session(handle);
    const moduleKey = key === null ? null : this.key(session, key);
    session.pending = null;
    await session.token.host.request('cryptoInit', step, session.module, mechanism, moduleKey);
  }

  /** PKCS#11's output-buffer rules (length query, too small) over a module call made once. */
  private async sized(session: OpenSession, step: string, input: Buffer, capacity: Capacity, compute: () => Promise<Buffer>): Promise<Buffer> {
    return (await sizedOutput(session, step, input, capacity, compute)).output;
  }

  private single(step: CryptoStep, handle: number, data: Buffer, capacity: Capacity): Promise<Buffer> {
    const session = this.session(handle);
    return this.sized(session, `${step}:single`, data, capacity, () => session.token.host.request('single', step, session.module, data));
  }

  private update(step: CryptoStep, handle: number, data: Buffer, capacity: Capacity): Promise<Buffer> {
    const session = this.session(handle);
    return this.sized(session, `${step}:update`, data, capacity, async () => (await session.token.host.request('update', step, session.module, data)) ?? EMPTY);
  }

  private final(step: CryptoStep, handle: number, capacity: Capacity): Promise<Buffer> {
    const session = this.session(handle);
    return this.sized(session, `${step}:final`, EMPTY, capacity, () => session.token.host.request('final', step, session.module));
  }

  C_SignInit(handle: number, mechanism: Mechanism, key: number): Promise<void> { return this.init('sign', handle, mechanism, key); }
  C_Sign(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.single('sign', handle, data, capacity); }
  async C_SignUpdate(handle: number, data: Buffer): Promise<void> { await this.update('sign', handle, data, undefined); }
  C_SignFinal(handle: number, capacity?: Capacity): Promise<Buffer> { return this.final('sign', handle, capacity); }

  C_VerifyInit(handle: number, mechanism: Mechanism, key: number): Promise<void> { return this.init('verify', handle, mechanism, key); }
  async C_Verify(handle: number, data: Buffer, signature: Buffer): Promise<void> {
    const session = this.session(handle);
    await session.token.host.request('verify', session.module, data, signature);
  }
  async C_VerifyUpdate(handle: number, data: Buffer): Promise<void> { await this.update('verify', handle, data, undefined); }
  async C_VerifyFinal(handle: number, signature: Buffer): Promise<void> {
    const session = this.session(handle);
    await session.token.host.request('verifyFinal', session.module, signature);
  }

  C_EncryptInit(handle: number, mechanism: Mechanism, key: number): Promise<void> { return this.init('encrypt', handle, mechanism, key); }
  C_Encrypt(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.single('encrypt', handle, data, capacity); }
  C_EncryptUpdate(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.update('encrypt', handle, data, capacity); }
  C_EncryptFinal(handle: number, capacity?: Capacity): Promise<Buffer> { return this.final('encrypt', handle, capacity); }

  C_DecryptInit(handle: number, mechanism: Mechanism, key: number): Promise<void> { return this.init('decrypt', handle, mechanism, key); }
  C_Decrypt(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.single('decrypt', handle, data, capacity); }
  C_DecryptUpdate(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.update('decrypt', handle, data, capacity); }
  C_DecryptFinal(handle: number, capacity?: Capacity): Promise<Buffer> { return this.final('decrypt', handle, capacity); }

  C_DigestInit(handle: number, mechanism: Mechanism): Promise<void> { return this.init('digest', handle, mechanism, null); }
  C_Digest(handle: number, data: Buffer, capacity?: Capacity): Promise<Buffer> { return this.single('digest', handle, data, capacity); }
  async C_DigestUpdate(handle: number, data: Buffer): Promise<void> { await this.update('digest', handle, data, undefined); }
  async C_DigestKey(handle: number, key: number): Promise<void> {
    const session = this.session(handle);
    await session.token.host.request('digestKey', session.module, this.key(session, key));
  }
  C_DigestFinal(handle: number, capacity?: Capacity): Promise<Buffer> { return this.final('digest', handle, capacity); }
}
