// The client library end to end over mutual TLS: the mechanisms bookworm's p11-kit client
// cannot pass (AES-GCM/CBC/CTR/KW, ECDH, EdDSA), each checked against node:crypto.
import {
  createCipheriv, createDecipheriv, createECDH, randomBytes, verify as nodeVerify,
} from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NtlsClient } from '../../src/client/ntls-client.js';
import type { Pkcs11Remote } from '../../src/client/pkcs11-remote.js';
import { CKA, CKD, CKK, CKM, CKO, CKR, CKU, Pkcs11Error } from '../../src/pkcs11/constants.js';
import { removeHome } from '../support/daemon.js';
import { CO_PIN, initialiseSlot, setUp, type Setup } from './support.js';

let s: Setup;
let client: NtlsClient;
let p11: Pkcs11Remote;
let session: number;

const kek = randomBytes(32);
const aesKey = randomBytes(32);

async function secretKey(value: Buffer, extra: Array<{ type: number; value: boolean | number | Buffer | string }> = []): Promise<number> {
  return p11.createObject(session, [
    { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }, { type: CKA.TOKEN, value: false },
    { type: CKA.VALUE, value }, ...extra,
  ]);
}

beforeAll(async () => {
  s = await setUp();
  await initialiseSlot(s.alice);
  client = s.alice.library();
  p11 = client.server();
  session = await p11.openSession(0);
  await p11.login(session, CKU.USER, CO_PIN);
});
afterAll(async () => {
  await client?.close();
  await s?.daemon.stop();
  if (s) removeHome(s.home);
  s?.alice.remove();
});

describe('AES modes with parameters', () => {
  it('AES-GCM with IV and AAD, both ways', async () => {
    const key = await secretKey(aesKey);
    const iv = randomBytes(12);
    const aad = Buffer.from('header');
    const plain = randomBytes(1000);
    const mechanism = { type: CKM.AES_GCM, parameter: { kind: 'gcm' as const, iv, aad, tagBits: 128 } };
    const sealed = await p11.encrypt(session, mechanism, key, plain);
    const d = createDecipheriv('aes-256-gcm', aesKey, iv);
    d.setAAD(aad);
    d.setAuthTag(sealed.subarray(sealed.length - 16));
    expect(Buffer.concat([d.update(sealed.subarray(0, sealed.length - 16)), d.final()]).equals(plain)).toBe(true);
    const c = createCipheriv('aes-256-gcm', aesKey, iv);
    c.setAAD(aad);
    const theirs = Buffer.concat([c.update(plain), c.final(), c.getAuthTag()]);
    expect((await p11.decrypt(session, mechanism, key, theirs)).equals(plain)).toBe(true);
    theirs[0]! ^= 1;
    await expect(p11.decrypt(session, mechanism, key, theirs)).rejects.toMatchObject({ rv: CKR.ENCRYPTED_DATA_INVALID });
  });

  it('AES-CBC, AES-CBC-PAD and AES-CTR', async () => {
    const key = await secretKey(aesKey);
    const iv = randomBytes(16);
    const block = randomBytes(64);
    const odd = randomBytes(77);
    const cbc = await p11.encrypt(session, { type: CKM.AES_CBC, parameter: { kind: 'bytes', value: iv } }, key, block);
    const n1 = createCipheriv('aes-256-cbc', aesKey, iv).setAutoPadding(false);
    expect(cbc.equals(Buffer.concat([n1.update(block), n1.final()]))).toBe(true);
    const pad = await p11.encrypt(session, { type: CKM.AES_CBC_PAD, parameter: { kind: 'bytes', value: iv } }, key, odd);
    const n2 = createCipheriv('aes-256-cbc', aesKey, iv);
    expect(pad.equals(Buffer.concat([n2.update(odd), n2.final()]))).toBe(true);
    expect((await p11.decrypt(session, { type: CKM.AES_CBC_PAD, parameter: { kind: 'bytes', value: iv } }, key, pad)).equals(odd)).toBe(true);
    const counterBlock = Buffer.concat([randomBytes(12), Buffer.alloc(4)]);
    const ctr = await p11.encrypt(session, { type: CKM.AES_CTR, parameter: { kind: 'ctr', counterBits: 32, counterBlock } }, key, odd);
    const n3 = createCipheriv('aes-256-ctr', aesKey, counterBlock);
    expect(ctr.equals(Buffer.concat([n3.update(odd), n3.final()]))).toBe(true);
  });

  it('AES-CMAC and AES-CMAC-GENERAL (its length travels as CK_MAC_GENERAL_PARAMS) give RFC 4493\'s MAC', async () => {
    const key = await secretKey(Buffer.from('2b7e151628aed2a6abf7158809cf4f3c', 'hex'), [{ type: CKA.SIGN, value: true }, { type: CKA.VERIFY, value: true }]);
    const message = Buffer.from('6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411', 'hex');
    const mac = Buffer.from('dfa66747de9ae63030ca32611497c827', 'hex');
    expect(await p11.sign(session, { type: CKM.AES_CMAC, parameter: null }, key, message)).toEqual(mac);
    const general = { type: CKM.AES_CMAC_GENERAL, parameter: { kind: 'bytes' as const, value: Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]) } };
    expect(await p11.sign(session, general, key, message)).toEqual(mac.subarray(0, 8));
    expect(await p11.verify(session, general, key, message, mac.subarray(0, 8))).toBe(true);
    expect(await p11.verify(session, { type: CKM.AES_CMAC, parameter: null }, key, Buffer.from('other'), mac)).toBe(false);
  });

  it('AES key wrap (RFC 3394) and with padding (RFC 5649), wrap and unwrap', async () => {
    const wrapping = await secretKey(kek, [{ type: CKA.WRAP, value: true }, { type: CKA.UNWRAP, value: true }]);
    const inner = randomBytes(16);
    const target = await secretKey(inner, [{ type: CKA.EXTRACTABLE, value: true }, { type: CKA.SENSITIVE, value: false }]);
    const wrapped = await p11.wrapKey(session, { type: CKM.AES_KEY_WRAP, parameter: null }, wrapping, target);
    const n = createCipheriv('id-aes256-wrap', kek, Buffer.from('A6A6A6A6A6A6A6A6', 'hex'));
    expect(wrapped.equals(Buffer.concat([n.update(inner), n.final()]))).toBe(true);
    const padded = await p11.wrapKey(session, { type: CKM.AES_KEY_WRAP_PAD, parameter: null }, wrapping, target);
    const np = createCipheriv('id-aes256-wrap-pad', kek, Buffer.from('A65959A6', 'hex'));
    expect(padded.equals(Buffer.concat([np.update(inner), np.final()]))).toBe(true);
    const back = await p11.unwrapKey(session, { type: CKM.AES_KEY_WRAP, parameter: null }, wrapping, wrapped, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.AES }, { type: CKA.TOKEN, value: false },
      { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true },
    ]);
    const [value] = await p11.getAttributeValue(session, back, [CKA.VALUE]);
    expect((value!.value as Buffer).equals(inner)).toBe(true);
  });
});

describe('ECDH and EdDSA', () => {
  it('ECDH1_DERIVE on P-256 gives the secret node:crypto computes', async () => {
    const token = await client.openToken({ slot: 0, pin: CO_PIN });
    const pair = await token.generateKeyPair('ec-p256', { label: 'ecdh', token: false });
    const [point] = await p11.getAttributeValue(token.session, pair.publicKey!, [CKA.EC_POINT]);
    const hsmPoint = (point!.value as Buffer).subarray(2); // DER OCTET STRING: 04 41 || 04 X Y
    const ours = createECDH('prime256v1');
    ours.generateKeys();
    const derived = await p11.deriveKey(token.session, {
      type: CKM.ECDH1_DERIVE, parameter: { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: ours.getPublicKey() },
    }, pair.privateKey!, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.GENERIC_SECRET }, { type: CKA.VALUE_LEN, value: 32 },
      { type: CKA.TOKEN, value: false }, { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true },
    ]);
    const [secret] = await p11.getAttributeValue(token.session, derived, [CKA.VALUE]);
    expect((secret!.value as Buffer).equals(ours.computeSecret(hsmPoint))).toBe(true);
    await token.close();
  });

  it('EdDSA (Ed25519): the HSM\'s signature verifies in node:crypto; a changed message does not verify', async () => {
    const token = await client.openToken({ slot: 0, pin: CO_PIN });
    const pair = await token.generateKeyPair('ed25519', { label: 'ed', token: false });
    const message = Buffer.from('message to sign');
    const signature = await p11.sign(token.session, { type: CKM.EDDSA, parameter: null }, pair.privateKey!, message);
    expect(signature).toHaveLength(64);
    expect(nodeVerify(null, message, await token.publicKey(pair.publicKey!), signature)).toBe(true);
    expect(await p11.verify(token.session, { type: CKM.EDDSA, parameter: null }, pair.publicKey!, message, signature)).toBe(true);
    expect(await p11.verify(token.session, { type: CKM.EDDSA, parameter: null }, pair.publicKey!, Buffer.from('other'), signature)).toBe(false);
    await token.close();
  });
});

describe('the PKCS#11-shaped API', () => {
  it('slots, token info, mechanisms, digest, random, find, attributes, destroy', async () => {
    expect(await p11.getSlotList()).toEqual([0]);
    const info = await p11.getTokenInfo(0);
    expect(info.label).toBe('default');
    const mechanisms = await p11.getMechanismList(0);
    expect(mechanisms).toEqual(expect.arrayContaining([CKM.AES_GCM, CKM.ECDH1_DERIVE, CKM.EDDSA, CKM.AES_KEY_WRAP]));
    const digest = await p11.digest(session, { type: CKM.SHA256, parameter: null }, Buffer.from('abc'));
    expect(digest.toString('hex')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(await p11.generateRandom(session, 5000)).toHaveLength(5000);
    const handle = await p11.createObject(session, [
      { type: CKA.CLASS, value: CKO.DATA }, { type: CKA.TOKEN, value: false }, { type: CKA.LABEL, value: 'note' }, { type: CKA.VALUE, value: Buffer.from('hello') },
    ]);
    expect(await p11.findObjects(session, [{ type: CKA.LABEL, value: 'note' }])).toEqual([handle]);
    const [label, value, missing] = await p11.getAttributeValue(session, handle, [CKA.LABEL, CKA.VALUE, CKA.MODULUS]);
    expect((label!.value as Buffer).toString()).toBe('note');
    expect((value!.value as Buffer).toString()).toBe('hello');
    expect(missing!.value).toBeNull();
    await p11.destroyObject(session, handle);
    expect(await p11.findObjects(session, [{ type: CKA.LABEL, value: 'note' }])).toEqual([]);
    await expect(p11.destroyObject(session, handle)).rejects.toBeInstanceOf(Pkcs11Error);
  });

  it('a wrong PIN is CKR_PIN_INCORRECT (another connection: login state is per connection)', async () => {
    const second = s.alice.library();
    try {
      await expect(second.openToken({ pin: 'wrong-pin' })).rejects.toMatchObject({ rv: CKR.PIN_INCORRECT, code: 'CKR_PIN_INCORRECT' });
    } finally {
      await second.close();
    }
  });

  it('the convenience layer: key pair, sign, verify, encrypt, decrypt, random', async () => {
    const token = await client.openToken({ pin: CO_PIN });
    await token.generateKeyPair('rsa-2048', { label: 'conv-rsa', token: false });
    await token.generateKey('aes-128', { label: 'conv-aes', token: false });
    const data = Buffer.from('convenient');
    const signature = await token.sign('conv-rsa', data);
    expect(nodeVerify('sha256', data, await token.publicKey('conv-rsa'), signature)).toBe(true);
    expect(await token.verify('conv-rsa', data, signature)).toBe(true);
    for (const key of ['conv-rsa', 'conv-aes']) {
      expect((await token.decrypt(key, await token.encrypt(key, data))).equals(data)).toBe(true);
    }
    expect(await token.random(33)).toHaveLength(33);
    await token.close();
  });
});

describe('pipelining', () => {
  it('many concurrent requests travel on one link at once and each gets its own answer', async () => {
    const token = await client.openToken({ pin: CO_PIN });
    const pair = await token.generateKeyPair('ec-p256', { label: 'pipe', token: false });
    const publicKey = await token.publicKey(pair.publicKey!);
    const messages = Array.from({ length: 200 }, (_, i) => Buffer.from(`message ${i}`));
    const before = client.server().connection.generation;
    const pending = messages.map((m) => p11.sign(token.session, { type: CKM.ECDSA_SHA256, parameter: null }, pair.privateKey!, m));
    await new Promise((r) => setImmediate(r));
    expect(client.server().connection.inFlight).toBeGreaterThan(50);
    const signatures = await Promise.all(pending);
    signatures.forEach((sig, i) => expect(nodeVerify('sha256', messages[i]!, { key: publicKey, dsaEncoding: 'ieee-p1363' }, sig)).toBe(true));
    const randoms = await Promise.all(Array.from({ length: 100 }, (_, i) => p11.generateRandom(session, i + 1)));
    randoms.forEach((r, i) => expect(r).toHaveLength(i + 1));
    expect(client.server().connection.generation).toBe(before);
    await token.close();
  });
});
