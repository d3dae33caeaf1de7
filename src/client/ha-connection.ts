// One application's view of HA groups: the PKCS#11 calls of p11-kit RPC, answered over the
// groups' members. Each group is one virtual slot (0..n-1, in configuration order); a group that
// is not HA-only also shows each member's own slot of the partition after them (calls on such a
// slot go to that member only). Sessions are virtual: a virtual session holds the member
// sessions opened for it (on demand), and the login is replayed on each member session opened
// (the PIN is kept in memory for the life of the login only).
//
// Routing: a single-part operation (C_Sign, C_Verify, C_Encrypt, C_Decrypt, C_Digest, random) is
// begun on the least busy member at its C_xxxInit; a multi-part one stays on the member it began
// on. When a member's link fails during a call that is safe to repeat (a single-part operation
// whose init is replayed, find, attribute reads, random, slot and token information, open
// session, login), the call is made again on another member, and the application sees no error.
// A multi-part operation in progress gets CKR_DEVICE_ERROR; a call that changes the token
// (create, generate, destroy, set attributes, PIN changes) is not repeated: the member may have
// done it, so it gets CKR_DEVICE_ERROR too.
//
// Object handles pass through unchanged: members of one group share one store (PostgreSQL), where
// a token object has one handle on every node. Session objects live on the member that made them,
// and calls naming them go to that member only.
import { CKA, CKR, CKS, CKF, CKU, Pkcs11Error } from '../pkcs11/constants.js';
import { answerOutput, isLengthOnly, type Attribute, type RequestArgs, type RequestCallName, type ResponseArgs } from '../protocol/p11kit/index.js';
import type { HaGroup, HaMember } from './ha-group.js';
import { LinkError } from './link.js';
import { RpcConnection, type CallChannel, type ClientCredentials, type ConnectionSettings } from './rpc-connection.js';

// Arguments and answers are handled by field name here (session, key, object ...), whatever the
// call: the codec has checked their types on the way in and checks them again on the way out.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Args = Record<string, any>;
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-argument, @typescript-eslint/no-unsafe-assignment */

type VirtualSlot =
  | { kind: 'group'; id: number; group: HaGroup }
  | { kind: 'member'; id: number; group: HaGroup; member: string };

interface MemberSession {
  handle: number;
  /** The member link's generation when the session was opened: a later link does not know it. */
  generation: number;
}

interface Operation {
  init: { name: string; args: Args };
  member: string;
  /** The member link's generation at init: on a later link the member has forgotten it. */
  generation: number;
  /** Parts sent (C_xxxUpdate): a started multi-part operation cannot move. */
  parts: number;
}

interface VirtualSession {
  id: number;
  slot: VirtualSlot;
  flags: number;
  members: Map<string, MemberSession>;
  operations: Map<string, Operation>;
  found: number[] | null;
  /** Calls waiting their turn, in the order the application issued them. */
  pending: Queued[];
  running: boolean;
}

interface Queued {
  name: string;
  args: Args;
  resolve(answer: Args): void;
  reject(error: unknown): void;
}

interface Login {
  userType: number;
  pin: Buffer;
  /** Member name -> link generation it is logged in on. */
  members: Map<string, number>;
}

const INIT_CALLS: Record<string, string> = {
  C_EncryptInit: 'encrypt', C_DecryptInit: 'decrypt', C_DigestInit: 'digest', C_SignInit: 'sign',
  C_VerifyInit: 'verify', C_SignRecoverInit: 'signRecover', C_VerifyRecoverInit: 'verifyRecover',
};
const SINGLE_CALLS: Record<string, string> = {
  C_Encrypt: 'encrypt', C_Decrypt: 'decrypt', C_Digest: 'digest', C_Sign: 'sign', C_Verify: 'verify',
  C_SignRecover: 'signRecover', C_VerifyRecover: 'verifyRecover',
};
const PART_CALLS: Record<string, string> = {
  C_EncryptUpdate: 'encrypt', C_DecryptUpdate: 'decrypt', C_DigestUpdate: 'digest', C_DigestKey: 'digest',
  C_SignUpdate: 'sign', C_VerifyUpdate: 'verify',
};
const FINAL_CALLS: Record<string, string> = {
  C_EncryptFinal: 'encrypt', C_DecryptFinal: 'decrypt', C_DigestFinal: 'digest', C_SignFinal: 'sign', C_VerifyFinal: 'verify',
};
/** C_SessionCancel's flag for each kind of operation. */
const CANCEL_FLAGS: Record<string, number> = {
  encrypt: CKF.ENCRYPT, decrypt: CKF.DECRYPT, digest: CKF.DIGEST, sign: CKF.SIGN, verify: CKF.VERIFY,
  signRecover: CKF.SIGN_RECOVER, verifyRecover: CKF.VERIFY_RECOVER,
};
/** Calls that only read, safe to make again on another member. */
const REPEATABLE = new Set(['C_GetAttributeValue', 'C_GetObjectSize', 'C_GenerateRandom', 'C_SeedRandom', 'C_WrapKey']);
/** Calls that change the token: one member, never repeated. */
const CHANGING = new Set([
  'C_CreateObject', 'C_CopyObject', 'C_DestroyObject', 'C_SetAttributeValue', 'C_GenerateKey', 'C_GenerateKeyPair',
  'C_UnwrapKey', 'C_DeriveKey', 'C_InitPIN', 'C_SetPIN',
]);
/** Fields that name an object: a session object's member takes the call. */
const OBJECT_FIELDS = ['key', 'object', 'wrappingKey', 'unwrappingKey', 'baseKey'] as const;

export class HaConnection implements CallChannel {
  readonly endpoint: { name: string };
  private readonly slots: VirtualSlot[] = [];
  private readonly links = new Map<string, RpcConnection>();
  private readonly sessions = new Map<number, VirtualSession>();
  private readonly logins = new Map<number, Login>();
  /** Session objects: handle -> the member that holds it and the virtual session that made it. */
  private readonly sessionObjects = new Map<number, { member: string; session: number }>();
  private nextSession = 1;
  private closed = false;

  constructor(readonly groups: readonly HaGroup[], credentials: ClientCredentials, settings: ConnectionSettings) {
    this.endpoint = { name: groups.map((g) => g.name).join('+') };
    for (const group of groups) this.slots.push({ kind: 'group', id: this.slots.length, group });
    for (const group of groups) {
      if (group.settings.haOnly) continue;
      for (const member of group.members) this.slots.push({ kind: 'member', id: this.slots.length, group, member: member.name });
    }
    for (const group of groups) {
      for (const member of group.members) {
        if (!this.links.has(member.name)) this.links.set(member.name, new RpcConnection(member.endpoint, credentials, { ...settings, keepObjectHandles: true }));
      }
    }
  }

  /** The virtual slots: each group's, then (groups not HA-only) each member's own. */
  get slotList(): ReadonlyArray<{ id: number; group: string; member: string | null }> {
    return this.slots.map((s) => ({ id: s.id, group: s.group.name, member: s.kind === 'member' ? s.member : null }));
  }

  async call<N extends RequestCallName>(name: N, args: RequestArgs<N>): Promise<ResponseArgs<N>> {
    if (this.closed) throw new Pkcs11Error(CKR.CRYPTOKI_NOT_INITIALIZED, 'the HA connection is closed');
    try {
      return (await this.dispatch(name, args)) as ResponseArgs<N>;
    } catch (error) {
      if (error instanceof LinkError) throw new Pkcs11Error(CKR.DEVICE_ERROR, `${name}: ${error.message}`);
      throw error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    for (const slot of this.slots) await this.closeAllSessions(slot).catch(() => undefined);
    this.closed = true;
    await Promise.all([...this.links.values()].map((l) => l.close()));
  }

  private async dispatch(name: string, args: Args): Promise<Args> {
    switch (name) {
      case 'C_Initialize': case 'NTLS_Keepalive': return {};
      case 'C_Finalize':
        for (const slot of this.slots) await this.closeAllSessions(slot);
        return {};
      case 'NTLS_Echo': return { body: args.body };
      case 'C_GetInfo': return this.anyMember(null, name, (member) => this.send(member, name, args));
      case 'C_GetSlotList': return { slotList: answerOutput(args.slotList, this.slots.map((s) => s.id)) };
      case 'C_GetSlotInfo': case 'C_GetTokenInfo': case 'C_GetMechanismList': case 'C_GetMechanismInfo': case 'C_InitToken': {
        const slot = this.slot(args.slotId);
        const answer = await this.onSlot(slot, name, name !== 'C_InitToken', (member) => this.send(member, name, { ...args, slotId: member.slot }));
        if (name === 'C_GetSlotInfo' && slot.kind === 'group') answer.slotDescription = `HA group ${slot.group.name}`;
        return answer;
      }
      case 'C_OpenSession': return this.openSession(this.slot(args.slotId), args.flags);
      case 'C_CloseSession': {
        await this.closeSession(this.session(args.session));
        return {};
      }
      case 'C_CloseAllSessions':
        await this.closeAllSessions(this.slot(args.slotId));
        return {};
      case 'C_GetSessionInfo': return this.sessionInfo(this.session(args.session));
      default: break;
    }
    if (args.session === undefined) throw new Pkcs11Error(CKR.FUNCTION_NOT_SUPPORTED, `${name} is not offered on an HA group`);
    const vs = this.session(args.session);
    return this.enqueue(vs, name, args);
  }

  // --- slots and sessions --------------------------------------------------------------------

  private slot(id: number): VirtualSlot {
    const slot = this.slots[id];
    if (!slot) throw new Pkcs11Error(CKR.SLOT_ID_INVALID, `slot ${id}`);
    return slot;
  }

  private session(id: number): VirtualSession {
    const vs = this.sessions.get(id);
    if (!vs) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID, `session ${id}`);
    return vs;
  }

  /** Calls of one session run one after the other, as the application issued them. */
  private enqueue(vs: VirtualSession, name: string, args: Args): Promise<Args> {
    return new Promise((resolve, reject) => {
      vs.pending.push({ name, args, resolve, reject });
      if (!vs.running) void this.drain(vs);
    });
  }

  private async drain(vs: VirtualSession): Promise<void> {
    vs.running = true;
    // Calls issued in the same turn join the queue first: an init and its single-part operation
    // sent together (as Pkcs11Remote.sign does) then go to one member together, one round trip.
    await Promise.resolve();
    while (vs.pending.length) {
      const item = vs.pending.shift()!;
      const next = vs.pending[0];
      if (INIT_CALLS[item.name] !== undefined && next && SINGLE_CALLS[next.name] === INIT_CALLS[item.name]) {
        vs.pending.shift();
        await this.initAndSinglePart(vs, item, next);
        continue;
      }
      try {
        item.resolve(await this.sessionCall(vs, item.name, item.args));
      } catch (error) {
        item.reject(error);
      }
    }
    vs.running = false;
  }

  /** A slot call: on a member slot that member only, on a group slot any member (again on another if one is lost, when `repeat`). */
  private async onSlot(slot: VirtualSlot, name: string, repeat: boolean, body: (member: HaMember) => Promise<Args>): Promise<Args> {
    await slot.group.start();
    if (slot.kind === 'member') return this.onlyMember(slot.group, slot.member, name, body);
    return repeat ? this.anyMember(slot.group, name, body) : this.oneMember(slot.group, name, body);
  }

  private async openSession(slot: VirtualSlot, flags: number): Promise<Args> {
    if ((flags & CKF.SERIAL_SESSION) === 0) throw new Pkcs11Error(CKR.SESSION_PARALLEL_NOT_SUPPORTED);
    await slot.group.start();
    const vs: VirtualSession = { id: this.nextSession++, slot, flags, members: new Map(), operations: new Map(), found: null, pending: [], running: false };
    // One member session at once, so that a slot no member can serve fails here, as on a server.
    await this.run(vs, 'C_OpenSession', { repeat: true }, async () => ({}));
    this.sessions.set(vs.id, vs);
    return { session: vs.id };
  }

  private async closeSession(vs: VirtualSession): Promise<void> {
    this.sessions.delete(vs.id);
    await Promise.all([...vs.members].map(async ([name, ms]) => {
      const link = this.links.get(name)!;
      if (link.connected && link.generation === ms.generation) await link.call('C_CloseSession', { session: ms.handle }).catch(() => undefined);
    }));
    // A session object ends with the session that made it.
    for (const [handle, owner] of this.sessionObjects) if (owner.session === vs.id) this.sessionObjects.delete(handle);
    // Closing an application's last session of a slot ends its login there: the PIN goes too.
    if (!this.hasSessions(vs.slot)) this.dropLogin(vs.slot);
  }

  private async closeAllSessions(slot: VirtualSlot): Promise<void> {
    for (const vs of [...this.sessions.values()]) if (vs.slot === slot) await this.closeSession(vs);
    this.dropLogin(slot);
  }

  private hasSessions(slot: VirtualSlot): boolean {
    for (const vs of this.sessions.values()) if (vs.slot === slot) return true;
    return false;
  }

  private dropLogin(slot: VirtualSlot): void {
    const login = this.logins.get(slot.id);
    if (!login) return;
    login.pin.fill(0);
    this.logins.delete(slot.id);
  }

  private sessionInfo(vs: VirtualSession): Args {
    const rw = (vs.flags & CKF.RW_SESSION) !== 0;
    const login = this.logins.get(vs.slot.id);
    const state = !login ? (rw ? CKS.RW_PUBLIC_SESSION : CKS.RO_PUBLIC_SESSION)
      : login.userType === CKU.SO ? CKS.RW_SO_FUNCTIONS : rw ? CKS.RW_USER_FUNCTIONS : CKS.RO_USER_FUNCTIONS;
    return { slotId: vs.slot.id, state, flags: vs.flags, deviceError: 0 };
  }

  // --- calls on a session --------------------------------------------------------------------

  private async sessionCall(vs: VirtualSession, name: string, args: Args): Promise<Args> {
    if (name === 'C_Login') return this.login(vs, args);
    if (name === 'C_Logout') return this.logout(vs);
    if (INIT_CALLS[name]) return this.operationInit(vs, INIT_CALLS[name], name, args);
    if (SINGLE_CALLS[name]) return this.singlePart(vs, SINGLE_CALLS[name], name, args);
    if (PART_CALLS[name]) return this.multiPart(vs, PART_CALLS[name], name, args, false);
    if (FINAL_CALLS[name]) return this.multiPart(vs, FINAL_CALLS[name], name, args, true);
    if (name === 'C_FindObjectsInit') return this.findInit(vs, args);
    if (name === 'C_SessionCancel') return this.sessionCancel(vs, args.flags as number);
    if (name === 'C_FindObjects') {
      if (!vs.found) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED, name);
      const room = args.objects.query ? vs.found.length : args.objects.capacity;
      const batch = args.objects.query ? vs.found : vs.found.splice(0, room);
      return { objects: args.objects.query ? answerOutput(args.objects, batch) : batch };
    }
    if (name === 'C_FindObjectsFinal') {
      if (!vs.found) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED, name);
      vs.found = null;
      return {};
    }
    const only = this.objectMember(args);
    if (REPEATABLE.has(name) || CHANGING.has(name)) {
      const answer = await this.run(vs, name, { repeat: REPEATABLE.has(name), only }, async (member, session) => {
        const answer = await this.send(member, name, { ...args, session });
        if (CHANGING.has(name)) this.noteSessionObjects(name, args, answer, member.name, vs.id);
        return answer;
      });
      if (name === 'C_SetPIN') this.pinChanged(vs, args.newPin);
      return answer;
    }
    throw new Pkcs11Error(CKR.FUNCTION_NOT_SUPPORTED, `${name} is not offered on an HA group`);
  }

  private async login(vs: VirtualSession, args: Args): Promise<Args> {
    const current = this.logins.get(vs.slot.id);
    if (current) throw new Pkcs11Error(current.userType === args.userType ? CKR.USER_ALREADY_LOGGED_IN : CKR.USER_ANOTHER_ALREADY_LOGGED_IN, 'C_Login');
    // The PIN is checked once, on one member (a wrong one counts once against the shared store).
    const login: Login = { userType: args.userType, pin: Buffer.from(args.pin as Buffer), members: new Map() };
    await this.run(vs, 'C_Login', { repeat: true }, async (member, session) => {
      try {
        await this.send(member, 'C_Login', { session, userType: login.userType, pin: login.pin });
      } catch (error) {
        if (!(error instanceof Pkcs11Error && error.rv === CKR.USER_ALREADY_LOGGED_IN)) throw error;
      }
      login.members.set(member.name, this.links.get(member.name)!.generation);
      return {};
    }).catch((error: unknown) => {
      login.pin.fill(0);
      throw error;
    });
    this.logins.set(vs.slot.id, login);
    return {};
  }

  private async logout(vs: VirtualSession): Promise<Args> {
    const login = this.logins.get(vs.slot.id);
    if (!login) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'C_Logout');
    this.logins.delete(vs.slot.id);
    login.pin.fill(0);
    await Promise.all([...login.members].map(async ([name, generation]) => {
      const link = this.links.get(name)!;
      if (!link.connected || link.generation !== generation) return;
      const ms = [...this.sessions.values()].find((s) => s.slot === vs.slot && s.members.get(name)?.generation === generation)?.members.get(name);
      if (ms) await link.call('C_Logout', { session: ms.handle }).catch(() => undefined);
    }));
    return {};
  }

  /** Ends the flagged operations here and on the member each runs on (a member since lost has forgotten it). */
  private async sessionCancel(vs: VirtualSession, flags: number): Promise<Args> {
    const ended = [...vs.operations].filter(([kind]) => (flags & CANCEL_FLAGS[kind]!) !== 0);
    for (const [kind] of ended) vs.operations.delete(kind);
    if ((flags & CKF.FIND_OBJECTS) !== 0) vs.found = null;
    await Promise.all(ended.map(async ([kind, operation]) => {
      const link = this.links.get(operation.member);
      const ms = vs.members.get(operation.member);
      if (!link?.connected || link.generation !== operation.generation || ms?.generation !== operation.generation) return;
      await link.call('C_SessionCancel', { session: ms.handle, flags: CANCEL_FLAGS[kind]! }).catch(() => undefined);
    }));
    return {};
  }

  private pinChanged(vs: VirtualSession, newPin: Buffer): void {
    const login = this.logins.get(vs.slot.id);
    if (!login) return;
    login.pin.fill(0);
    login.pin = Buffer.from(newPin);
  }

  private async operationInit(vs: VirtualSession, kind: string, name: string, args: Args): Promise<Args> {
    vs.operations.delete(kind);
    const operation: Operation = { init: { name, args }, member: '', generation: 0, parts: 0 };
    await this.run(vs, name, { repeat: true, only: this.objectMember(args) }, async (member, session) => {
      await this.send(member, name, { ...args, session });
      operation.member = member.name;
      operation.generation = this.links.get(member.name)!.generation;
      return {};
    });
    vs.operations.set(kind, operation);
    return {};
  }

  /**
   * A single-part call, on the member its init went to; if that member is lost, the init is
   * made again on another and the call repeated there.
   */
  private async singlePart(vs: VirtualSession, kind: string, name: string, args: Args): Promise<Args> {
    const operation = vs.operations.get(kind);
    if (!operation) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED, name);
    if (operation.parts > 0) return this.multiPart(vs, kind, name, args, true);
    let first = true;
    try {
      const answer = await this.run(vs, name, { repeat: true, prefer: operation.member, only: this.objectMember(operation.init.args) }, async (member, session) => {
        const generation = this.links.get(member.name)!.generation;
        if (!first || member.name !== operation.member || generation !== operation.generation) {
          await this.send(member, operation.init.name, { ...operation.init.args, session });
          operation.member = member.name;
          operation.generation = generation;
        }
        first = false;
        return this.send(member, name, { ...args, session });
      });
      // A length query (or too small a buffer) leaves the operation active, as PKCS#11 says.
      if (!Object.values(answer).some((v) => isLengthOnly(v))) vs.operations.delete(kind);
      return answer;
    } catch (error) {
      vs.operations.delete(kind);
      throw error;
    }
  }

  /**
   * An init and its single-part operation issued together: both sent to one member back to back
   * (pipelined on its link); if that member is lost, both again on another. The init's own
   * failure is the init's answer, and the operation then gets CKR_OPERATION_NOT_INITIALIZED.
   */
  private async initAndSinglePart(vs: VirtualSession, init: Queued, single: Queued): Promise<void> {
    const kind = INIT_CALLS[init.name]!;
    vs.operations.delete(kind);
    let initError: unknown = null;
    try {
      const answer = await this.run(vs, single.name, { repeat: true, only: this.objectMember(init.args) }, async (member, session) => {
        const initDone = this.send(member, init.name, { ...init.args, session });
        const singleDone = this.send(member, single.name, { ...single.args, session });
        const [i, o] = await Promise.allSettled([initDone, singleDone]);
        if (i.status === 'rejected' && i.reason instanceof LinkError) throw i.reason;
        if (o.status === 'rejected' && o.reason instanceof LinkError) throw o.reason;
        if (i.status === 'rejected') {
          initError = i.reason;
          throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED, single.name);
        }
        if (o.status === 'rejected') throw o.reason;
        // A length query (or too small a buffer) leaves the operation active there.
        if (Object.values(o.value).some((v) => isLengthOnly(v))) {
          vs.operations.set(kind, { init: { name: init.name, args: init.args }, member: member.name, generation: this.links.get(member.name)!.generation, parts: 0 });
        }
        return o.value;
      });
      init.resolve({});
      single.resolve(answer);
    } catch (error) {
      if (initError !== null) init.reject(initError);
      else if (error instanceof Pkcs11Error && error.rv === CKR.DEVICE_ERROR) init.reject(error);
      else init.resolve({});
      single.reject(error);
    }
  }

  private async multiPart(vs: VirtualSession, kind: string, name: string, args: Args, final: boolean): Promise<Args> {
    const operation = vs.operations.get(kind);
    if (!operation) throw new Pkcs11Error(CKR.OPERATION_NOT_INITIALIZED, name);
    const ms = vs.members.get(operation.member);
    const link = this.links.get(operation.member)!;
    const member = vs.slot.group.member(operation.member)!;
    if (!ms || ms.generation !== link.generation || !link.connected) {
      vs.operations.delete(kind);
      throw new Pkcs11Error(CKR.DEVICE_ERROR, `${name}: member ${operation.member}, where the operation began, was lost`);
    }
    try {
      const answer = await this.send(member, name, { ...args, session: ms.handle });
      if (!final) operation.parts++;
      else if (!Object.values(answer).some((v) => isLengthOnly(v))) vs.operations.delete(kind);
      return answer;
    } catch (error) {
      vs.operations.delete(kind);
      if (error instanceof LinkError) throw new Pkcs11Error(CKR.DEVICE_ERROR, `${name}: member ${operation.member} lost during a multi-part operation`);
      throw error;
    }
  }

  /** The whole search runs on one member at init; C_FindObjects hands out its results. */
  private async findInit(vs: VirtualSession, args: Args): Promise<Args> {
    if (vs.found) throw new Pkcs11Error(CKR.OPERATION_ACTIVE, 'C_FindObjectsInit');
    vs.found = await this.run(vs, 'C_FindObjectsInit', { repeat: true }, async (member, session) => {
      await this.send(member, 'C_FindObjectsInit', { session, template: args.template });
      const found: number[] = [];
      try {
        for (;;) {
          const { objects } = await this.send(member, 'C_FindObjects', { session, objects: { query: false, capacity: 256 } });
          if (!Array.isArray(objects) || objects.length === 0) break;
          found.push(...(objects as number[]));
          if (objects.length < 256) break;
        }
      } finally {
        await this.send(member, 'C_FindObjectsFinal', { session }).catch(() => undefined);
      }
      return found;
    });
    return {};
  }

  /** The member holding a session object the call names, if it names one. */
  private objectMember(args: Args): string | undefined {
    for (const field of OBJECT_FIELDS) {
      const member = typeof args[field] === 'number' ? this.sessionObjects.get(args[field])?.member : undefined;
      if (member) return member;
    }
    return undefined;
  }

  // --- members -------------------------------------------------------------------------------

  /**
   * Runs `body` with a member session of `vs` (opened, and logged in, when needed): on `only`
   * if given, else first on `prefer` if it is up, else on the least busy member. When the
   * member's link fails and `repeat` allows, on the next member.
   */
  private async run<T>(vs: VirtualSession, name: string, options: { repeat: boolean; only?: string; prefer?: string }, body: (member: HaMember, session: number) => Promise<T>): Promise<T> {
    const group = vs.slot.group;
    const only = vs.slot.kind === 'member' ? vs.slot.member : options.only;
    const tried = new Set<string>();
    let previous: { member: HaMember; error: unknown } | null = null;
    for (;;) {
      let member: HaMember | null;
      if (only !== undefined) member = tried.has(only) ? null : group.member(only) ?? null;
      else if (options.prefer !== undefined && !tried.has(options.prefer) && group.member(options.prefer)?.state === 'up') member = group.member(options.prefer)!;
      else member = group.pick(tried);
      if (!member || (member.state !== 'up' && only === undefined)) {
        group.noMember(name, previous?.error ?? null);
        throw new Pkcs11Error(CKR.DEVICE_ERROR, `${name}: no member of HA group ${group.name} can take it`);
      }
      if (previous) group.failedOver(name, previous.member, member, previous.error);
      tried.add(member.name);
      try {
        const session = await this.memberSession(vs, member);
        return await body(member, session);
      } catch (error) {
        if (!(error instanceof LinkError)) throw error;
        if (!options.repeat || only !== undefined) throw new Pkcs11Error(CKR.DEVICE_ERROR, `${name}: member ${member.name} lost during the call (${error.message})`);
        previous = { member, error };
      }
    }
  }

  /** Objects made by a call whose template does not say CKA_TOKEN true live on `member` only. */
  private noteSessionObjects(name: string, args: Args, answer: Args, member: string, session: number): void {
    const owner = { member, session };
    if (name === 'C_GenerateKeyPair') {
      if (!isTokenTemplate(args.publicKeyTemplate)) this.sessionObjects.set(answer.publicKey, owner);
      if (!isTokenTemplate(args.privateKeyTemplate)) this.sessionObjects.set(answer.privateKey, owner);
      return;
    }
    for (const field of ['object', 'key']) {
      if (typeof answer[field] === 'number' && !isTokenTemplate(args.template)) this.sessionObjects.set(answer[field], owner);
    }
  }

  /** The member's session for `vs`: opened on its current link (and logged in) if it has none there. */
  private async memberSession(vs: VirtualSession, member: HaMember): Promise<number> {
    const link = this.links.get(member.name)!;
    let ms = vs.members.get(member.name);
    if (!ms || !link.connected || ms.generation !== link.generation) {
      const { session } = await this.send(member, 'C_OpenSession', { slotId: member.slot, flags: vs.flags });
      ms = { handle: session, generation: link.generation };
      vs.members.set(member.name, ms);
    }
    const login = this.logins.get(vs.slot.id);
    if (login && login.members.get(member.name) !== link.generation) {
      try {
        await this.send(member, 'C_Login', { session: ms.handle, userType: login.userType, pin: login.pin });
      } catch (error) {
        if (!(error instanceof Pkcs11Error && error.rv === CKR.USER_ALREADY_LOGGED_IN)) throw error;
      }
      login.members.set(member.name, link.generation);
    }
    return ms.handle;
  }

  /** Any member for a call without a session (C_GetInfo): the first group's least busy. */
  private async anyMember(group: HaGroup | null, name: string, body: (member: HaMember) => Promise<Args>): Promise<Args> {
    const g = group ?? this.groups[0]!;
    await g.start();
    const tried = new Set<string>();
    let previous: { member: HaMember; error: unknown } | null = null;
    for (;;) {
      const member = g.pick(tried);
      if (!member) {
        g.noMember(name, previous?.error ?? null);
        throw new Pkcs11Error(CKR.DEVICE_ERROR, `${name}: no member of HA group ${g.name} can take it`);
      }
      if (previous) g.failedOver(name, previous.member, member, previous.error);
      tried.add(member.name);
      try {
        return await body(member);
      } catch (error) {
        if (!(error instanceof LinkError)) throw error;
        previous = { member, error };
      }
    }
  }

  private async oneMember(group: HaGroup, name: string, body: (member: HaMember) => Promise<Args>): Promise<Args> {
    const member = group.pick();
    if (!member) {
      group.noMember(name, null);
      throw new Pkcs11Error(CKR.DEVICE_ERROR, `${name}: no member of HA group ${group.name} can take it`);
    }
    return body(member);
  }

  private onlyMember(group: HaGroup, name: string, call: string, body: (member: HaMember) => Promise<Args>): Promise<Args> {
    const member = group.member(name)!;
    if (member.state !== 'up') return Promise.reject(new Pkcs11Error(CKR.DEVICE_ERROR, `${call}: member ${name} is ${member.state}`));
    return body(member);
  }

  /** One call on a member's link, counted in its load; a failed link takes the member out. */
  private async send(member: HaMember, name: string, args: Args): Promise<Args> {
    const link = this.links.get(member.name)!;
    const group = this.groups.find((g) => g.members.includes(member))!;
    member.load++;
    try {
      const answer = await (link.call as (n: string, a: Args) => Promise<Args>)(name, args);
      member.calls++;
      group.changed();
      return answer;
    } catch (error) {
      if (error instanceof LinkError) group.lost(member, error);
      throw error;
    } finally {
      member.load--;
    }
  }
}

/** CKA_TOKEN true in a template: the object is a token object (shared by every member). */
export function isTokenTemplate(template: readonly Attribute[] | undefined): boolean {
  return Boolean(template?.some((a) => a.type === CKA.TOKEN && a.value !== null && a.value.kind === 'byte' && a.value.value !== 0));
}
