// Two clients, two partitions: every call that names a slot, a session or an object is tried
// with the other client's values, and never touches them. isolation.test.ts runs it on the
// software HSM through the in-process harness (unit), isolation.daemon.test.ts on SoftHSM2 in
// the real daemon (integration).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import { attr, outputRequest, request, P11KIT_HANDSHAKE, type P11KitRequest } from '../../src/protocol/p11kit/index.js';
import { call } from '../support/p11kit.js';
import { TestBackend, type BackendKind } from '../support/backends.js';
import { startTarget, type ProcessorTarget, type TargetKind, type TargetLink } from '../support/processor-target.js';

interface Party {
  client: string;
  link: TargetLink;
  session: number;
  secretKey: number;
  privateKey: number;
  publicKey: number;
  serial: string;
}

const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;

export const isolationSuite = (kind: BackendKind, via: TargetKind) => describe.each([kind])('two clients, two partitions (%s backend)', (kind) => {
  let backend: TestBackend;
  let target: ProcessorTarget;

  /** `padding` session objects made first move the party's key handles past the other's. */
  async function party(name: string, partition: string, padding = 0): Promise<Party> {
    const client = name;
    await target.register(client);
    await backend.createPartition(target, partition);
    await target.assign(client, partition);
    const l = await target.connect(client);
    expect((await call(l, request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }))).rv).toBe(CKR.OK);
    const so = (await call(l, request('C_OpenSession', { slotId: 0, flags: RW }))).args.session as number;
    expect((await call(l, request('C_Login', { session: so, userType: CKU.SO, pin: Buffer.from('so-pin-1') }))).rv).toBe(CKR.OK);
    expect((await call(l, request('C_InitPIN', { session: so, pin: Buffer.from('user-pin') }))).rv).toBe(CKR.OK);
    expect((await call(l, request('C_Logout', { session: so }))).rv).toBe(CKR.OK);
    const session = (await call(l, request('C_OpenSession', { slotId: 0, flags: RW }))).args.session as number;
    expect((await call(l, request('C_Login', { session, userType: CKU.USER, pin: Buffer.from('user-pin') }))).rv).toBe(CKR.OK);
    for (let i = 0; i < padding; i++) {
      expect((await call(l, request('C_CreateObject', { session, template: [attr.ulong(CKA.CLASS, CKO.DATA), attr.bool(CKA.TOKEN, false)] }))).rv).toBe(CKR.OK);
    }
    const secret = await call(l, request('C_GenerateKey', {
      session, mechanism: { type: CKM.AES_KEY_GEN, parameter: null },
      template: [attr.ulong(CKA.VALUE_LEN, 32), attr.bool(CKA.TOKEN, true), attr.bool(CKA.ENCRYPT, true), attr.bool(CKA.EXTRACTABLE, true)],
    }));
    expect(secret.rv).toBe(CKR.OK);
    const pair = await call(l, request('C_GenerateKeyPair', {
      session, mechanism: { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
      publicKeyTemplate: [attr.bytes(CKA.EC_PARAMS, Buffer.from('06082a8648ce3d030107', 'hex')), attr.bool(CKA.TOKEN, true), attr.bool(CKA.VERIFY, true)],
      privateKeyTemplate: [attr.bool(CKA.TOKEN, true), attr.bool(CKA.SIGN, true), attr.bool(CKA.PRIVATE, true)],
    }));
    expect(pair.rv).toBe(CKR.OK);
    const info = { serial: await target.partitionSerial(partition) };
    return {
      client, link: l, session, secretKey: secret.args.key as number,
      privateKey: pair.args.privateKey as number, publicKey: pair.args.publicKey as number, serial: info.serial,
    };
  }

  let alice: Party;
  let bob: Party;

  beforeAll(async () => {
    backend = new TestBackend(kind, [{ label: 'alice-partition', soPin: 'so-pin-1' }, { label: 'bob-partition', soPin: 'so-pin-1' }]);
    target = await startTarget(via, {
      config: { hsm: backend.hsmConfig({ kdfCost: 1024, pinMinLength: 4 }), datapath: { receiveTimeout: 0 } }, env: backend.env,
    });
    alice = await party('alice', 'alice-partition');
    // On pkcs11 each partition is a module of its own, numbering its objects from the same start:
    // without the padding bob's handles would be the very numbers of alice's own objects.
    bob = await party('bob', 'bob-partition', 16);
  });

  afterAll(async () => {
    await alice?.link.close();
    await bob?.link.close();
    await target?.stop();
    backend?.remove();
  });

  it('each sees one slot: its own partition', async () => {
    for (const p of [alice, bob]) {
      expect((await call(p.link, request('C_GetSlotList', { tokenPresent: 1, slotList: outputRequest(8) }))).args.slotList).toEqual([0]);
      const token = await call(p.link, request('C_GetTokenInfo', { slotId: 0 }));
      expect((token.args.serialNumber as string).trim()).toBe(p.serial.slice(0, 16));
      expect((token.args.manufacturerId as string).trim()).toBe(backend.tokenManufacturer);
    }
    expect(alice.serial).not.toBe(bob.serial);
  });

  it('slot ids beyond the client\'s own are CKR_SLOT_ID_INVALID for every slot call', async () => {
    const slotCalls: P11KitRequest[] = [
      request('C_GetSlotInfo', { slotId: 1 }),
      request('C_GetTokenInfo', { slotId: 1 }),
      request('C_GetMechanismList', { slotId: 1, mechanismList: outputRequest(100) }),
      request('C_GetMechanismInfo', { slotId: 1, type: CKM.AES_KEY_GEN }),
      request('C_InitToken', { slotId: 1, pin: Buffer.from('so-pin-1'), label: 'stolen' }),
      request('C_OpenSession', { slotId: 1, flags: RW }),
      request('C_CloseAllSessions', { slotId: 1 }),
    ];
    for (const req of slotCalls) expect((await call(alice.link, req)).rv, req.call).toBe(CKR.SLOT_ID_INVALID);
  });

  it('the other client\'s session handle is CKR_SESSION_HANDLE_INVALID for every session call', async () => {
    const s = bob.session;
    const mech = { type: CKM.ECDSA, parameter: null };
    const sessionCalls: P11KitRequest[] = [
      request('C_GetSessionInfo', { session: s }),
      request('C_Login', { session: s, userType: CKU.USER, pin: Buffer.from('user-pin') }),
      request('C_Logout', { session: s }),
      request('C_InitPIN', { session: s, pin: Buffer.from('x-pin-12') }),
      request('C_SetPIN', { session: s, oldPin: Buffer.from('user-pin'), newPin: Buffer.from('new-pin-1') }),
      request('C_CreateObject', { session: s, template: [attr.ulong(CKA.CLASS, CKO.DATA)] }),
      request('C_FindObjectsInit', { session: s, template: [] }),
      request('C_FindObjects', { session: s, objects: outputRequest(10) }),
      request('C_FindObjectsFinal', { session: s }),
      request('C_SignInit', { session: s, mechanism: mech, key: bob.privateKey }),
      request('C_Sign', { session: s, data: Buffer.alloc(32), signature: outputRequest(100) }),
      request('C_VerifyInit', { session: s, mechanism: mech, key: bob.publicKey }),
      request('C_EncryptInit', { session: s, mechanism: { type: CKM.AES_ECB, parameter: null }, key: bob.secretKey }),
      request('C_DigestInit', { session: s, mechanism: { type: CKM.SHA256, parameter: null } }),
      request('C_GenerateRandom', { session: s, randomData: outputRequest(16) }),
      request('C_GenerateKey', { session: s, mechanism: { type: CKM.AES_KEY_GEN, parameter: null }, template: [attr.ulong(CKA.VALUE_LEN, 16)] }),
      request('C_GetAttributeValue', { session: s, object: bob.secretKey, template: [{ type: CKA.LABEL, length: 0 }] }),
      request('C_DestroyObject', { session: s, object: bob.secretKey }),
      request('C_CloseSession', { session: s }),
    ];
    for (const req of sessionCalls) expect((await call(alice.link, req)).rv, req.call).toBe(CKR.SESSION_HANDLE_INVALID);
    // Bob's session is untouched.
    expect((await call(bob.link, request('C_GetSessionInfo', { session: bob.session }))).rv).toBe(CKR.OK);
  });

  it('the other client\'s object handles are CKR_OBJECT_HANDLE_INVALID / KEY_HANDLE_INVALID in one\'s own session', async () => {
    const s = alice.session;
    // The values tried are bob's alone: none of them names an object of alice's.
    for (const h of [bob.secretKey, bob.privateKey, bob.publicKey]) expect([alice.secretKey, alice.privateKey, alice.publicKey]).not.toContain(h);
    expect((await call(alice.link, request('C_GetAttributeValue', { session: s, object: bob.secretKey, template: [{ type: CKA.LABEL, length: 0 }] }))).rv).toBe(CKR.OBJECT_HANDLE_INVALID);
    expect((await call(alice.link, request('C_SetAttributeValue', { session: s, object: bob.secretKey, template: [attr.bytes(CKA.LABEL, Buffer.from('x'))] }))).rv).toBe(CKR.OBJECT_HANDLE_INVALID);
    expect((await call(alice.link, request('C_DestroyObject', { session: s, object: bob.privateKey }))).rv).toBe(CKR.OBJECT_HANDLE_INVALID);
    expect((await call(alice.link, request('C_CopyObject', { session: s, object: bob.secretKey, template: [] }))).rv).toBe(CKR.OBJECT_HANDLE_INVALID);
    expect((await call(alice.link, request('C_SignInit', { session: s, mechanism: { type: CKM.ECDSA, parameter: null }, key: bob.privateKey }))).rv).toBe(CKR.KEY_HANDLE_INVALID);
    expect((await call(alice.link, request('C_EncryptInit', { session: s, mechanism: { type: CKM.AES_ECB, parameter: null }, key: bob.secretKey }))).rv).toBe(CKR.KEY_HANDLE_INVALID);
    expect((await call(alice.link, request('C_WrapKey', { session: s, mechanism: { type: CKM.AES_KEY_WRAP, parameter: null }, wrappingKey: alice.secretKey, key: bob.secretKey, wrappedKey: outputRequest(100) }))).rv).toBe(CKR.KEY_HANDLE_INVALID);
    // Searching finds only one's own objects.
    expect((await call(alice.link, request('C_FindObjectsInit', { session: s, template: [] }))).rv).toBe(CKR.OK);
    const found = (await call(alice.link, request('C_FindObjects', { session: s, objects: outputRequest(100) }))).args.objects as number[];
    await call(alice.link, request('C_FindObjectsFinal', { session: s }));
    expect(found).toEqual(expect.arrayContaining([alice.secretKey, alice.privateKey, alice.publicKey]));
    for (const h of [bob.secretKey, bob.privateKey, bob.publicKey]) expect(found).not.toContain(h);
  });

  it('login state never leaks: a second connection of the same client is not logged in', async () => {
    const other = await target.connect(alice.client);
    await call(other, request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }));
    const s = (await call(other, request('C_OpenSession', { slotId: 0, flags: RW }))).args.session as number;
    // Not logged in, the private key is not even visible to this connection.
    const rv = (await call(other, request('C_SignInit', { session: s, mechanism: { type: CKM.ECDSA, parameter: null }, key: alice.privateKey }))).rv;
    expect([CKR.KEY_HANDLE_INVALID, CKR.USER_NOT_LOGGED_IN]).toContain(rv);
    expect((await call(other, request('C_GetSessionInfo', { session: s }))).args.state).toBe(2 /* CKS_RW_PUBLIC_SESSION */);
    await other.close();
  });

  it('another connection on the same partition sees neither one\'s session objects nor, not logged in, one\'s private objects', async () => {
    const made = await call(alice.link, request('C_CreateObject', {
      session: alice.session, template: [attr.ulong(CKA.CLASS, CKO.DATA), attr.bool(CKA.TOKEN, false), attr.bytes(CKA.LABEL, Buffer.from('alice-session-data'))],
    }));
    expect(made.rv).toBe(CKR.OK);
    const sessionObject = made.args.object as number;
    const other = await target.connect(alice.client);
    await call(other, request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }));
    const s = (await call(other, request('C_OpenSession', { slotId: 0, flags: RW }))).args.session as number;
    for (const h of [sessionObject, alice.privateKey]) {
      expect((await call(other, request('C_GetAttributeValue', { session: s, object: h, template: [{ type: CKA.LABEL, length: 0 }] }))).rv).toBe(CKR.OBJECT_HANDLE_INVALID);
      expect((await call(other, request('C_DestroyObject', { session: s, object: h }))).rv).toBe(CKR.OBJECT_HANDLE_INVALID);
    }
    expect((await call(other, request('C_FindObjectsInit', { session: s, template: [] }))).rv).toBe(CKR.OK);
    const found = (await call(other, request('C_FindObjects', { session: s, objects: outputRequest(100) }))).args.objects as number[];
    await call(other, request('C_FindObjectsFinal', { session: s }));
    expect(found).toContain(alice.publicKey);
    expect(found).not.toContain(alice.privateKey);
    expect(found).not.toContain(sessionObject);
    await other.close();
    // Alice still has both.
    for (const h of [sessionObject, alice.privateKey]) {
      expect((await call(alice.link, request('C_GetAttributeValue', { session: alice.session, object: h, template: [{ type: CKA.CLASS, length: 8 }] }))).rv).toBe(CKR.OK);
    }
  });

  it('connections logging in to a partition nobody is logged in to, all at once, each get CKR_OK and their own login', async () => {
    expect((await call(alice.link, request('C_Logout', { session: alice.session }))).rv).toBe(CKR.OK);
    const others = await Promise.all(Array.from({ length: 4 }, () => target.connect(alice.client)));
    const sessions: number[] = [];
    for (const l of others) {
      await call(l, request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }));
      sessions.push((await call(l, request('C_OpenSession', { slotId: 0, flags: RW }))).args.session as number);
    }
    const logins = await Promise.all(others.map((l, i) => call(l, request('C_Login', { session: sessions[i]!, userType: CKU.USER, pin: Buffer.from('user-pin') }))));
    expect(logins.map((r) => r.rv)).toEqual(others.map(() => CKR.OK));
    for (const [i, l] of others.entries()) expect((await call(l, request('C_GetSessionInfo', { session: sessions[i]! }))).args.state).toBe(3 /* CKS_RW_USER_FUNCTIONS */);
    // Alice's own connection stayed logged out, and logs in again.
    expect((await call(alice.link, request('C_GetSessionInfo', { session: alice.session }))).args.state).toBe(2 /* CKS_RW_PUBLIC_SESSION */);
    await Promise.all(others.map((l) => l.close()));
    expect((await call(alice.link, request('C_Login', { session: alice.session, userType: CKU.USER, pin: Buffer.from('user-pin') }))).rv).toBe(CKR.OK);
  });

  it('revoking a partition ends the client\'s sessions at once', async () => {
    await target.revoke('bob', 'bob-partition');
    const deadline = Date.now() + 5000;
    let rv = CKR.OK as number;
    while (Date.now() < deadline) {
      rv = (await call(bob.link, request('C_GetSessionInfo', { session: bob.session }))).rv;
      if (rv !== CKR.OK) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(rv).toBe(CKR.SESSION_HANDLE_INVALID);
    expect((await call(bob.link, request('C_GetSlotList', { tokenPresent: 1, slotList: outputRequest(8) }))).args.slotList).toEqual([]);
  });

  it('a live link keeps its slot numbers when assignments change: a revoked slot leaves a hole, never another token', async () => {
    const slotsOf = async (l: TargetLink) => (await call(l, request('C_GetSlotList', { tokenPresent: 1, slotList: outputRequest(8) }))).args.slotList as number[];
    const serialAt = async (l: TargetLink, slotId: number) => {
      const answer = await call(l, request('C_GetTokenInfo', { slotId }));
      return answer.rv === CKR.OK ? (answer.args.serialNumber as string).trim() : answer.rv;
    };
    const until = async (l: TargetLink, slots: number[]) => {
      for (let i = 0; i < 100 && JSON.stringify(await slotsOf(l)) !== JSON.stringify(slots); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await slotsOf(l)).toEqual(slots);
    };
    const [aliceSerial, bobSerial] = [alice.serial.slice(0, 16), bob.serial.slice(0, 16)];
    await target.assign('alice', 'bob-partition');
    await until(alice.link, [0, 1]);
    expect(await serialAt(alice.link, 1)).toBe(bobSerial);
    await target.revoke('alice', 'alice-partition');
    await until(alice.link, [1]);
    expect(await serialAt(alice.link, 1)).toBe(bobSerial);
    expect(await serialAt(alice.link, 0)).toBe(CKR.SLOT_ID_INVALID);
    expect((await call(alice.link, request('C_OpenSession', { slotId: 0, flags: RW }))).rv).toBe(CKR.SLOT_ID_INVALID);
    // A new link numbers from 0 again.
    const fresh = await target.connect('alice');
    await call(fresh, request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }));
    expect(await slotsOf(fresh)).toEqual([0]);
    expect(await serialAt(fresh, 0)).toBe(bobSerial);
    await fresh.close();
    // Given back, the partition comes after the last number the live link has seen.
    await target.assign('alice', 'alice-partition');
    await until(alice.link, [1, 2]);
    expect(await serialAt(alice.link, 2)).toBe(aliceSerial);
    expect(await serialAt(alice.link, 0)).toBe(CKR.SLOT_ID_INVALID);
  });
});
