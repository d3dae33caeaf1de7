// p11-kit protocol versions 1 and 2 (p11-kit 0.25): a client offering version 2 gets it, and
// C_InitToken2 (space-padded label) and C_DeriveKey2 (result inside the answer) are served.
// protocol-v2.test.ts runs it on the software HSM through the in-process harness (unit),
// protocol-v2.daemon.test.ts on SoftHSM2 in the real daemon (integration).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createECDH } from 'node:crypto';
import { CKA, CKF, CKK, CKM, CKO, CKR, CKU, CKD } from '../../src/pkcs11/constants.js';
import { attr, request, P11KIT_HANDSHAKE } from '../../src/protocol/p11kit/index.js';
import { call } from '../support/p11kit.js';
import { TestBackend, type BackendKind } from '../support/backends.js';
import { startTarget, type ProcessorTarget, type TargetKind } from '../support/processor-target.js';

export const protocolV2Suite = (kind: BackendKind, via: TargetKind) => describe.each([kind])('protocol version 2 (%s backend)', (kind) => {
  let backend: TestBackend;
  let target: ProcessorTarget;

  beforeAll(async () => {
    // On pkcs11 the default partition is a SoftHSM2 token; C_InitToken2 re-initialises it with its SO PIN.
    backend = new TestBackend(kind, [{ label: 'default', soPin: 'so-pin-2' }]);
    target = await startTarget(via, {
      config: { hsm: backend.hsmConfig({ kdfCost: 1024, pinMinLength: 4 }), datapath: { receiveTimeout: 0 } }, env: backend.env,
    });
    await target.register('modern');
    await target.assign('modern', 'default');
  });
  afterAll(async () => {
    await target?.stop();
    backend?.remove();
  });

  it('negotiates 2, initialises with C_InitToken2 and derives an ECDH secret with C_DeriveKey2', async () => {
    const l = await target.connect('modern', { protocolVersion: 2 });
    expect(l.protocolVersion).toBe(2);
    const v = 2;
    expect((await call(l, request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }), v)).rv).toBe(CKR.OK);
    expect((await call(l, request('C_InitToken2', { slotId: 0, pin: Buffer.from('so-pin-2'), label: 'modern'.padEnd(32, ' ') }), v)).rv).toBe(CKR.OK);
    const token = await call(l, request('C_GetTokenInfo', { slotId: 0 }), v);
    expect((token.args.label as string).trim()).toBe('modern');
    expect((token.args.manufacturerId as string).trim()).toBe(backend.tokenManufacturer);
    const rw = CKF.SERIAL_SESSION | CKF.RW_SESSION;
    const so = (await call(l, request('C_OpenSession', { slotId: 0, flags: rw }), v)).args.session as number;
    expect((await call(l, request('C_Login', { session: so, userType: CKU.SO, pin: Buffer.from('so-pin-2') }), v)).rv).toBe(CKR.OK);
    expect((await call(l, request('C_InitPIN', { session: so, pin: Buffer.from('user-pin') }), v)).rv).toBe(CKR.OK);
    await call(l, request('C_Logout', { session: so }), v);
    const s = (await call(l, request('C_OpenSession', { slotId: 0, flags: rw }), v)).args.session as number;
    expect((await call(l, request('C_Login', { session: s, userType: CKU.USER, pin: Buffer.from('user-pin') }), v)).rv).toBe(CKR.OK);
    const pair = await call(l, request('C_GenerateKeyPair', {
      session: s, mechanism: { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
      publicKeyTemplate: [attr.bytes(CKA.EC_PARAMS, Buffer.from('06082a8648ce3d030107', 'hex'))],
      privateKeyTemplate: [attr.bool(CKA.DERIVE, true), attr.bool(CKA.SENSITIVE, true)],
    }), v);
    expect(pair.rv).toBe(CKR.OK);
    const point = await call(l, request('C_GetAttributeValue', { session: s, object: pair.args.publicKey as number, template: [{ type: CKA.EC_POINT, length: 100 }] }), v);
    const ecPoint = ((point.args.template as Array<{ value: { value: Buffer } }>)[0]!.value.value).subarray(2); // DER OCTET STRING
    const peer = createECDH('prime256v1');
    const peerPublic = peer.generateKeys();
    const derived = await call(l, request('C_DeriveKey2', {
      session: s,
      mechanism: { type: CKM.ECDH1_DERIVE, parameter: { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: peerPublic } },
      baseKey: pair.args.privateKey as number,
      template: [attr.ulong(CKA.CLASS, CKO.SECRET_KEY), attr.ulong(CKA.KEY_TYPE, CKK.GENERIC_SECRET), attr.bool(CKA.SENSITIVE, false), attr.bool(CKA.EXTRACTABLE, true)],
    }), v);
    expect(derived.rv).toBe(CKR.OK);
    expect(derived.args.result).toBe(CKR.OK);
    const value = await call(l, request('C_GetAttributeValue', { session: s, object: derived.args.key as number, template: [{ type: CKA.VALUE, length: 64 }] }), v);
    const secret = (value.args.template as Array<{ value: { value: Buffer } }>)[0]!.value.value;
    expect(secret.equals(peer.computeSecret(ecPoint))).toBe(true);
    // A failing derivation: the CKR_ travels in the answer's result.
    const bad = await call(l, request('C_DeriveKey2', {
      session: s,
      mechanism: { type: CKM.ECDH1_DERIVE, parameter: { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: peerPublic } },
      baseKey: 999999,
      template: [attr.ulong(CKA.CLASS, CKO.SECRET_KEY), attr.ulong(CKA.KEY_TYPE, CKK.GENERIC_SECRET)],
    }), v);
    expect(bad.args.result).toBe(CKR.KEY_HANDLE_INVALID);
    await l.close();
  });
});
