// The client half of the codec against the real server: requests encoded by P11KitClientCodec
// go to `p11-kit server` 0.24.1 fronting SoftHSM2, its answers are decoded by the codec, and the
// cryptography they carry is checked with node:crypto. Skipped when the tools are missing.

import { FrameParser } from '../../support/frame-parser.js';
import { createHash, createPublicKey, createVerify, constants as cryptoConstants } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CKA, CKF, CKG, CKK, CKM, CKO, CKR, CKU } from '../../../src/pkcs11/constants.js';
import {
  P11KIT_HANDSHAKE, P11KitClientCodec, attr, isLengthOnly, outputRequest, request, responseRv,
  type P11KitRequest, type P11KitResponse, type ResponseOf,
} from '../../../src/protocol/p11kit/index.js';
import { PIN, startSoftHsmServer, toolsAvailable, type SoftHsmServer } from './capture/capture.js';

class Connection {
  private readonly parser = new FrameParser();
  private readonly waiting: ((b: Buffer) => void)[] = [];
  private versionByte: Promise<number>;
  codec: P11KitClientCodec | null = null;

  constructor(private readonly sock: net.Socket) {
    let gotVersion: (v: number) => void = () => {};
    this.versionByte = new Promise((r) => (gotVersion = r));
    let haveVersion = false;
    sock.on('data', (chunk: Buffer) => {
      if (!haveVersion) {
        haveVersion = true;
        gotVersion(chunk[0]!);
        chunk = chunk.subarray(1);
      }
      const { frames, error } = this.parser.push(chunk);
      if (error) throw error;
      for (const f of frames) {
        const r = this.codec!.response(f);
        if (!r.ok) throw r.error;
        this.results.push(r.value);
        this.waiting.shift()!(f.body);
      }
    });
  }

  private results: P11KitResponse[] = [];

  async hello(offer: number): Promise<number> {
    this.sock.write(Buffer.from([offer]));
    const v = await this.versionByte;
    this.codec = new P11KitClientCodec({ version: v, options: Buffer.from('ntls-test') });
    return v;
  }

  async call<R extends P11KitRequest>(req: R): Promise<P11KitResponse> {
    const enc = this.codec!.request(req);
    if (!enc.ok) throw enc.error;
    const done = new Promise<Buffer>((r) => this.waiting.push(r));
    this.sock.write(enc.value.bytes);
    await done;
    return this.results.shift()!;
  }

  async ok<N extends P11KitRequest['call']>(req: Extract<P11KitRequest, { call: N }>): Promise<ResponseOf<N>> {
    const r = await this.call(req);
    expect(responseRv(r), `${req.call} answered ${JSON.stringify(r)}`).toBe(CKR.OK);
    return r as ResponseOf<N>;
  }
}

it('the real tools are installed (CI installs p11-kit, p11-kit-modules, opensc, softhsm2)', () => {
  expect(toolsAvailable()).toBe(true);
});

describe('live: the codec as a client of p11-kit server 0.24.1 + SoftHSM2', () => {
  let hsm: SoftHsmServer;
  let sock: net.Socket;
  let c: Connection;

  beforeAll(async () => {
    hsm = await startSoftHsmServer();
    sock = net.createConnection(hsm.socketPath);
    await new Promise((r) => sock.once('connect', r));
    c = new Connection(sock);
  }, 30_000);

  afterAll(async () => {
    sock?.destroy();
    await hsm?.stop();
  });

  it('walks a whole PKCS#11 session', async () => {
    // p11-kit 0.24.1 answers version 0 to an offer of 2.
    expect(await c.hello(2)).toBe(0);
    await c.ok(request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: Buffer.from([0]) }));

    const count = await c.ok(request('C_GetSlotList', { tokenPresent: 1, slotList: outputRequest(null) }));
    expect(isLengthOnly(count.args.slotList) && count.args.slotList.length).toBe(2); // SoftHSM: the token and a free slot
    const tooSmall = await c.ok(request('C_GetSlotList', { tokenPresent: 0, slotList: outputRequest(1) }));
    expect(tooSmall.args.slotList).toEqual({ kind: 'length', length: 2 }); // the client's CKR_BUFFER_TOO_SMALL
    const list = await c.ok(request('C_GetSlotList', { tokenPresent: 1, slotList: outputRequest(4) }));
    const slot = (list.args.slotList as number[])[0]!;
    const token = await c.ok(request('C_GetTokenInfo', { slotId: slot }));
    expect(token.args.label).toBe('t');

    const mechs = await c.ok(request('C_GetMechanismList', { slotId: slot, mechanismList: outputRequest(512) }));
    expect(mechs.args.mechanismList).toEqual(expect.arrayContaining([CKM.RSA_PKCS_PSS, CKM.AES_CBC_PAD, CKM.ECDSA]));
    const pssInfo = await c.ok(request('C_GetMechanismInfo', { slotId: slot, type: CKM.RSA_PKCS_PSS }));
    expect(pssInfo.args.flags & CKF.SIGN).toBe(CKF.SIGN);

    const session = (await c.ok(request('C_OpenSession', { slotId: slot, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }))).args.session;
    const wrong = await c.call(request('C_Login', { session, userType: CKU.USER, pin: Buffer.from('0000') }));
    expect(wrong).toEqual({ call: 'ERROR', args: { rv: CKR.PIN_INCORRECT } });
    await c.ok(request('C_Login', { session, userType: CKU.USER, pin: Buffer.from(PIN) }));

    // RSA key pair from a template made with the builders.
    const pair = await c.ok(request('C_GenerateKeyPair', {
      session,
      mechanism: { type: CKM.RSA_PKCS_KEY_PAIR_GEN, parameter: null },
      publicKeyTemplate: [attr.ulong(CKA.MODULUS_BITS, 2048), attr.bytes(CKA.PUBLIC_EXPONENT, Buffer.from([1, 0, 1])), attr.bool(CKA.VERIFY, true), attr.bool(CKA.TOKEN, false)],
      privateKeyTemplate: [attr.bool(CKA.SIGN, true), attr.bool(CKA.SENSITIVE, true), attr.bytes(CKA.LABEL, 'codec-rsa'), attr.bytes(CKA.ID, Buffer.from([0xc0])), attr.bool(CKA.TOKEN, false)],
    }));
    const { publicKey, privateKey } = pair.args;

    // Attribute sizes, then values; a sensitive one comes back unavailable.
    const sizes = await c.ok(request('C_GetAttributeValue', { session, object: publicKey, template: [{ type: CKA.MODULUS, length: 0 }, { type: CKA.PUBLIC_EXPONENT, length: 0 }, { type: CKA.KEY_TYPE, length: 0 }] }));
    expect(sizes.args.template.map((a) => a.length)).toEqual([256, 3, 8]);
    const values = await c.ok(request('C_GetAttributeValue', { session, object: publicKey, template: [{ type: CKA.MODULUS, length: 256 }, { type: CKA.PUBLIC_EXPONENT, length: 3 }, { type: CKA.KEY_TYPE, length: 8 }] }));
    expect(values.args.result).toBe(CKR.OK);
    const [modulus, exponent, keyType] = values.args.template;
    expect(keyType!.value).toEqual({ kind: 'ulong', value: CKK.RSA });
    const sensitive = await c.ok(request('C_GetAttributeValue', { session, object: privateKey, template: [{ type: CKA.PRIVATE_EXPONENT, length: 256 }, { type: CKA.LABEL, length: 32 }] }));
    expect(sensitive.args.result).toBe(CKR.ATTRIBUTE_SENSITIVE);
    expect(sensitive.args.template[0]).toEqual({ type: CKA.PRIVATE_EXPONENT, value: null, length: -1 });
    expect(sensitive.args.template[1]!.value).toEqual({ kind: 'bytes', value: Buffer.from('codec-rsa') });

    const jwk = {
      kty: 'RSA',
      n: ((modulus!.value as { value: Buffer }).value).toString('base64url'),
      e: ((exponent!.value as { value: Buffer }).value).toString('base64url'),
    };
    const pub = createPublicKey({ key: jwk, format: 'jwk' });

    // Find it back by class and label.
    await c.ok(request('C_FindObjectsInit', { session, template: [attr.ulong(CKA.CLASS, CKO.PRIVATE_KEY), attr.bytes(CKA.LABEL, 'codec-rsa')] }));
    const found = await c.ok(request('C_FindObjects', { session, objects: outputRequest(10) }));
    expect(found.args.objects).toEqual([privateKey]);
    await c.ok(request('C_FindObjectsFinal', { session }));

    // RSA-PSS (the one parameterised mechanism 0.24.1 carries structured): length query, then sign.
    const digest = createHash('sha256').update('ntls codec').digest();
    const pss = { type: CKM.RSA_PKCS_PSS, parameter: { kind: 'pss' as const, hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, saltLength: 32 } };
    await c.ok(request('C_SignInit', { session, mechanism: pss, key: privateKey }));
    const q = await c.ok(request('C_Sign', { session, data: digest, signature: outputRequest(null) }));
    expect(q.args.signature).toEqual({ kind: 'length', length: 256 });
    const signed = await c.ok(request('C_Sign', { session, data: digest, signature: outputRequest(256) }));
    const sig = signed.args.signature as Buffer;
    expect(createVerify('sha256').update('ntls codec').verify({ key: pub, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, sig)).toBe(true);

    // PKCS#1 v1.5 with SHA-256, verified by SoftHSM through C_Verify and by node.
    await c.ok(request('C_SignInit', { session, mechanism: { type: CKM.SHA256_RSA_PKCS, parameter: null }, key: privateKey }));
    const s2 = (await c.ok(request('C_Sign', { session, data: Buffer.from('ntls codec'), signature: outputRequest(512) }))).args.signature as Buffer;
    expect(createVerify('sha256').update('ntls codec').verify(pub, s2)).toBe(true);
    await c.ok(request('C_VerifyInit', { session, mechanism: { type: CKM.SHA256_RSA_PKCS, parameter: null }, key: publicKey }));
    await c.ok(request('C_Verify', { session, data: Buffer.from('ntls codec'), signature: s2 }));
    await c.ok(request('C_VerifyInit', { session, mechanism: { type: CKM.SHA256_RSA_PKCS, parameter: null }, key: publicKey }));
    expect(responseRv(await c.call(request('C_Verify', { session, data: Buffer.from('other'), signature: s2 })))).toBe(CKR.SIGNATURE_INVALID);

    // AES key from a template with a date and a byte attribute, CBC-PAD with an IV (a byte
    // array in 0.24.1's framing, which the IV serializer writes identically), round trip.
    const aes = (await c.ok(request('C_GenerateKey', {
      session,
      mechanism: { type: CKM.AES_KEY_GEN, parameter: null },
      // CKA_PRIVATE false: SoftHSM 2.6 stores dates in clear but decrypts them on read for
      // private objects, answering CKR_GENERAL_ERROR (P11Attribute::retrieve).
      template: [attr.ulong(CKA.VALUE_LEN, 32), attr.bool(CKA.ENCRYPT, true), attr.bool(CKA.DECRYPT, true), attr.bool(CKA.TOKEN, false), attr.bool(CKA.PRIVATE, false), attr.date(CKA.START_DATE, '20260101')],
    }))).args.key;
    const dates = await c.ok(request('C_GetAttributeValue', { session, object: aes, template: [{ type: CKA.START_DATE, length: 8 }, { type: CKA.ENCRYPT, length: 1 }] }));
    expect(dates.args.template[0]!.value).toEqual({ kind: 'date', value: Buffer.from('20260101') });
    expect(dates.args.template[1]!.value).toEqual({ kind: 'byte', value: 1 });
    await c.ok(request('C_SetAttributeValue', { session, object: aes, template: [attr.date(CKA.END_DATE, '20270202'), attr.bytes(CKA.LABEL, 'codec-aes')] }));
    const end = await c.ok(request('C_GetAttributeValue', { session, object: aes, template: [{ type: CKA.END_DATE, length: 8 }, { type: CKA.LABEL, length: 0 }] }));
    expect(end.args.template).toEqual([attr.date(CKA.END_DATE, '20270202'), attr.sizeOnly(CKA.LABEL, 9)].map((a) => ({ ...a, length: a.length ?? 8 })));
    const iv = Buffer.alloc(16, 9);
    const plain = Buffer.from('seventeen bytes!!');
    await c.ok(request('C_EncryptInit', { session, mechanism: { type: CKM.AES_CBC_PAD, parameter: { kind: 'bytes', value: iv } }, key: aes }));
    const ct = (await c.ok(request('C_Encrypt', { session, data: plain, encryptedData: outputRequest(64) }))).args.encryptedData as Buffer;
    expect(ct.length).toBe(32);
    await c.ok(request('C_DecryptInit', { session, mechanism: { type: CKM.AES_CBC_PAD, parameter: { kind: 'bytes', value: iv } }, key: aes }));
    expect((await c.ok(request('C_Decrypt', { session, encryptedData: ct, data: outputRequest(64) }))).args.data).toEqual(plain);

    // Digest in parts, random bytes, object destruction, logout.
    await c.ok(request('C_DigestInit', { session, mechanism: { type: CKM.SHA256, parameter: null } }));
    await c.ok(request('C_DigestUpdate', { session, part: Buffer.from('ntls ') }));
    await c.ok(request('C_DigestUpdate', { session, part: Buffer.from('codec') }));
    expect((await c.ok(request('C_DigestFinal', { session, digest: outputRequest(64) }))).args.digest).toEqual(digest);
    const rnd = (await c.ok(request('C_GenerateRandom', { session, randomData: outputRequest(24) }))).args.randomData;
    expect(Buffer.isBuffer(rnd) && rnd.length).toBe(24);
    await c.ok(request('C_DestroyObject', { session, object: aes }));
    expect(responseRv(await c.call(request('C_DestroyObject', { session, object: aes })))).toBe(CKR.OBJECT_HANDLE_INVALID);
    const info = await c.ok(request('C_GetSessionInfo', { session }));
    expect(info.args.slotId).toBe(slot);
    await c.ok(request('C_Logout', { session }));
    await c.ok(request('C_CloseSession', { session }));
    await c.ok(request('C_Finalize', {}));
    expect(c.codec!.inFlight).toBe(0);
  }, 60_000);
});
