// Legacy algorithms (issue 15 item 8): the partition policy for legacy RSA sizes (off by
// default; kept in the partition's row under its MAC, across a restart), and triple DES
// (CKM_DES3_KEY_GEN, CKM_DES3_ECB, CKM_DES3_CBC, CKM_DES3_CBC_PAD) checked against node:crypto.

import { createCipheriv, createDecipheriv, generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CKA, CKK, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import type { Application } from '../../src/token/index.js';
import { CO_PIN, RW, mech, openHsm, readyHsm, removeHome, rv, tempHome, type Hsm } from './support.js';

const t = (type: number, value: unknown) => ({ type, value: value as never });
const iv = Buffer.from('0102030405060708', 'hex');
const bytes = (value: Buffer) => ({ kind: 'bytes' as const, value });

let home: string;
let hsm: Hsm;
let slot: number;
let app: Application;
let s: number;

beforeEach(async () => {
  home = tempHome();
  ({ hsm, slot } = await readyHsm(home));
  app = hsm.application('legacy');
  s = await app.C_OpenSession(slot, RW);
  await app.C_Login(s, CKU.USER, CO_PIN);
});
afterEach(() => {
  hsm.close();
  removeHome(home);
});

const rsaPair = (bits: number) => app.C_GenerateKeyPair(s, mech(CKM.RSA_PKCS_KEY_PAIR_GEN), [t(CKA.MODULUS_BITS, bits), t(CKA.TOKEN, true)], [t(CKA.TOKEN, true)]);

function rsaImport(bits: number) {
  const jwk = generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({ format: 'jwk' });
  const b = (v: string | undefined) => Buffer.from(v!, 'base64url');
  return app.C_CreateObject(s, [t(CKA.CLASS, CKO.PRIVATE_KEY), t(CKA.KEY_TYPE, CKK.RSA), t(CKA.MODULUS, b(jwk.n)), t(CKA.PUBLIC_EXPONENT, b(jwk.e)),
    t(CKA.PRIVATE_EXPONENT, b(jwk.d)), t(CKA.PRIME_1, b(jwk.p)), t(CKA.PRIME_2, b(jwk.q)), t(CKA.EXPONENT_1, b(jwk.dp)), t(CKA.EXPONENT_2, b(jwk.dq)),
    t(CKA.COEFFICIENT, b(jwk.qi))]);
}

describe('the legacy RSA sizes policy', () => {
  it('off (the default): RSA-1024 generation is CKR_KEY_SIZE_RANGE, a 512-bit import is refused; the mechanism info says 2048 and 1024', async () => {
    expect(hsm.device.partitionPolicy(slot)).toEqual({ legacyRsa: false });
    expect(await rv(() => rsaPair(1024))).toBe(CKR.KEY_SIZE_RANGE);
    expect(await rv(() => rsaImport(512))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(app.C_GetMechanismInfo(slot, CKM.RSA_PKCS_KEY_PAIR_GEN).minKeySize).toBe(2048);
    expect(app.C_GetMechanismInfo(slot, CKM.SHA256_RSA_PKCS).minKeySize).toBe(1024);
  });

  it('on: RSA-1024 is generated and signs, a 512-bit key is imported and signs; off again, they are refused at use', async () => {
    await hsm.device.setPartitionPolicy(slot, { legacyRsa: true });
    expect(app.C_GetMechanismInfo(slot, CKM.RSA_PKCS_KEY_PAIR_GEN).minKeySize).toBe(1024);
    expect(app.C_GetMechanismInfo(slot, CKM.SHA256_RSA_PKCS).minKeySize).toBe(512);
    const pair = await rsaPair(1024);
    const [bits] = (await app.C_GetAttributeValue(s, pair.publicKey, [{ type: CKA.MODULUS_BITS }])).attributes;
    expect(bits!.value).toBe(1024);
    await app.C_SignInit(s, mech(CKM.SHA256_RSA_PKCS), pair.privateKey);
    expect(await app.C_Sign(s, Buffer.from('legacy'))).toHaveLength(128);
    const small = await rsaImport(512);
    await app.C_SignInit(s, mech(CKM.SHA1_RSA_PKCS), small);
    expect(await app.C_Sign(s, Buffer.from('legacy'))).toHaveLength(64);
    expect(await rv(() => rsaPair(512))).toBe(CKR.KEY_SIZE_RANGE);

    await hsm.device.setPartitionPolicy(slot, { legacyRsa: false });
    expect(await rv(() => app.C_SignInit(s, mech(CKM.SHA1_RSA_PKCS), small))).toBe(CKR.KEY_SIZE_RANGE);
    await app.C_SignInit(s, mech(CKM.SHA256_RSA_PKCS), pair.privateKey);
    expect(await app.C_Sign(s, Buffer.from('1024 bits are still used'))).toHaveLength(128);
  });

  it('is kept in the partition row across a restart (under the row MAC), one partition at a time', async () => {
    const other = await hsm.createPartition({ name: 'other', soPin: 'so-secret-1' });
    await hsm.device.setPartitionPolicy(slot, { legacyRsa: true });
    hsm.close();
    hsm = await openHsm(home);
    expect(hsm.device.partitionPolicy(slot)).toEqual({ legacyRsa: true });
    expect(hsm.device.partitionPolicy(other.slotId)).toEqual({ legacyRsa: false });
    await hsm.device.setPartitionPolicy(slot, { legacyRsa: false });
    hsm.close();
    hsm = await openHsm(home);
    expect(hsm.device.partitionPolicy(slot)).toEqual({ legacyRsa: false });
  });
});

describe('triple DES (legacy)', () => {
  it('CKM_DES3_KEY_GEN makes a 24-byte key with odd parity; ECB, CBC and CBC-PAD agree with node:crypto des-ede3', async () => {
    const key = await app.C_GenerateKey(s, mech(CKM.DES3_KEY_GEN), [t(CKA.EXTRACTABLE, true), t(CKA.SENSITIVE, false)]);
    const read = await app.C_GetAttributeValue(s, key, [{ type: CKA.KEY_TYPE }, { type: CKA.VALUE_LEN }, { type: CKA.VALUE }, { type: CKA.KEY_GEN_MECHANISM }, { type: CKA.CHECK_VALUE }]);
    const [type, length, value, gen, kcv] = read.attributes.map((a) => a.value);
    expect([type, length, gen]).toEqual([CKK.DES3, 24, CKM.DES3_KEY_GEN]);
    const raw = value as Buffer;
    for (const byte of raw) expect(byte.toString(2).split('').filter((c) => c === '1').length % 2).toBe(1);
    const zero = createCipheriv('des-ede3', raw, null).setAutoPadding(false);
    expect(kcv).toEqual(zero.update(Buffer.alloc(8)).subarray(0, 3));

    const data = Buffer.from('sixteen byte msg');
    const cases: Array<[number, string, Buffer | null, boolean]> = [
      [CKM.DES3_ECB, 'des-ede3', null, false], [CKM.DES3_CBC, 'des-ede3-cbc', iv, false], [CKM.DES3_CBC_PAD, 'des-ede3-cbc', iv, true],
    ];
    for (const [type, cipher, vector, padded] of cases) {
      const m = mech(type, vector === null ? null : bytes(vector));
      await app.C_EncryptInit(s, m, key);
      const encrypted = await app.C_Encrypt(s, padded ? Buffer.from('odd length') : data);
      const expected = createCipheriv(cipher, raw, vector).setAutoPadding(padded);
      expect(encrypted).toEqual(Buffer.concat([expected.update(padded ? Buffer.from('odd length') : data), expected.final()]));
      await app.C_DecryptInit(s, m, key);
      expect(await app.C_Decrypt(s, encrypted)).toEqual(padded ? Buffer.from('odd length') : data);
    }
    // A length that is not a whole block, without padding: CKR_DATA_LEN_RANGE.
    await app.C_EncryptInit(s, mech(CKM.DES3_ECB), key);
    expect(await rv(() => app.C_Encrypt(s, Buffer.from('seven b')))).toBe(CKR.DATA_LEN_RANGE);
    // An 8-byte IV only.
    expect(await rv(() => app.C_EncryptInit(s, mech(CKM.DES3_CBC, bytes(Buffer.alloc(16))), key))).toBe(CKR.MECHANISM_PARAM_INVALID);
  });

  it('an imported DES3 key decrypts what node:crypto encrypted; it wraps and unwraps an AES key; a 16-byte value is refused', async () => {
    const value = Buffer.from('0123456789abcdeffedcba987654321089abcdef01234567', 'hex');
    const key = await app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.DES3), t(CKA.VALUE, value)]);
    const c = createCipheriv('des-ede3-cbc', value, iv);
    const encrypted = Buffer.concat([c.update(Buffer.from('a payment PIN block')), c.final()]);
    await app.C_DecryptInit(s, mech(CKM.DES3_CBC_PAD, bytes(iv)), key);
    expect((await app.C_Decrypt(s, encrypted)).toString()).toBe('a payment PIN block');
    const aes = await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [t(CKA.VALUE_LEN, 16), t(CKA.EXTRACTABLE, true)]);
    const wrapped = await app.C_WrapKey(s, mech(CKM.DES3_ECB), key, aes);
    const d = createDecipheriv('des-ede3', value, null).setAutoPadding(false);
    expect(Buffer.concat([d.update(wrapped), d.final()])).toHaveLength(16);
    const back = await app.C_UnwrapKey(s, mech(CKM.DES3_ECB), key, wrapped, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.AES)]);
    expect((await app.C_GetAttributeValue(s, back, [{ type: CKA.VALUE_LEN }])).attributes[0]!.value).toBe(16);
    expect(await rv(() => app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, CKK.DES3), t(CKA.VALUE, value.subarray(0, 16))]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
  });

  it('single DES, DES2, MD5, DSA and DH stay refused', async () => {
    const mechanisms = app.C_GetMechanismList(slot);
    for (const type of [0x120 /* DES_KEY_GEN */, 0x121 /* DES_ECB */, 0x130 /* DES2_KEY_GEN */, 0x210 /* MD5 */, 0x10 /* DSA_KEY_PAIR_GEN */, 0x20 /* DH_PKCS_KEY_PAIR_GEN */]) {
      expect(mechanisms).not.toContain(type);
    }
    expect(await rv(() => app.C_GenerateKey(s, mech(0x120), []))).toBe(CKR.MECHANISM_INVALID);
    expect(await rv(() => app.C_CreateObject(s, [t(CKA.CLASS, CKO.SECRET_KEY), t(CKA.KEY_TYPE, 0x13 /* CKK_DES */), t(CKA.VALUE, Buffer.alloc(8, 1))]))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
  });
});
