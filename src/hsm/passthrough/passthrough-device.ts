// The PKCS#11 passthrough device: each ntls partition is a token of a PKCS#11 module the
// configuration names (found by label or serial, never by slot number), served through a module
// host process of its own. Slots are the partitions in configuration order.
//
// The module sees ntls as a single application; the token model above keeps each client's
// sessions, login and view apart. What is left here: one module session per model session, the
// module's login shared by the clients logged in (TokenLink), object facts learned from the
// module, attribute values typed from its bytes. The module's return codes pass through.
import { NtlsError } from '../../errors/ntls-error.js';
import { Catalogue } from '../../log/catalogue.js';
import type { Logger } from '../../log/logger.js';
import { attributeKind, type AttributeValue, type Template } from '../../pkcs11/attributes.js';
import { CKA, CKF, CKR, CKU, Pkcs11Error } from '../../pkcs11/constants.js';
import { UNAVAILABLE_INFORMATION, type LibraryInfo, type MechanismInfo, type SlotInfo, type TokenInfo } from '../../pkcs11/info.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import type {
  AttributeRead, ContextLogin, Caller, Device, DeviceSession, DeviceToken, ObjectFacts, OperationKind,
} from '../../token/device.js';
import type { Role } from '../../token/roles.js';
import { TokenLink, type TokenMapping } from './token-link.js';

export interface PassthroughOptions {
  module: string;
  tokens: readonly TokenMapping[];
  callTimeoutMs: number;
  /** Wrong PINs ntls checks itself (see TokenLink) before it answers CKR_PIN_LOCKED. */
  maxFailedLogins?: number;
  logger?: Logger;
}

/** The module or a token could not be used at start: the service does not start. */
export class PassthroughStartError extends NtlsError {
  constructor(readonly partition: string, readonly rv: number | null, message: string) {
    super('NTLS_ERR_PKCS11_START', message, { hint: 'check hsm.pkcs11 (the module path, the tokens\' labels or serials) and the module\'s own configuration' });
  }
}

const LIBRARY_INFO: LibraryInfo = {
  cryptokiVersion: { major: 2, minor: 40 }, manufacturerId: 'NTLS', flags: 0,
  libraryDescription: 'NTLS network HSM (PKCS#11 module)', libraryVersion: { major: 0, minor: 1 },
};

export interface PassthroughSession extends DeviceSession {
  readonly token: TokenLink;
  /** The module's session handle. */
  readonly module: number;
  /** The host's generation it was opened in: a lost host took it with it. */
  readonly generation: number;
  /** The operations the model holds active; any other the module still runs, the model ended. */
  readonly active: Set<OperationKind>;
}

const NO_SINGLE_PART = new Set<number>();
const STALE_KINDS: readonly OperationKind[] = ['sign', 'verify', 'encrypt', 'decrypt', 'digest'];
const ONE_BYTE = Buffer.alloc(1);

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

const pinText = (pin: Buffer): string => pin.toString('utf8');

function userType(role: Role): number {
  if (role === 'so') return CKU.SO;
  if (role === 'co') return CKU.USER;
  throw new Pkcs11Error(CKR.USER_TYPE_INVALID, 'a PKCS#11 module has no Crypto User');
}

export class PassthroughDevice implements Device<PassthroughSession> {
  readonly kind = 'pkcs11' as const;
  readonly libraryInfo = LIBRARY_INFO;
  readonly singlePartMechanisms: ReadonlySet<number> = NO_SINGLE_PART;

  private constructor(readonly links: readonly TokenLink[], readonly module: string) {}

  /** Starts one module host per partition; logs "Fail to initialize token interface" and throws when one cannot start. */
  static async open(options: PassthroughOptions): Promise<PassthroughDevice> {
    const links = options.tokens.map((mapping) => new TokenLink(mapping, options.module, options.callTimeoutMs, options.maxFailedLogins ?? 10, options.logger));
    const started = await Promise.allSettled(links.map((t) => t.start()));
    const failed = started.findIndex((s) => s.status === 'rejected');
    if (failed >= 0) {
      await Promise.all(links.map((t) => t.close()));
      options.logger?.log(Catalogue.tokenInterfaceInitFailed);
      const reason = (started[failed] as PromiseRejectedResult).reason as Error & { rv?: number };
      throw new PassthroughStartError(links[failed]!.mapping.partition, reason.rv ?? null,
        `partition ${links[failed]!.mapping.partition}: ${options.module}: ${reason.message}`);
    }
    return new PassthroughDevice(links, options.module);
  }

  async close(): Promise<void> {
    await Promise.all(this.links.map((t) => t.close()));
  }

  tokens(): DeviceToken[] {
    return this.links.map((link, slot) => ({
      slot,
      serial: link.info?.serialNumber ?? link.mapping.serial ?? '',
      name: link.mapping.partition,
      label: link.info?.label ?? link.mapping.label ?? '',
      initialized: link.info ? (link.info.flags & CKF.TOKEN_INITIALIZED) !== 0 : false,
      tokenObjects: null,
    }));
  }

  private link(slot: number): TokenLink {
    const link = Number.isInteger(slot) ? this.links[slot] : undefined;
    if (!link) throw new Pkcs11Error(CKR.SLOT_ID_INVALID);
    return link;
  }

  private liveLink(slot: number): TokenLink {
    const link = this.link(slot);
    if (!link.host.available || !link.ready) throw new Pkcs11Error(CKR.DEVICE_ERROR, `the module host of partition ${link.mapping.partition} is down`);
    return link;
  }

  async slotInfo(slot: number): Promise<SlotInfo> {
    const link = this.link(slot);
    if (!link.host.available) {
      // A host that is down is a slot whose token was removed.
      return { slotDescription: `NTLS partition ${link.mapping.partition}`, manufacturerId: 'NTLS', flags: CKF.HW_SLOT, hardwareVersion: { major: 0, minor: 0 }, firmwareVersion: { major: 0, minor: 0 } };
    }
    return await link.host.request('slotInfo');
  }

  async tokenInfo(slot: number): Promise<TokenInfo> {
    const t = await this.liveLink(slot).host.request('tokenInfo');
    return {
      ...t, totalPublicMemory: UNAVAILABLE_INFORMATION, freePublicMemory: UNAVAILABLE_INFORMATION,
      totalPrivateMemory: UNAVAILABLE_INFORMATION, freePrivateMemory: UNAVAILABLE_INFORMATION,
    };
  }

  mechanismsOf(slot: number): ReadonlyMap<number, MechanismInfo> {
    return this.liveLink(slot).mechanisms;
  }

  /** The module decides; the token model checks what it made. */
  defaultPrivate(): null {
    return null;
  }

  // --- Tokens and PINs ------------------------------------------------------------------------------

  async initToken(slot: number, soPin: Buffer, label: string): Promise<void> {
    const link = this.liveLink(slot);
    if (link.moduleSessions.size > 0) throw new Pkcs11Error(CKR.SESSION_EXISTS);
    await link.host.request('initToken', pinText(soPin), label);
    link.reset();
  }

  login(slot: number, role: Role, pin: Buffer, holder: string): Promise<void> {
    return this.liveLink(slot).loginClient(holder, userType(role), pinText(pin));
  }

  async logout(slot: number, holder: string): Promise<void> {
    const link = this.link(slot);
    if (link.roleOf(holder) !== null) await link.logoutClient(holder);
  }

  async setUserPin(session: PassthroughSession, role: 'co' | 'cu', pin: Buffer): Promise<void> {
    if (role === 'cu') throw new Pkcs11Error(CKR.FUNCTION_NOT_SUPPORTED, 'a PKCS#11 module has no Crypto User');
    const { token, module } = this.check(session);
    await token.host.request('initPin', module, pinText(pin));
  }

  async changePin(session: PassthroughSession, oldPin: Buffer, newPin: Buffer, caller: Caller): Promise<void> {
    const { token, module } = this.check(session);
    // The module changes the PIN of whoever it is logged in as: only that role's own client may.
    if (caller === null && token.login !== 'none') throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN);
    await token.host.request('setPin', module, pinText(oldPin), pinText(newPin));
    if (caller !== 'so') token.pinChanged(pinText(newPin));
  }

  // --- Sessions -------------------------------------------------------------------------------------

  async openSession(slot: number, readWrite: boolean): Promise<PassthroughSession> {
    const token = this.liveLink(slot);
    const flags = CKF.SERIAL_SESSION | (readWrite ? CKF.RW_SESSION : 0);
    const module = await token.host.request('openSession', flags);
    token.moduleSessions.add(module);
    return { slot, readWrite, token, module, generation: token.generation, active: new Set() };
  }

  async closeSession(session: PassthroughSession): Promise<void> {
    const { token } = session;
    if (session.generation !== token.generation) return;
    token.moduleSessions.delete(session.module);
    // The module destroys the session's objects with it.
    for (const [handle, facts] of token.facts) if (!facts.token) token.facts.delete(handle);
    await token.host.request('closeSession', session.module);
  }

  /** A lost host took the module's sessions with it. */
  assertOpen(session: PassthroughSession): void {
    if (session.generation !== session.token.generation) {
      throw new Pkcs11Error(session.token.host.available ? CKR.SESSION_HANDLE_INVALID : CKR.DEVICE_ERROR);
    }
  }

  private check(session: PassthroughSession): PassthroughSession {
    this.assertOpen(session);
    return session;
  }

  private learned(session: PassthroughSession, made: ObjectFacts): ObjectFacts {
    session.token.facts.set(made.handle, made);
    return made;
  }

  // --- Objects --------------------------------------------------------------------------------------

  async facts(session: PassthroughSession, handle: number): Promise<ObjectFacts | null> {
    const { token, module } = this.check(session);
    const known = token.facts.get(handle);
    if (known) return known;
    try {
      return this.learned(session, await token.host.request('facts', module, handle));
    } catch (error) {
      if (error instanceof Pkcs11Error && error.rv === CKR.OBJECT_HANDLE_INVALID) return null;
      throw error;
    }
  }

  async createObject(session: PassthroughSession, template: Template): Promise<ObjectFacts> {
    const { token, module } = this.check(session);
    return this.learned(session, await token.host.request('createObject', module, template));
  }

  async copyObject(session: PassthroughSession, handle: number, template: Template): Promise<ObjectFacts> {
    const { token, module } = this.check(session);
    return this.learned(session, await token.host.request('copyObject', module, handle, template));
  }

  async destroyObject(session: PassthroughSession, handle: number): Promise<void> {
    const { token, module } = this.check(session);
    await token.host.request('destroyObject', module, handle);
    token.facts.delete(handle);
  }

  async readAttributes(session: PassthroughSession, handle: number, types: readonly number[]): Promise<AttributeRead[]> {
    const { token, module } = this.check(session);
    const raw = await token.host.request('getAttributes', module, handle, [...types]);
    return raw.map((read, i): AttributeRead => (read.value === null ? { rv: read.rv } : { value: typedValue(types[i]!, read.value) }));
  }

  async writeAttributes(session: PassthroughSession, handle: number, template: Template): Promise<ObjectFacts> {
    const { token, module } = this.check(session);
    await token.host.request('setAttributes', module, handle, template);
    const known = token.facts.get(handle);
    // Only these two decide who may see the object.
    if (known && !template.some((a) => a.type === CKA.TOKEN || a.type === CKA.PRIVATE)) return known;
    return this.learned(session, await token.host.request('facts', module, handle));
  }

  async find(session: PassthroughSession, template: Template): Promise<ObjectFacts[]> {
    const { token, module } = this.check(session);
    const found = await this.afterStaleOperations(session, () => token.host.request('findAll', module, template));
    for (const o of found) token.facts.set(o.handle, o);
    return found;
  }

  // --- Keys -----------------------------------------------------------------------------------------

  async generateKey(session: PassthroughSession, mechanism: Mechanism, template: Template): Promise<ObjectFacts> {
    const { token, module } = this.check(session);
    return this.learned(session, await token.host.request('generateKey', module, mechanism, template));
  }

  async generateKeyPair(session: PassthroughSession, mechanism: Mechanism, publicTemplate: Template, privateTemplate: Template): Promise<[ObjectFacts, ObjectFacts]> {
    const { token, module } = this.check(session);
    const pair = await token.host.request('generateKeyPair', module, mechanism, publicTemplate, privateTemplate);
    return [this.learned(session, pair.publicKey), this.learned(session, pair.privateKey)];
  }

  async wrapKey(session: PassthroughSession, mechanism: Mechanism, wrappingKey: number, key: number): Promise<Buffer> {
    const { token, module } = this.check(session);
    return await token.host.request('wrapKey', module, mechanism, wrappingKey, key);
  }

  async unwrapKey(session: PassthroughSession, mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: Template): Promise<ObjectFacts> {
    const { token, module } = this.check(session);
    return this.learned(session, await token.host.request('unwrapKey', module, mechanism, unwrappingKey, wrapped, template));
  }

  async deriveKey(session: PassthroughSession, mechanism: Mechanism, baseKey: number, template: Template): Promise<ObjectFacts> {
    const { token, module } = this.check(session);
    return this.learned(session, await token.host.request('deriveKey', module, mechanism, baseKey, template));
  }

  async random(session: PassthroughSession, length: number): Promise<Buffer> {
    const { token, module } = this.check(session);
    return await token.host.request('random', module, length);
  }

  async seedRandom(session: PassthroughSession, seed: Buffer): Promise<void> {
    const { token, module } = this.check(session);
    await token.host.request('seedRandom', module, seed);
  }

  // --- Operations -----------------------------------------------------------------------------------

  /** The module judges CKA_ALWAYS_AUTHENTICATE itself: a context-specific login goes on to it ('device'). */
  async operationInit(session: PassthroughSession, kind: OperationKind, mechanism: Mechanism, key: number | null): Promise<ContextLogin> {
    const { token, module } = this.check(session);
    await this.afterStaleOperations(session, () => token.host.request('cryptoInit', kind, module, mechanism, key));
    session.active.add(kind);
    return kind === 'digest' ? 'none' : 'device';
  }

  /**
   * Runs a call that a module refuses with CKR_OPERATION_ACTIVE while it runs an operation (an
   * init; SoftHSM2 a search too, as it runs one operation at a time). The model ended operations
   * the module may still run: cancelled (C_SessionCancel), failed before they reached it (a
   * single-part call during a multi-part one), a logout's. On that answer each is finished there
   * (its output or failure thrown away), and the call is made again.
   */
  private async afterStaleOperations<T>(session: PassthroughSession, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (!(error instanceof Pkcs11Error) || error.rv !== CKR.OPERATION_ACTIVE) throw error;
    }
    const { token, module } = this.check(session);
    const stale = STALE_KINDS.filter((kind) => !session.active.has(kind));
    if (stale.length === 0) throw new Pkcs11Error(CKR.OPERATION_ACTIVE, 'the module runs an operation the model holds');
    const ignore = () => undefined;
    for (const kind of stale) {
      // The final ends a multi-part operation; a single-part mechanism's (raw ECDSA) refuses a
      // final without ending, and ends at its single-part call. (Never empty input: passed as
      // NULL, SoftHSM2 would refuse it with CKR_ARGUMENTS_BAD and keep the operation.)
      if (kind === 'verify') {
        await token.host.request('verifyFinal', module, ONE_BYTE).catch(ignore);
        await token.host.request('verify', module, ONE_BYTE, ONE_BYTE).catch(ignore);
      } else {
        await token.host.request('final', kind, module).catch(ignore);
        await token.host.request('single', kind, module, ONE_BYTE).catch(ignore);
      }
    }
    return await call();
  }

  /** C_Login(CKU_CONTEXT_SPECIFIC) on the module session: the module checks the PIN and counts a wrong one. */
  async contextLogin(session: PassthroughSession, pin: Buffer): Promise<void> {
    const { token, module } = this.check(session);
    await token.host.request('login', CKU.CONTEXT_SPECIFIC, pinText(pin), module);
  }

  async operationUpdate(session: PassthroughSession, kind: OperationKind, data: Buffer): Promise<Buffer | null> {
    const { token, module } = this.check(session);
    return await token.host.request('update', kind, module, data);
  }

  async operationFinal(session: PassthroughSession, kind: Exclude<OperationKind, 'verify'>): Promise<Buffer> {
    const { token, module } = this.check(session);
    return await token.host.request('final', kind, module);
  }

  async operationSingle(session: PassthroughSession, kind: Exclude<OperationKind, 'verify'>, data: Buffer): Promise<Buffer> {
    const { token, module } = this.check(session);
    return await token.host.request('single', kind, module, data);
  }

  async verify(session: PassthroughSession, data: Buffer | null, signature: Buffer): Promise<void> {
    const { token, module } = this.check(session);
    if (data === null) await token.host.request('verifyFinal', module, signature);
    else await token.host.request('verify', module, data, signature);
  }

  async digestKey(session: PassthroughSession, key: number): Promise<void> {
    const { token, module } = this.check(session);
    await token.host.request('digestKey', module, key);
  }

  /** The module keeps its own operation state; one the model ended that still runs there ends when it is in the way (afterStaleOperations). */
  operationEnd(session: PassthroughSession, kind: OperationKind): void {
    session.active.delete(kind);
  }
}
