// The HSM the processor serves when tokens other than the partitions are offered to clients
// (deployed USB tokens, src/tokens): the main backend's slots as they are, and each extra token
// at a slot of its own. Calls are routed by slot, then by session. The main backend's session
// handles pass unchanged; an extra token's sessions get handles from a range of their own
// (each token numbers its own), translated on the way in and out.
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import type { Template } from './attributes.js';
import type { HsmBackend, MaybePromise, TokenApplication } from './backend.js';
import type { LibraryInfo, PartitionSummary, SlotInfo, TokenInfo } from './hsm.js';
import type { SessionInfo } from './application.js';
import type { MechanismInfo } from './mechanisms/contract.js';
import type { Capacity } from './output.js';
import type { Pin } from './login.js';
import type { AttributeReadout, AttributeRequest } from './object-calls.js';
import type { KeyPairHandles } from './key-calls.js';

/** A token served besides the main backend's partitions. */
export interface ExtraToken {
  /** The slot clients' views use. */
  slot: number;
  backend: HsmBackend;
  /** The token's slot inside its own backend. */
  memberSlot: number;
}

/** Extra tokens' session handles start here; the main backend's stay below. */
const EXTRA_SESSION_BASE = 0x4000_0000;

interface Route {
  app: TokenApplication;
  slot: number;
}

interface ExtraSession {
  app: TokenApplication;
  backend: HsmBackend;
  handle: number;
  slot: number;
}

export class CompositeBackend implements HsmBackend {
  private readonly applications = new Map<string, CompositeApplication>();
  private nextSession = EXTRA_SESSION_BASE;

  constructor(readonly main: HsmBackend, private readonly extras: () => readonly ExtraToken[]) {}

  get kind(): HsmBackend['kind'] {
    return this.main.kind;
  }

  extra(slot: number): ExtraToken | undefined {
    return this.extras().find((e) => e.slot === slot);
  }

  application(id: string): CompositeApplication {
    let app = this.applications.get(id);
    if (!app) {
      app = new CompositeApplication(this, id);
      this.applications.set(id, app);
    }
    return app;
  }

  forget(id: string): void {
    this.applications.delete(id);
  }

  newSessionHandle(): number {
    return this.nextSession++;
  }

  /** An extra token goes away: every application's sessions on it end first. */
  removed(backend: HsmBackend): void {
    for (const app of this.applications.values()) app.dropBackend(backend);
  }

  listPartitions(): PartitionSummary[] {
    const main = this.main.listPartitions();
    const taken = new Set(main.map((p) => p.slotId));
    const extra = this.extras().filter((e) => !taken.has(e.slot)).flatMap((e) => {
      const own = e.backend.listPartitions().find((p) => p.slotId === e.memberSlot);
      return own ? [{ ...own, slotId: e.slot }] : [];
    });
    return [...main, ...extra];
  }

  sessionCount(slotId: number): number {
    const extra = this.extra(slotId);
    return extra ? extra.backend.sessionCount(extra.memberSlot) : this.main.sessionCount(slotId);
  }
}

export class CompositeApplication implements TokenApplication {
  private readonly members = new Map<HsmBackend, TokenApplication>();
  private readonly extraSessions = new Map<number, ExtraSession>();
  /** The main backend's application, kept at hand: nearly every call goes to it. */
  private mainApp: TokenApplication | null = null;

  constructor(private readonly composite: CompositeBackend, readonly id: string) {}

  private main(): TokenApplication {
    return this.mainApp ??= this.member(this.composite.main);
  }

  private member(backend: HsmBackend): TokenApplication {
    let app = this.members.get(backend);
    if (!app) {
      app = backend.application(this.id);
      this.members.set(backend, app);
    }
    return app;
  }

  private bySlot(slot: number): Route {
    const extra = this.composite.extra(slot);
    if (extra) return { app: this.member(extra.backend), slot: extra.memberSlot };
    return { app: this.main(), slot };
  }

  /** The member application and its own handle for a client's session handle. */
  private bySession(handle: number): { app: TokenApplication; handle: number } {
    const extra = this.extraSessions.get(handle);
    if (extra) return extra;
    if (handle >= EXTRA_SESSION_BASE) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
    return { app: this.main(), handle };
  }

  dropBackend(backend: HsmBackend): void {
    const app = this.members.get(backend);
    if (!app) return;
    for (const [handle, session] of this.extraSessions) if (session.backend === backend) this.extraSessions.delete(handle);
    this.members.delete(backend);
    app.finalize();
  }

  finalize(): void {
    for (const app of this.members.values()) app.finalize();
    this.members.clear();
    this.mainApp = null;
    this.extraSessions.clear();
    this.composite.forget(this.id);
  }

  C_GetInfo(): LibraryInfo { return this.main().C_GetInfo(); }
  C_GetSlotInfo(slot: number): MaybePromise<SlotInfo> { const r = this.bySlot(slot); return r.app.C_GetSlotInfo(r.slot); }
  C_GetTokenInfo(slot: number): MaybePromise<TokenInfo> { const r = this.bySlot(slot); return r.app.C_GetTokenInfo(r.slot); }
  C_GetMechanismList(slot: number): MaybePromise<number[]> { const r = this.bySlot(slot); return r.app.C_GetMechanismList(r.slot); }
  C_GetMechanismInfo(slot: number, type: number): MaybePromise<MechanismInfo> { const r = this.bySlot(slot); return r.app.C_GetMechanismInfo(r.slot, type); }
  C_InitToken(slot: number, soPin: Pin, label: string): Promise<void> { const r = this.bySlot(slot); return r.app.C_InitToken(r.slot, soPin, label); }

  async C_OpenSession(slot: number, flags: number): Promise<number> {
    const extra = this.composite.extra(slot);
    if (!extra) return await this.main().C_OpenSession(slot, flags);
    const app = this.member(extra.backend);
    const own = await app.C_OpenSession(extra.memberSlot, flags);
    const handle = this.composite.newSessionHandle();
    this.extraSessions.set(handle, { app, backend: extra.backend, handle: own, slot });
    return handle;
  }

  async C_CloseSession(handle: number): Promise<void> {
    const r = this.bySession(handle);
    await r.app.C_CloseSession(r.handle);
    this.extraSessions.delete(handle);
  }

  async C_CloseAllSessions(slot: number): Promise<void> {
    const r = this.bySlot(slot);
    await r.app.C_CloseAllSessions(r.slot);
    for (const [handle, session] of this.extraSessions) if (session.slot === slot) this.extraSessions.delete(handle);
  }

  async C_GetSessionInfo(handle: number): Promise<SessionInfo> {
    const r = this.bySession(handle);
    const info = await r.app.C_GetSessionInfo(r.handle);
    const extra = this.extraSessions.get(handle);
    return extra ? { ...info, slotID: extra.slot } : info;
  }

  C_Login(h: number, userType: number, pin: Pin): Promise<void> { const r = this.bySession(h); return r.app.C_Login(r.handle, userType, pin); }
  C_Logout(h: number): Promise<void> { const r = this.bySession(h); return r.app.C_Logout(r.handle); }
  C_InitPIN(h: number, pin: Pin): Promise<void> { const r = this.bySession(h); return r.app.C_InitPIN(r.handle, pin); }
  C_SetPIN(h: number, oldPin: Pin, newPin: Pin): Promise<void> { const r = this.bySession(h); return r.app.C_SetPIN(r.handle, oldPin, newPin); }

  C_CreateObject(h: number, t: Template): Promise<number> { const r = this.bySession(h); return r.app.C_CreateObject(r.handle, t); }
  C_CopyObject(h: number, o: number, t: Template): Promise<number> { const r = this.bySession(h); return r.app.C_CopyObject(r.handle, o, t); }
  C_DestroyObject(h: number, o: number): Promise<void> { const r = this.bySession(h); return r.app.C_DestroyObject(r.handle, o); }
  C_GetAttributeValue(h: number, o: number, q: readonly AttributeRequest[]): Promise<AttributeReadout> { const r = this.bySession(h); return r.app.C_GetAttributeValue(r.handle, o, q); }
  C_SetAttributeValue(h: number, o: number, t: Template): Promise<void> { const r = this.bySession(h); return r.app.C_SetAttributeValue(r.handle, o, t); }
  C_FindObjectsInit(h: number, t: Template): Promise<void> { const r = this.bySession(h); return r.app.C_FindObjectsInit(r.handle, t); }
  C_FindObjects(h: number, max: number): Promise<number[]> { const r = this.bySession(h); return r.app.C_FindObjects(r.handle, max); }
  C_FindObjectsFinal(h: number): Promise<void> { const r = this.bySession(h); return r.app.C_FindObjectsFinal(r.handle); }

  C_GenerateKey(h: number, m: Mechanism, t: Template): Promise<number> { const r = this.bySession(h); return r.app.C_GenerateKey(r.handle, m, t); }
  C_GenerateKeyPair(h: number, m: Mechanism, pub: Template, priv: Template): Promise<KeyPairHandles> { const r = this.bySession(h); return r.app.C_GenerateKeyPair(r.handle, m, pub, priv); }
  C_WrapKey(h: number, m: Mechanism, wk: number, k: number, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_WrapKey(r.handle, m, wk, k, c); }
  C_UnwrapKey(h: number, m: Mechanism, uk: number, w: Buffer, t: Template): Promise<number> { const r = this.bySession(h); return r.app.C_UnwrapKey(r.handle, m, uk, w, t); }
  C_DeriveKey(h: number, m: Mechanism, b: number, t: Template): Promise<number> { const r = this.bySession(h); return r.app.C_DeriveKey(r.handle, m, b, t); }
  C_GenerateRandom(h: number, n: number): Promise<Buffer> { const r = this.bySession(h); return r.app.C_GenerateRandom(r.handle, n); }
  C_SeedRandom(h: number, seed: Buffer): Promise<void> { const r = this.bySession(h); return r.app.C_SeedRandom(r.handle, seed); }

  C_SignInit(h: number, m: Mechanism, k: number): Promise<void> { const r = this.bySession(h); return r.app.C_SignInit(r.handle, m, k); }
  C_Sign(h: number, d: Buffer, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_Sign(r.handle, d, c); }
  C_SignUpdate(h: number, d: Buffer): Promise<void> { const r = this.bySession(h); return r.app.C_SignUpdate(r.handle, d); }
  C_SignFinal(h: number, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_SignFinal(r.handle, c); }
  C_VerifyInit(h: number, m: Mechanism, k: number): Promise<void> { const r = this.bySession(h); return r.app.C_VerifyInit(r.handle, m, k); }
  C_Verify(h: number, d: Buffer, s: Buffer): Promise<void> { const r = this.bySession(h); return r.app.C_Verify(r.handle, d, s); }
  C_VerifyUpdate(h: number, d: Buffer): Promise<void> { const r = this.bySession(h); return r.app.C_VerifyUpdate(r.handle, d); }
  C_VerifyFinal(h: number, s: Buffer): Promise<void> { const r = this.bySession(h); return r.app.C_VerifyFinal(r.handle, s); }
  C_EncryptInit(h: number, m: Mechanism, k: number): Promise<void> { const r = this.bySession(h); return r.app.C_EncryptInit(r.handle, m, k); }
  C_Encrypt(h: number, d: Buffer, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_Encrypt(r.handle, d, c); }
  C_EncryptUpdate(h: number, d: Buffer, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_EncryptUpdate(r.handle, d, c); }
  C_EncryptFinal(h: number, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_EncryptFinal(r.handle, c); }
  C_DecryptInit(h: number, m: Mechanism, k: number): Promise<void> { const r = this.bySession(h); return r.app.C_DecryptInit(r.handle, m, k); }
  C_Decrypt(h: number, d: Buffer, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_Decrypt(r.handle, d, c); }
  C_DecryptUpdate(h: number, d: Buffer, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_DecryptUpdate(r.handle, d, c); }
  C_DecryptFinal(h: number, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_DecryptFinal(r.handle, c); }
  C_DigestInit(h: number, m: Mechanism): Promise<void> { const r = this.bySession(h); return r.app.C_DigestInit(r.handle, m); }
  C_Digest(h: number, d: Buffer, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_Digest(r.handle, d, c); }
  C_DigestUpdate(h: number, d: Buffer): Promise<void> { const r = this.bySession(h); return r.app.C_DigestUpdate(r.handle, d); }
  C_DigestKey(h: number, k: number): Promise<void> { const r = this.bySession(h); return r.app.C_DigestKey(r.handle, k); }
  C_DigestFinal(h: number, c?: Capacity): Promise<Buffer> { const r = this.bySession(h); return r.app.C_DigestFinal(r.handle, c); }
}
