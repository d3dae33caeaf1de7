// Key generation and operations through the token model: usage attributes, roles, operation
// state, output-buffer rules, wrap/unwrap/derive, and cross-checks with the openssl CLI.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { createHash, createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CKA, CKD, CKK, CKM, CKO, CKR, CKS, CKU } from '../../src/pkcs11/constants.js';
import type { Template } from '../../src/pkcs11/attributes.js';
import { BufferTooSmallError, CKU_CRYPTO_USER, type Application as HsmApplication } from '../../src/token/index.js';
import { type Hsm, CO_PIN, CU_PIN, RO, RW, SO_PIN, mech, readyHsm, removeHome, rv, tempHome, text } from './support.js';

let home: string;
let hsm: Hsm;
let slot: number;
let app: HsmApplication;
let s: number;

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const ED25519 = Buffer.from('130c656477617264733235353139', 'hex');
const t = (type: number, value: unknown) => ({ type, value }) as Template[number];

beforeAll(async () => {
  home = tempHome();
  ({ hsm, slot } = await readyHsm(home));
  app = hsm.application('a');
  s = await app.C_OpenSession(slot, RW);
  await app.C_Login(s, CKU.USER, CO_PIN);
});
afterAll(() => {
  hsm.close();
  removeHome(home);
});

async function aesKey(extra: Template = []): Promise<number> {
  return app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), ...extra]);
}

async function ecPair(pub: Template = [], priv: Template = []) {
  return app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, P256), ...pub], priv);
}

function spkiOf(handle: number, session = s, application = app): Promise<Buffer> {
  return application.C_GetAttributeValue(session, handle, [{ type: CKA.PUBLIC_KEY_INFO }]).then((r) => r.attributes[0]!.value as Buffer);
}

describe('C_GenerateKey', () => {
  it('generates an AES key born sensitive and unextractable in the token', async () => {
    const h = await aesKey([t(CKA.TOKEN, true), t(CKA.LABEL, text('aes'))]);
    const out = await app.C_GetAttributeValue(s, h, [
      { type: CKA.CLASS }, { type: CKA.KEY_TYPE }, { type: CKA.VALUE_LEN }, { type: CKA.LOCAL }, { type: CKA.KEY_GEN_MECHANISM },
      { type: CKA.ALWAYS_SENSITIVE }, { type: CKA.NEVER_EXTRACTABLE }, { type: CKA.VALUE },
    ]);
    expect(out.rv).toBe(CKR.ATTRIBUTE_SENSITIVE);
    expect(out.attributes.slice(0, 7).map((a) => a.value)).toEqual([CKO.SECRET_KEY, CKK.AES, 32, true, CKM.AES_KEY_GEN, true, true]);
  });

  it('generates an HMAC key (generic secret)', async () => {
    const h = await app.C_GenerateKey(s, mech(CKM.GENERIC_SECRET_KEY_GEN), [t(CKA.VALUE_LEN, 32)]);
    await app.C_SignInit(s, mech(CKM.SHA256_HMAC), h);
    expect((await app.C_Sign(s, text('data'))).length).toBe(32);
  });

  it('makes and uses keys of the HMAC key types (CKK_SHA256_HMAC ...), each with its own hash only', async () => {
    const made = await app.C_GenerateKey(s, mech(CKM.GENERIC_SECRET_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.KEY_TYPE, CKK.SHA256_HMAC)]);
    const value = Buffer.from('Jefe');
    const created = await app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.SHA384_HMAC), t(CKA.VALUE, value),
      t(CKA.SIGN, true), t(CKA.VERIFY, true)]);
    const types = await Promise.all([made, created].map((h) => app.C_GetAttributeValue(s, h, [{ type: CKA.KEY_TYPE }, { type: CKA.CHECK_VALUE }])));
    expect(types.map((r) => r.attributes[0]!.value)).toEqual([CKK.SHA256_HMAC, CKK.SHA384_HMAC]);
    expect(types[1]!.attributes[1]!.value).toEqual(createHash('sha1').update(value).digest().subarray(0, 3));
    await app.C_SignInit(s, mech(CKM.SHA256_HMAC), made);
    expect((await app.C_Sign(s, text('data'))).length).toBe(32);
    await app.C_SignInit(s, mech(CKM.SHA384_HMAC), created);
    const data = text('what do ya want for nothing?');
    // RFC 4231, test case 2.
    const expected = 'af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649';
    expect((await app.C_Sign(s, data)).toString('hex')).toBe(expected);
    await app.C_VerifyInit(s, mech(CKM.SHA384_HMAC_GENERAL, { kind: 'bytes', value: Buffer.from(new BigUint64Array([16n]).buffer) }), created);
    await app.C_Verify(s, data, Buffer.from(expected.slice(0, 32), 'hex'));
    expect(await rv(() => app.C_SignInit(s, mech(CKM.SHA256_HMAC), created))).toBe(CKR.KEY_TYPE_INCONSISTENT);
    expect(await rv(() => app.C_GenerateKey(s, mech(CKM.GENERIC_SECRET_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.KEY_TYPE, CKK.DSA)]))).toBe(CKR.TEMPLATE_INCONSISTENT);
  });

  it('error paths', async () => {
    expect(await rv(() => app.C_GenerateKey(s, mech(CKM.SHA256), [t(CKA.VALUE_LEN, 32)]))).toBe(CKR.MECHANISM_INVALID);
    expect(await rv(() => app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), []))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rv(() => app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.CLASS, CKO.PRIVATE_KEY)]))).toBe(CKR.TEMPLATE_INCONSISTENT);
    expect(await rv(() => app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.KEY_TYPE, CKK.RSA)]))).toBe(CKR.TEMPLATE_INCONSISTENT);
    expect(await rv(() => app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.VALUE, Buffer.alloc(32))]))).toBe(CKR.TEMPLATE_INCONSISTENT);
    expect(await rv(() => app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 7)]))).not.toBe(CKR.OK);
    const ro = await app.C_OpenSession(slot, RO);
    expect(await rv(() => app.C_GenerateKey(ro, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.TOKEN, true)]))).toBe(CKR.SESSION_READ_ONLY);
    await app.C_CloseSession(ro);
  });

  it('needs the Crypto Officer: not the SO, not a public session, not the Crypto User', async () => {
    const so = hsm.application('so');
    const x = await so.C_OpenSession(slot, RW);
    await so.C_Login(x, CKU.SO, SO_PIN);
    expect(await rv(() => so.C_GenerateKey(x, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32)]))).toBe(CKR.USER_NOT_LOGGED_IN);
    so.finalize();
    const pub = hsm.application('public');
    const y = await pub.C_OpenSession(slot, RW);
    expect(await rv(() => pub.C_GenerateKey(y, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32), t(CKA.TOKEN, true)]))).toBe(CKR.USER_NOT_LOGGED_IN);
    pub.finalize();
    const cu = hsm.application('cu');
    const z = await cu.C_OpenSession(slot, RW);
    await cu.C_Login(z, CKU_CRYPTO_USER, CU_PIN);
    expect(await rv(() => cu.C_GenerateKey(z, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 32)]))).toBe(CKR.ACTION_PROHIBITED);
    cu.finalize();
  });
});

describe('C_GenerateKeyPair', () => {
  it('RSA-2048, P-256 and Ed25519 pairs with their public attributes', async () => {
    const rsa = await app.C_GenerateKeyPair(s, mech(CKM.RSA_PKCS_KEY_PAIR_GEN), [t(CKA.MODULUS_BITS, 2048), t(CKA.PUBLIC_EXPONENT, Buffer.from([1, 0, 1]))], [t(CKA.TOKEN, true)]);
    const pub = await app.C_GetAttributeValue(s, rsa.publicKey, [{ type: CKA.MODULUS_BITS }, { type: CKA.PUBLIC_EXPONENT }, { type: CKA.CLASS }]);
    expect(pub.attributes.map((a) => a.value)).toEqual([2048, Buffer.from([1, 0, 1]), CKO.PUBLIC_KEY]);
    const priv = await app.C_GetAttributeValue(s, rsa.privateKey, [{ type: CKA.MODULUS }, { type: CKA.LOCAL }, { type: CKA.PRIVATE_EXPONENT }]);
    expect(priv.rv).toBe(CKR.ATTRIBUTE_SENSITIVE);
    expect((priv.attributes[0]!.value as Buffer).length).toBe(256);

    const ec = await ecPair();
    const point = (await app.C_GetAttributeValue(s, ec.publicKey, [{ type: CKA.EC_POINT }])).attributes[0]!.value as Buffer;
    expect(point.length).toBe(67); // DER OCTET STRING of an uncompressed P-256 point
    expect((await app.C_GetAttributeValue(s, ec.privateKey, [{ type: CKA.EC_PARAMS }])).attributes[0]!.value).toEqual(P256);

    const ed = await app.C_GenerateKeyPair(s, mech(CKM.EC_EDWARDS_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, ED25519)], []);
    expect(createPublicKey({ key: await spkiOf(ed.publicKey), format: 'der', type: 'spki' }).asymmetricKeyType).toBe('ed25519');
    // the private key carries its public half too
    for (const pair of [rsa, ec, ed]) expect(await spkiOf(pair.privateKey)).toEqual(await spkiOf(pair.publicKey));
  });

  it('error paths', async () => {
    expect(await rv(() => app.C_GenerateKeyPair(s, mech(CKM.RSA_PKCS_KEY_PAIR_GEN), [], []))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rv(() => app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN), [], []))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rv(() => app.C_GenerateKeyPair(s, mech(CKM.AES_KEY_GEN), [], []))).toBe(CKR.MECHANISM_INVALID);
    expect(await rv(() => app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, P256), t(CKA.CLASS, CKO.PRIVATE_KEY)], []))).toBe(CKR.TEMPLATE_INCONSISTENT);
    expect(await rv(() => app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, P256)], [t(CKA.SENSITIVE, text('x'))]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(await rv(() => app.C_GenerateKeyPair(s, mech(CKM.EC_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, P256)], [t(CKA.LOCAL, true)]))).toBe(CKR.ATTRIBUTE_READ_ONLY);
  });
});

describe('C_Sign / C_Verify', () => {
  it('single-part and multi-part give signatures that verify', async () => {
    const { publicKey, privateKey } = await ecPair();
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), privateKey);
    const one = await app.C_Sign(s, text('hello world'));
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), privateKey);
    await app.C_SignUpdate(s, text('hello '));
    await app.C_SignUpdate(s, text('world'));
    const two = await app.C_SignFinal(s);
    for (const sig of [one, two]) {
      await app.C_VerifyInit(s, mech(CKM.ECDSA_SHA256), publicKey);
      await app.C_Verify(s, text('hello world'), sig);
    }
    await app.C_VerifyInit(s, mech(CKM.ECDSA_SHA256), publicKey);
    await app.C_VerifyUpdate(s, text('hello '));
    await app.C_VerifyUpdate(s, text('world'));
    await app.C_VerifyFinal(s, one);
  });

  it('CKR_SIGNATURE_INVALID ends the operation', async () => {
    const { publicKey, privateKey } = await ecPair();
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), privateKey);
    const sig = await app.C_Sign(s, text('a'));
    await app.C_VerifyInit(s, mech(CKM.ECDSA_SHA256), publicKey);
    expect(await rv(() => app.C_Verify(s, text('b'), sig))).toBe(CKR.SIGNATURE_INVALID);
    expect(await rv(() => app.C_Verify(s, text('a'), sig))).toBe(CKR.OPERATION_NOT_INITIALIZED);
  });

  it('CKR_KEY_FUNCTION_NOT_PERMITTED for a key without CKA_SIGN', async () => {
    const { privateKey } = await ecPair([], [t(CKA.SIGN, false)]);
    expect(await rv(() => app.C_SignInit(s, mech(CKM.ECDSA_SHA256), privateKey))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    const { publicKey } = await ecPair([t(CKA.VERIFY, false)]);
    expect(await rv(() => app.C_VerifyInit(s, mech(CKM.ECDSA_SHA256), publicKey))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
  });

  it('CKR_MECHANISM_INVALID, CKR_KEY_HANDLE_INVALID, CKR_KEY_TYPE_INCONSISTENT', async () => {
    const { privateKey } = await ecPair();
    expect(await rv(() => app.C_SignInit(s, mech(CKM.SHA256), privateKey))).toBe(CKR.MECHANISM_INVALID);
    expect(await rv(() => app.C_SignInit(s, mech(0x7fff_0000), privateKey))).toBe(CKR.MECHANISM_INVALID);
    expect(await rv(() => app.C_SignInit(s, mech(CKM.ECDSA_SHA256), 987654))).toBe(CKR.KEY_HANDLE_INVALID);
    const data = await app.C_CreateObject(s, [t(CKA.CLASS, CKO.DATA)]);
    expect(await rv(() => app.C_SignInit(s, mech(CKM.ECDSA_SHA256), data))).toBe(CKR.KEY_HANDLE_INVALID);
    expect(await rv(() => app.C_SignInit(s, mech(CKM.SHA256_RSA_PKCS), privateKey))).toBe(CKR.KEY_TYPE_INCONSISTENT);
  });

  it('CKR_OPERATION_ACTIVE and CKR_OPERATION_NOT_INITIALIZED', async () => {
    const { privateKey } = await ecPair();
    expect(await rv(() => app.C_Sign(s, text('x')))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    expect(await rv(() => app.C_SignUpdate(s, text('x')))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    expect(await rv(() => app.C_SignFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), privateKey);
    expect(await rv(() => app.C_SignInit(s, mech(CKM.ECDSA_SHA256), privateKey))).toBe(CKR.OPERATION_ACTIVE);
    await app.C_SignUpdate(s, text('x'));
    expect(await rv(() => app.C_Sign(s, text('x')))).toBe(CKR.OPERATION_ACTIVE);
    // A failed C_Sign ends the operation (PKCS#11: unless CKR_BUFFER_TOO_SMALL or a length query).
    expect(await rv(() => app.C_SignFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
  });

  it('a single-part call during a multi-part operation is CKR_OPERATION_ACTIVE and ends it (C_Verify, C_Encrypt, C_Digest)', async () => {
    const { publicKey, privateKey } = await ecPair();
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), privateKey);
    const signature = await app.C_Sign(s, text('m'));
    await app.C_VerifyInit(s, mech(CKM.ECDSA_SHA256), publicKey);
    await app.C_VerifyUpdate(s, text('m'));
    expect(await rv(() => app.C_Verify(s, text('m'), signature))).toBe(CKR.OPERATION_ACTIVE);
    expect(await rv(() => app.C_VerifyFinal(s, signature))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    const key = await aesKey();
    await app.C_EncryptInit(s, mech(CKM.AES_ECB), key);
    await app.C_EncryptUpdate(s, Buffer.alloc(16));
    expect(await rv(() => app.C_Encrypt(s, Buffer.alloc(16)))).toBe(CKR.OPERATION_ACTIVE);
    expect(await rv(() => app.C_EncryptFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await app.C_DigestInit(s, mech(CKM.SHA256));
    await app.C_DigestUpdate(s, text('a'));
    expect(await rv(() => app.C_Digest(s, text('b')))).toBe(CKR.OPERATION_ACTIVE);
    expect(await rv(() => app.C_DigestFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    // The session is free for a new operation of each kind.
    await app.C_DigestInit(s, mech(CKM.SHA256));
    expect(await app.C_Digest(s, text('b'))).toEqual(createHash('sha256').update('b').digest());
  });

  it('single-part mechanisms refuse C_SignUpdate with CKR_FUNCTION_NOT_SUPPORTED, ending the operation', async () => {
    const { privateKey } = await ecPair();
    await app.C_SignInit(s, mech(CKM.ECDSA), privateKey);
    expect(await rv(() => app.C_SignUpdate(s, Buffer.alloc(32)))).toBe(CKR.FUNCTION_NOT_SUPPORTED);
    expect(await rv(() => app.C_SignFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await app.C_SignInit(s, mech(CKM.ECDSA), privateKey);
    expect((await app.C_Sign(s, createHash('sha256').update('x').digest())).length).toBe(64);
  });

  it('length query and CKR_BUFFER_TOO_SMALL keep the operation, and give the same signature', async () => {
    const { publicKey, privateKey } = await ecPair();
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), privateKey);
    const probe = await app.C_Sign(s, text('m'), null);
    expect(probe.length).toBe(64);
    let error: unknown;
    try { await app.C_Sign(s, text('m'), 10); } catch (e) { error = e; }
    expect(error).toBeInstanceOf(BufferTooSmallError);
    expect((error as BufferTooSmallError).rv).toBe(CKR.BUFFER_TOO_SMALL);
    expect((error as BufferTooSmallError).required).toBe(64);
    const sig = await app.C_Sign(s, text('m'), 64);
    expect(sig).toEqual(probe); // ECDSA is randomised: one signature was made, not three
    expect(await rv(() => app.C_Sign(s, text('m')))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await app.C_VerifyInit(s, mech(CKM.ECDSA_SHA256), publicKey);
    await app.C_Verify(s, text('m'), sig);
  });

  it('the SO cannot use keys; a public session can verify with a public token key', async () => {
    const { publicKey, privateKey } = await ecPair([t(CKA.TOKEN, true)], [t(CKA.TOKEN, true)]);
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), privateKey);
    const sig = await app.C_Sign(s, text('m'));
    const so = hsm.application('so');
    const x = await so.C_OpenSession(slot, RW);
    await so.C_Login(x, CKU.SO, SO_PIN);
    expect(await rv(() => so.C_VerifyInit(x, mech(CKM.ECDSA_SHA256), publicKey))).toBe(CKR.USER_NOT_LOGGED_IN);
    so.finalize();
    const pub = hsm.application('public');
    const y = await pub.C_OpenSession(slot, RO);
    await pub.C_VerifyInit(y, mech(CKM.ECDSA_SHA256), publicKey);
    await pub.C_Verify(y, text('m'), sig);
    // the private key is invisible to it
    expect(await rv(() => pub.C_SignInit(y, mech(CKM.ECDSA_SHA256), privateKey))).toBe(CKR.KEY_HANDLE_INVALID);
    pub.finalize();
  });

  it('a public (CKA_PRIVATE false) token private key still needs a login: its value is sealed', async () => {
    const { privateKey } = await ecPair([], [t(CKA.TOKEN, true), t(CKA.PRIVATE, false)]);
    const pub = hsm.application('public');
    const y = await pub.C_OpenSession(slot, RO);
    expect(await rv(() => pub.C_SignInit(y, mech(CKM.ECDSA_SHA256), privateKey))).toBe(CKR.USER_NOT_LOGGED_IN);
    pub.finalize();
  });

  it('the Crypto User signs with existing keys', async () => {
    const { privateKey } = await ecPair([], [t(CKA.TOKEN, true)]);
    const cu = hsm.application('cu');
    const z = await cu.C_OpenSession(slot, RO);
    await cu.C_Login(z, CKU_CRYPTO_USER, CU_PIN);
    await cu.C_SignInit(z, mech(CKM.ECDSA_SHA256), privateKey);
    expect((await cu.C_Sign(z, text('m'))).length).toBe(64);
    // but does not take keys out, nor make new ones from others
    const kek = await aesKey([t(CKA.TOKEN, true)]);
    const target = await aesKey([t(CKA.TOKEN, true), t(CKA.EXTRACTABLE, true)]);
    expect(await rv(() => cu.C_WrapKey(z, mech(CKM.AES_KEY_WRAP_PAD), kek, target))).toBe(CKR.ACTION_PROHIBITED);
    const wrapped = await app.C_WrapKey(s, mech(CKM.AES_KEY_WRAP_PAD), kek, target);
    expect(await rv(() => cu.C_UnwrapKey(z, mech(CKM.AES_KEY_WRAP_PAD), kek, wrapped, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES)]))).toBe(CKR.ACTION_PROHIBITED);
    cu.finalize();
  });
});

describe('C_Encrypt / C_Decrypt', () => {
  it('AES-GCM single-part round trip', async () => {
    const key = await aesKey();
    const gcm = mech(CKM.AES_GCM, { kind: 'gcm', iv: Buffer.alloc(12, 1), aad: text('aad'), tagBits: 128 });
    await app.C_EncryptInit(s, gcm, key);
    const ct = await app.C_Encrypt(s, text('plain text'));
    expect(ct.length).toBe(10 + 16);
    await app.C_DecryptInit(s, gcm, key);
    expect(await app.C_Decrypt(s, ct)).toEqual(text('plain text'));
    ct[0]! ^= 1;
    await app.C_DecryptInit(s, gcm, key);
    expect(await rv(() => app.C_Decrypt(s, ct))).toBe(CKR.ENCRYPTED_DATA_INVALID);
  });

  it('AES-CBC-PAD multi-part equals single-part; update output is sized', async () => {
    const key = await aesKey();
    const cbc = mech(CKM.AES_CBC_PAD, { kind: 'bytes', value: Buffer.alloc(16, 2) });
    const plain = Buffer.alloc(40, 9);
    await app.C_EncryptInit(s, cbc, key);
    const whole = await app.C_Encrypt(s, plain);
    await app.C_EncryptInit(s, cbc, key);
    const a = await app.C_EncryptUpdate(s, plain.subarray(0, 20));
    const probe = await app.C_EncryptUpdate(s, plain.subarray(20), null);
    const b = await app.C_EncryptUpdate(s, plain.subarray(20));
    expect(b).toEqual(probe);
    const c = await app.C_EncryptFinal(s);
    expect(Buffer.concat([a, b, c])).toEqual(whole);
    await app.C_DecryptInit(s, cbc, key);
    const d1 = await app.C_DecryptUpdate(s, whole.subarray(0, 17));
    const d2 = await app.C_DecryptUpdate(s, whole.subarray(17));
    const d3 = await app.C_DecryptFinal(s);
    expect(Buffer.concat([d1, d2, d3])).toEqual(plain);
  });

  it('CKR_KEY_FUNCTION_NOT_PERMITTED, CKR_BUFFER_TOO_SMALL, CKR_MECHANISM_PARAM_INVALID', async () => {
    const key = await aesKey([t(CKA.DECRYPT, false)]);
    const gcm = mech(CKM.AES_GCM, { kind: 'gcm', iv: Buffer.alloc(12, 1), aad: Buffer.alloc(0), tagBits: 128 });
    expect(await rv(() => app.C_DecryptInit(s, gcm, key))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    expect(await rv(() => app.C_EncryptInit(s, mech(CKM.AES_GCM, null), key))).toBe(CKR.MECHANISM_PARAM_INVALID);
    await app.C_EncryptInit(s, gcm, key);
    expect(await rv(() => app.C_Encrypt(s, text('abc'), 5))).toBe(CKR.BUFFER_TOO_SMALL);
    expect((await app.C_Encrypt(s, text('abc'), 19)).length).toBe(19);
  });

  it('RSA-OAEP with a generated pair', async () => {
    const { publicKey, privateKey } = await app.C_GenerateKeyPair(s, mech(CKM.RSA_PKCS_KEY_PAIR_GEN), [t(CKA.MODULUS_BITS, 2048)], []);
    const oaep = mech(CKM.RSA_PKCS_OAEP, { kind: 'oaep', hashAlg: CKM.SHA256, mgf: 2, source: 0, sourceData: null });
    await app.C_EncryptInit(s, oaep, publicKey);
    const ct = await app.C_Encrypt(s, text('secret'));
    await app.C_DecryptInit(s, oaep, privateKey);
    expect(await app.C_Decrypt(s, ct)).toEqual(text('secret'));
  });
});

describe('C_Digest', () => {
  it('single-part, multi-part and C_DigestKey match node:crypto', async () => {
    await app.C_DigestInit(s, mech(CKM.SHA256));
    expect(await app.C_Digest(s, text('abc'))).toEqual(createHash('sha256').update('abc').digest());
    await app.C_DigestInit(s, mech(CKM.SHA384));
    await app.C_DigestUpdate(s, text('a'));
    await app.C_DigestUpdate(s, text('bc'));
    expect(await app.C_DigestFinal(s)).toEqual(createHash('sha384').update('abc').digest());
    const raw = Buffer.alloc(32, 3);
    const key = await app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE, raw)]);
    await app.C_DigestInit(s, mech(CKM.SHA256));
    await app.C_DigestKey(s, key);
    expect(await app.C_DigestFinal(s)).toEqual(createHash('sha256').update(raw).digest());
  });

  it('error paths', async () => {
    expect(await rv(() => app.C_DigestInit(s, mech(CKM.AES_GCM)))).toBe(CKR.MECHANISM_INVALID);
    expect(await rv(() => app.C_Digest(s, text('x')))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await app.C_DigestInit(s, mech(CKM.SHA256));
    expect(await rv(() => app.C_DigestInit(s, mech(CKM.SHA256)))).toBe(CKR.OPERATION_ACTIVE);
    expect(await rv(() => app.C_Digest(s, text('x'), 31))).toBe(CKR.BUFFER_TOO_SMALL);
    expect((await app.C_Digest(s, text('x'), 32)).length).toBe(32);
  });
});

describe('C_WrapKey / C_UnwrapKey', () => {
  it('ECB and CBC without padding: a secret value is zero-padded to the block, and cut to CKA_VALUE_LEN when unwrapped (PKCS#11 2.40)', async () => {
    const kek = await aesKey();
    const secret = await app.C_GenerateKey(s, mech(CKM.GENERIC_SECRET_KEY_GEN), [t(CKA.VALUE_LEN, 20), t(CKA.EXTRACTABLE, true), t(CKA.SIGN, true)]);
    const ecb = mech(CKM.AES_ECB, null);
    const wrapped = await app.C_WrapKey(s, ecb, kek, secret);
    expect(wrapped).toHaveLength(32);
    const back = await app.C_UnwrapKey(s, ecb, kek, wrapped, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.GENERIC_SECRET), t(CKA.VALUE_LEN, 20), t(CKA.SIGN, true)]);
    const length = await app.C_GetAttributeValue(s, back, [{ type: CKA.VALUE_LEN }]);
    expect(length.attributes[0]!.value).toBe(20);
    const hmac = async (key: number) => {
      await app.C_SignInit(s, mech(CKM.SHA256_HMAC), key);
      return app.C_Sign(s, text('same key'));
    };
    expect(await hmac(back)).toEqual(await hmac(secret));
    // An AES-192 key under AES-ECB: 32 bytes wrapped, 24 again with the template's length.
    const aes192 = await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 24), t(CKA.EXTRACTABLE, true)]);
    const wrapped192 = await app.C_WrapKey(s, ecb, kek, aes192);
    expect(wrapped192).toHaveLength(32);
    const back192 = await app.C_UnwrapKey(s, ecb, kek, wrapped192, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE_LEN, 24)]);
    expect((await app.C_GetAttributeValue(s, back192, [{ type: CKA.VALUE_LEN }])).attributes[0]!.value).toBe(24);
    // A length longer than what was wrapped is not a key this wrapping holds.
    expect(await rv(() => app.C_UnwrapKey(s, ecb, kek, wrapped, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.GENERIC_SECRET), t(CKA.VALUE_LEN, 40)]))).toBe(CKR.WRAPPED_KEY_INVALID);
  });

  it('wraps an extractable AES key and an EC private key under AES key wrap; the unwrapped keys work', async () => {
    const kek = await aesKey();
    const target = await aesKey([t(CKA.EXTRACTABLE, true)]);
    const kw = mech(CKM.AES_KEY_WRAP_PAD, null);
    const wrapped = await app.C_WrapKey(s, kw, kek, target);
    const unwrapped = await app.C_UnwrapKey(s, kw, kek, wrapped, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.TOKEN, true)]);
    const attrs = await app.C_GetAttributeValue(s, unwrapped, [{ type: CKA.LOCAL }, { type: CKA.ALWAYS_SENSITIVE }, { type: CKA.VALUE_LEN }]);
    expect(attrs.attributes.map((a) => a.value)).toEqual([false, false, 32]);
    // A CKA_VALUE_LEN the unwrapped key does not have is refused, not ignored; the one it has is fine.
    const secretOf = (length: number, keyType: number) => [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, keyType), t(CKA.VALUE_LEN, length)];
    expect(await rv(() => app.C_UnwrapKey(s, kw, kek, wrapped, secretOf(16, CKK.AES)))).toBe(CKR.TEMPLATE_INCONSISTENT);
    expect(await rv(() => app.C_UnwrapKey(s, kw, kek, wrapped, secretOf(48, CKK.GENERIC_SECRET)))).toBe(CKR.TEMPLATE_INCONSISTENT);
    await app.C_DestroyObject(s, await app.C_UnwrapKey(s, kw, kek, wrapped, secretOf(32, CKK.AES)));
    const gcm = mech(CKM.AES_GCM, { kind: 'gcm', iv: Buffer.alloc(12), aad: Buffer.alloc(0), tagBits: 128 });
    await app.C_EncryptInit(s, gcm, target);
    const ct = await app.C_Encrypt(s, text('same key'));
    await app.C_DecryptInit(s, gcm, unwrapped);
    expect(await app.C_Decrypt(s, ct)).toEqual(text('same key'));

    const pair = await ecPair([], [t(CKA.EXTRACTABLE, true)]);
    const wrappedPrivate = await app.C_WrapKey(s, kw, kek, pair.privateKey);
    const back = await app.C_UnwrapKey(s, kw, kek, wrappedPrivate, [t(CKA.CLASS, CKO.PRIVATE_KEY), t(CKA.KEY_TYPE, CKK.EC)]);
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), back);
    const sig = await app.C_Sign(s, text('m'));
    await app.C_VerifyInit(s, mech(CKM.ECDSA_SHA256), pair.publicKey);
    await app.C_Verify(s, text('m'), sig);
  });

  it('error paths', async () => {
    const kek = await aesKey();
    const kw = mech(CKM.AES_KEY_WRAP_PAD, null);
    const fixed = await aesKey();
    expect(await rv(() => app.C_WrapKey(s, kw, kek, fixed))).toBe(CKR.KEY_UNEXTRACTABLE);
    const target = await aesKey([t(CKA.EXTRACTABLE, true)]);
    expect(await rv(() => app.C_WrapKey(s, kw, 55555, target))).toBe(CKR.WRAPPING_KEY_HANDLE_INVALID);
    expect(await rv(() => app.C_WrapKey(s, kw, kek, 55555))).toBe(CKR.KEY_HANDLE_INVALID);
    const noWrap = await aesKey([t(CKA.WRAP, false), t(CKA.UNWRAP, false)]);
    expect(await rv(() => app.C_WrapKey(s, kw, noWrap, target))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    expect(await rv(() => app.C_WrapKey(s, mech(CKM.SHA256), kek, target))).toBe(CKR.MECHANISM_INVALID);
    const trusted = await aesKey([t(CKA.EXTRACTABLE, true), t(CKA.WRAP_WITH_TRUSTED, true)]);
    expect(await rv(() => app.C_WrapKey(s, kw, kek, trusted))).toBe(CKR.KEY_NOT_WRAPPABLE);
    expect(await rv(() => app.C_WrapKey(s, kw, kek, target, 8))).toBe(CKR.BUFFER_TOO_SMALL);
    const wrapped = await app.C_WrapKey(s, kw, kek, target);
    expect(await rv(() => app.C_UnwrapKey(s, kw, kek, wrapped, [t(CKA.KEY_TYPE, CKK.AES)]))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rv(() => app.C_UnwrapKey(s, kw, kek, wrapped, [t(CKA.CLASS, CKO.SECRET_KEY)]))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rv(() => app.C_UnwrapKey(s, kw, noWrap, wrapped, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES)]))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    expect(await rv(() => app.C_UnwrapKey(s, kw, 55555, wrapped, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES)]))).toBe(CKR.UNWRAPPING_KEY_HANDLE_INVALID);
    wrapped[3]! ^= 1;
    expect(await rv(() => app.C_UnwrapKey(s, kw, kek, wrapped, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES)]))).toBe(CKR.WRAPPED_KEY_INVALID);
  });
});

describe('CKA_WRAP_TEMPLATE / CKA_UNWRAP_TEMPLATE / CKA_DERIVE_TEMPLATE', () => {
  it('a wrapping key wraps only keys matching its template; an unwrapping key imposes its template', async () => {
    const kw = mech(CKM.AES_KEY_WRAP_PAD, null);
    const kek = await aesKey([
      t(CKA.WRAP_TEMPLATE, [t(CKA.LABEL, text('exportable'))]),
      t(CKA.UNWRAP_TEMPLATE, [t(CKA.SIGN, false), t(CKA.EXTRACTABLE, false)]),
    ]);
    const other = await aesKey([t(CKA.EXTRACTABLE, true)]);
    expect(await rv(() => app.C_WrapKey(s, kw, kek, other))).toBe(CKR.KEY_NOT_WRAPPABLE);
    const target = await aesKey([t(CKA.EXTRACTABLE, true), t(CKA.LABEL, text('exportable'))]);
    const wrapped = await app.C_WrapKey(s, kw, kek, target);
    const template = [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES)];
    expect(await rv(() => app.C_UnwrapKey(s, kw, kek, wrapped, [...template, t(CKA.SIGN, true)]))).toBe(CKR.TEMPLATE_INCONSISTENT);
    const h = await app.C_UnwrapKey(s, kw, kek, wrapped, template);
    const out = await app.C_GetAttributeValue(s, h, [{ type: CKA.SIGN }, { type: CKA.EXTRACTABLE }]);
    expect(out.attributes.map((a) => a.value)).toEqual([false, false]);
  });

  it('docs/hsm.md\'s recipes for keys that travel: CKA_DECRYPT false alone lets the key unwrap its blob into a readable key; a wrap-only key or an unwrap template keeps it inside', async () => {
    const kw = mech(CKM.AES_KEY_WRAP_PAD, null);
    const cbcPad = mech(CKM.AES_CBC_PAD, { kind: 'bytes', value: Buffer.alloc(16, 1) });
    const secret = [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES)];
    const readable = [...secret, t(CKA.SENSITIVE, false), t(CKA.EXTRACTABLE, true)];
    const target = await aesKey([t(CKA.EXTRACTABLE, true), t(CKA.SENSITIVE, true)]);
    // What the docs warn of: decryption refused, yet the value comes out through C_UnwrapKey.
    const noDecrypt = await aesKey([t(CKA.DECRYPT, false), t(CKA.MODIFIABLE, false)]);
    expect(await rv(() => app.C_DecryptInit(s, cbcPad, noDecrypt))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    const copy = await app.C_UnwrapKey(s, kw, noDecrypt, await app.C_WrapKey(s, kw, noDecrypt, target), readable);
    expect((await app.C_GetAttributeValue(s, copy, [{ type: CKA.VALUE }])).attributes[0]!.value as Buffer).toHaveLength(32);
    // A wrap-only key: its blobs cannot be unwrapped under it.
    const wrapOnly = await aesKey([t(CKA.UNWRAP, false), t(CKA.DECRYPT, false), t(CKA.MODIFIABLE, false)]);
    const blob = await app.C_WrapKey(s, kw, wrapOnly, target);
    expect(await rv(() => app.C_UnwrapKey(s, kw, wrapOnly, blob, readable))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    // An unwrap template: what it unwraps stays sensitive and unextractable, whatever is asked.
    const inside = await aesKey([t(CKA.UNWRAP_TEMPLATE, [t(CKA.SENSITIVE, true), t(CKA.EXTRACTABLE, false)]), t(CKA.DECRYPT, false), t(CKA.MODIFIABLE, false)]);
    const sealed = await app.C_WrapKey(s, kw, inside, target);
    expect(await rv(() => app.C_UnwrapKey(s, kw, inside, sealed, readable))).toBe(CKR.TEMPLATE_INCONSISTENT);
    const kept = await app.C_UnwrapKey(s, kw, inside, sealed, secret);
    expect((await app.C_GetAttributeValue(s, kept, [{ type: CKA.VALUE }])).rv).toBe(CKR.ATTRIBUTE_SENSITIVE);
  });

  it('a base key imposes its CKA_DERIVE_TEMPLATE', async () => {
    const alice = await ecPair([], [t(CKA.DERIVE, true), t(CKA.DERIVE_TEMPLATE, [t(CKA.ENCRYPT, false)])]);
    const bob = await ecPair();
    const point = (await app.C_GetAttributeValue(s, bob.publicKey, [{ type: CKA.EC_POINT }])).attributes[0]!.value as Buffer;
    const ecdh = mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: point });
    const k = await app.C_DeriveKey(s, ecdh, alice.privateKey, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE_LEN, 16)]);
    expect((await app.C_GetAttributeValue(s, k, [{ type: CKA.ENCRYPT }])).attributes[0]!.value).toBe(false);
  });
});

describe('C_DeriveKey', () => {
  it('ECDH on both sides gives the same AES key', async () => {
    const alice = await ecPair([], [t(CKA.DERIVE, true)]);
    const bob = await ecPair([], [t(CKA.DERIVE, true)]);
    const pointOf = async (h: number) => (await app.C_GetAttributeValue(s, h, [{ type: CKA.EC_POINT }])).attributes[0]!.value as Buffer;
    const ecdh = (publicData: Buffer) => mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData });
    const template = [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES), t(CKA.VALUE_LEN, 32)];
    const k1 = await app.C_DeriveKey(s, ecdh(await pointOf(bob.publicKey)), alice.privateKey, template);
    const k2 = await app.C_DeriveKey(s, ecdh(await pointOf(alice.publicKey)), bob.privateKey, template);
    const attrs = await app.C_GetAttributeValue(s, k1, [{ type: CKA.ALWAYS_SENSITIVE }, { type: CKA.LOCAL }, { type: CKA.VALUE_LEN }]);
    expect(attrs.attributes.map((a) => a.value)).toEqual([true, false, 32]);
    const gcm = mech(CKM.AES_GCM, { kind: 'gcm', iv: Buffer.alloc(12), aad: Buffer.alloc(0), tagBits: 128 });
    await app.C_EncryptInit(s, gcm, k1);
    const ct = await app.C_Encrypt(s, text('agreed'));
    await app.C_DecryptInit(s, gcm, k2);
    expect(await app.C_Decrypt(s, ct)).toEqual(text('agreed'));
    // a key without CKA_DERIVE
    const plain = await ecPair();
    expect(await rv(() => app.C_DeriveKey(s, ecdh(Buffer.alloc(65, 4)), plain.privateKey, template))).toBe(CKR.KEY_FUNCTION_NOT_PERMITTED);
    const bobPoint = await pointOf(bob.publicKey);
    expect(await rv(() => app.C_DeriveKey(s, ecdh(bobPoint), alice.privateKey, [t(CKA.CLASS, CKO.SECRET_KEY)]))).toBe(CKR.TEMPLATE_INCOMPLETE);
  });

  it('a generic secret through a KDF is at most 512 bytes: a client naming 2 GiB gets CKR_KEY_SIZE_RANGE at once, not a KDF run of that length', async () => {
    const alice = await ecPair([], [t(CKA.DERIVE, true)]);
    const bob = await ecPair();
    const point = (await app.C_GetAttributeValue(s, bob.publicKey, [{ type: CKA.EC_POINT }])).attributes[0]!.value as Buffer;
    const kdf = mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.SHA256_KDF, sharedData: null, publicData: point });
    const secret = (length: number) => [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.GENERIC_SECRET), t(CKA.VALUE_LEN, length)];
    // Before, 2 GiB of SHA-256 blocks ran on the event loop until the heap ran out.
    for (const length of [0x7fffffff, 0xffffffff, 513]) {
      expect(await rv(() => app.C_DeriveKey(s, kdf, alice.privateKey, secret(length))), String(length)).toBe(CKR.KEY_SIZE_RANGE);
    }
    const k = await app.C_DeriveKey(s, kdf, alice.privateKey, secret(512));
    expect((await app.C_GetAttributeValue(s, k, [{ type: CKA.VALUE_LEN }])).attributes[0]!.value).toBe(512);
  });
});

describe('C_GenerateRandom / C_SeedRandom', () => {
  it('gives the bytes asked for; seeding is not supported', async () => {
    const a = await app.C_GenerateRandom(s, 48);
    expect(a.length).toBe(48);
    expect(a).not.toEqual(await app.C_GenerateRandom(s, 48));
    expect(await rv(() => app.C_SeedRandom(s, text('seed')))).toBe(CKR.RANDOM_SEED_NOT_SUPPORTED);
    expect(await rv(() => app.C_GenerateRandom(12345, 1))).toBe(CKR.SESSION_HANDLE_INVALID);
  });
});

describe('cross-check with the openssl CLI', () => {
  const pem = (spki: Buffer) => createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'pem', type: 'spki' }) as string;

  /** raw r||s to the DER ECDSA-Sig-Value openssl reads. */
  function ecdsaDer(raw: Buffer): Buffer {
    const int = (b: Buffer) => {
      let i = 0;
      while (i < b.length - 1 && b[i] === 0) i++;
      let v = b.subarray(i);
      if (v[0]! & 0x80) v = Buffer.concat([Buffer.from([0]), v]);
      return Buffer.concat([Buffer.from([2, v.length]), v]);
    };
    const body = Buffer.concat([int(raw.subarray(0, raw.length / 2)), int(raw.subarray(raw.length / 2))]);
    return Buffer.concat([Buffer.from([0x30, body.length]), body]);
  }

  function opensslVerifies(args: string[]): boolean {
    try {
      execFileSync('openssl', args, { stdio: 'pipe' });
      return true;
    } catch {
      return false;
    }
  }

  it('RSA PKCS#1 v1.5, ECDSA P-256 and Ed25519 signatures made here verify with openssl', async () => {
    const message = text('signed by the ntls HSM');
    const dataFile = join(home, 'data.bin');
    writeFileSync(dataFile, message);

    const rsa = await app.C_GenerateKeyPair(s, mech(CKM.RSA_PKCS_KEY_PAIR_GEN), [t(CKA.MODULUS_BITS, 2048)], []);
    await app.C_SignInit(s, mech(CKM.SHA256_RSA_PKCS), rsa.privateKey);
    writeFileSync(join(home, 'rsa.sig'), await app.C_Sign(s, message));
    writeFileSync(join(home, 'rsa.pem'), pem(await spkiOf(rsa.publicKey)));
    expect(opensslVerifies(['dgst', '-sha256', '-verify', join(home, 'rsa.pem'), '-signature', join(home, 'rsa.sig'), dataFile])).toBe(true);

    const ec = await ecPair();
    await app.C_SignInit(s, mech(CKM.ECDSA_SHA256), ec.privateKey);
    writeFileSync(join(home, 'ec.sig'), ecdsaDer(await app.C_Sign(s, message)));
    writeFileSync(join(home, 'ec.pem'), pem(await spkiOf(ec.publicKey)));
    expect(opensslVerifies(['dgst', '-sha256', '-verify', join(home, 'ec.pem'), '-signature', join(home, 'ec.sig'), dataFile])).toBe(true);

    const ed = await app.C_GenerateKeyPair(s, mech(CKM.EC_EDWARDS_KEY_PAIR_GEN), [t(CKA.EC_PARAMS, ED25519)], []);
    await app.C_SignInit(s, mech(CKM.EDDSA), ed.privateKey);
    writeFileSync(join(home, 'ed.sig'), await app.C_Sign(s, message));
    writeFileSync(join(home, 'ed.pem'), pem(await spkiOf(ed.publicKey)));
    expect(opensslVerifies(['pkeyutl', '-verify', '-pubin', '-inkey', join(home, 'ed.pem'), '-rawin', '-in', dataFile, '-sigfile', join(home, 'ed.sig')])).toBe(true);

    // and a tampered signature does not
    const bad = await app.C_GenerateRandom(s, 256);
    writeFileSync(join(home, 'rsa.sig'), bad);
    expect(opensslVerifies(['dgst', '-sha256', '-verify', join(home, 'rsa.pem'), '-signature', join(home, 'rsa.sig'), dataFile])).toBe(false);
  });

  it('an openssl signature verifies here with the imported public key', async () => {
    const keyFile = join(home, 'openssl.key');
    execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', keyFile], { stdio: 'ignore' });
    const dataFile = join(home, 'data2.bin');
    writeFileSync(dataFile, text('signed by openssl'));
    const sig = execFileSync('openssl', ['dgst', '-sha256', '-sign', keyFile, dataFile]);
    const pubPem = execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout']).toString();
    const jwk = createPublicKey(pubPem).export({ format: 'jwk' });
    const h = await app.C_CreateObject(s, [
      t(CKA.CLASS, CKO.PUBLIC_KEY), t(CKA.KEY_TYPE, CKK.RSA),
      t(CKA.MODULUS, Buffer.from(jwk.n!, 'base64url')), t(CKA.PUBLIC_EXPONENT, Buffer.from(jwk.e!, 'base64url')),
    ]);
    await app.C_VerifyInit(s, mech(CKM.SHA256_RSA_PKCS), h);
    await app.C_Verify(s, text('signed by openssl'), sig);
  });
});

describe('operations are per session and per application', () => {
  it('two sessions and two applications sign at the same time without mixing', async () => {
    const { publicKey, privateKey } = await ecPair([t(CKA.TOKEN, true)], [t(CKA.TOKEN, true)]);
    const s2 = await app.C_OpenSession(slot, RW);
    const other = hsm.application('other');
    const s3 = await other.C_OpenSession(slot, RW);
    await other.C_Login(s3, CKU.USER, CO_PIN);
    await Promise.all([s, s2].map((x) => app.C_SignInit(x, mech(CKM.ECDSA_SHA256), privateKey)));
    await other.C_SignInit(s3, mech(CKM.ECDSA_SHA256), privateKey);
    await Promise.all([app.C_SignUpdate(s, text('one')), app.C_SignUpdate(s2, text('two')), other.C_SignUpdate(s3, text('three'))]);
    const [a, b, c] = await Promise.all([app.C_SignFinal(s), app.C_SignFinal(s2), other.C_SignFinal(s3)]);
    for (const [sig, message] of [[a, 'one'], [b, 'two'], [c, 'three']] as const) {
      await app.C_VerifyInit(s, mech(CKM.ECDSA_SHA256), publicKey);
      await app.C_Verify(s, text(message), sig);
    }
    // the other application's operation is not visible from here
    await other.C_DigestInit(s3, mech(CKM.SHA256));
    expect(await rv(() => app.C_DigestFinal(s))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    await app.C_CloseSession(s2);
    other.finalize();
  });

  it('logout ends key operations; C_DigestKey refuses non-secret keys', async () => {
    const key = await aesKey();
    const { publicKey } = await ecPair();
    await app.C_DigestInit(s, mech(CKM.SHA256));
    expect(await rv(() => app.C_DigestKey(s, publicKey))).toBe(CKR.KEY_INDIGESTIBLE);
    const x = await app.C_OpenSession(slot, RW);
    await app.C_EncryptInit(x, mech(CKM.AES_ECB), key);
    await app.C_Logout(x);
    expect(await rv(() => app.C_Encrypt(x, Buffer.alloc(16)))).toBe(CKR.OPERATION_NOT_INITIALIZED);
    // Login state is the application's: logging in again on x logs s in too, for the tests after this one.
    await app.C_Login(x, CKU.USER, CO_PIN);
    await app.C_CloseSession(x);
    expect(app.C_GetSessionInfo(s).state).toBe(CKS.RW_USER_FUNCTIONS);
  });
});
