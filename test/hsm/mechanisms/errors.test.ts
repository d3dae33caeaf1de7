// Every CKR_ the mechanisms return, at least once. Tests compare err.rv, never message text.

import { beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { CKD, CKG, CKK, CKM, CKO, CKR, CKZ } from '../../../src/pkcs11/constants.js';
import type { GeneratedKeyPair } from '../../../src/hsm/mechanisms/contract.js';
import { P256 } from '../../../src/hsm/mechanisms/curves.js';
import { ecPublicKeyDer } from '../../../src/hsm/mechanisms/index.js';
import { aes, bytes, decrypt, encrypt, hex, mech, mechanisms, rvOf, secret, sign, verify } from './run.js';

let rsa: GeneratedKeyPair;
let ec: GeneratedKeyPair;
let ed: GeneratedKeyPair;
const aes128 = aes(Buffer.alloc(16, 3));
const iv = bytes(Buffer.alloc(16));
const pss = (hashAlg: number, mgf: number, saltLength: number) => ({ kind: 'pss' as const, hashAlg, mgf, saltLength });
const oaep = (hashAlg: number, mgf: number) => ({ kind: 'oaep' as const, hashAlg, mgf, source: CKZ.DATA_SPECIFIED, sourceData: null });
const gcm = (tagBits: number, ivLength = 12) => ({ kind: 'gcm' as const, iv: Buffer.alloc(ivLength), aad: Buffer.alloc(0), tagBits });

beforeAll(async () => {
  [rsa, ec, ed] = await Promise.all([
    mechanisms.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), { modulusBits: 2048 }),
    mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: P256.params }),
    mechanisms.generateKeyPair(mech(CKM.EC_EDWARDS_KEY_PAIR_GEN), { ecParams: hex('130c656477617264733235353139') }),
  ]);
});

describe('CKR_MECHANISM_INVALID', () => {
  it('an unknown mechanism, or a known one used for what it does not do', async () => {
    expect(await rvOf(() => mechanisms.sign(mech(0x9999), aes128))).toBe(CKR.MECHANISM_INVALID);
    expect(await rvOf(() => mechanisms.sign(mech(CKM.AES_CBC, iv), aes128))).toBe(CKR.MECHANISM_INVALID);
    expect(await rvOf(() => mechanisms.digest(mech(CKM.SHA256_HMAC)))).toBe(CKR.MECHANISM_INVALID);
    expect(await rvOf(() => mechanisms.encrypt(mech(CKM.SHA256_RSA_PKCS), rsa.publicKey))).toBe(CKR.MECHANISM_INVALID);
    expect(await rvOf(() => mechanisms.generateKey(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), {}))).toBe(CKR.MECHANISM_INVALID);
    expect(await rvOf(() => mechanisms.wrapKey(mech(CKM.AES_CTR, { kind: 'ctr', counterBits: 128, counterBlock: Buffer.alloc(16) }), aes128, aes128))).toBe(CKR.MECHANISM_INVALID);
    expect(await rvOf(() => mechanisms.deriveKey(mech(CKM.ECDSA), ec.privateKey, CKK.AES, 16))).toBe(CKR.MECHANISM_INVALID);
    expect(await rvOf(() => mechanisms.sign(mech(CKM.MD5_RSA_PKCS), rsa.privateKey))).toBe(CKR.MECHANISM_INVALID);
  });
});

describe('CKR_MECHANISM_PARAM_INVALID', () => {
  it('missing, mistyped or out-of-range parameters', async () => {
    const cases: Array<() => unknown> = [
      () => mechanisms.encrypt(mech(CKM.AES_CBC, bytes(Buffer.alloc(8))), aes128),
      () => mechanisms.encrypt(mech(CKM.AES_CBC), aes128),
      () => mechanisms.encrypt(mech(CKM.AES_ECB, bytes(Buffer.alloc(16))), aes128),
      () => mechanisms.encrypt(mech(CKM.AES_GCM, gcm(100)), aes128),
      () => mechanisms.encrypt(mech(CKM.AES_GCM, gcm(128, 0)), aes128),
      () => mechanisms.encrypt(mech(CKM.AES_GCM, gcm(128, 129)), aes128),
      () => mechanisms.decrypt(mech(CKM.AES_GCM, gcm(128, 256)), aes128),
      () => mechanisms.encrypt(mech(CKM.AES_CTR, { kind: 'ctr', counterBits: 0, counterBlock: Buffer.alloc(16) }), aes128),
      () => mechanisms.encrypt(mech(CKM.AES_CTR, { kind: 'ctr', counterBits: 32, counterBlock: Buffer.alloc(12) }), aes128),
      () => mechanisms.encrypt(mech(CKM.AES_KEY_WRAP, bytes(Buffer.alloc(5))), aes128),
      () => mechanisms.sign(mech(CKM.RSA_PKCS_PSS), rsa.privateKey),
      () => mechanisms.sign(mech(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, 99, 32)), rsa.privateKey),
      () => mechanisms.sign(mech(CKM.RSA_PKCS_PSS, pss(CKM.MD5, CKG.MGF1_SHA256, 32)), rsa.privateKey),
      () => mechanisms.sign(mech(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 300)), rsa.privateKey),
      () => mechanisms.sign(mech(CKM.SHA256_RSA_PKCS_PSS, pss(CKM.SHA384, CKG.MGF1_SHA384, 48)), rsa.privateKey),
      () => mechanisms.encrypt(mech(CKM.RSA_PKCS_OAEP), rsa.publicKey),
      () => mechanisms.encrypt(mech(CKM.RSA_PKCS_OAEP, oaep(CKM.SHA256, 0x77)), rsa.publicKey),
      () => mechanisms.encrypt(mech(CKM.RSA_PKCS_OAEP, { ...oaep(CKM.SHA256, CKG.MGF1_SHA256), source: 7 }), rsa.publicKey),
      () => mechanisms.sign(mech(CKM.EDDSA, bytes(hex('01'))), ed.privateKey),
      () => mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: 0x77, sharedData: null, publicData: Buffer.alloc(65) }), ec.privateKey, CKK.AES, 16),
      () => mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: hex('01'), publicData: Buffer.alloc(65) }), ec.privateKey, CKK.AES, 16),
      () => mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: Buffer.concat([hex('04'), randomBytes(64)]) }), ec.privateKey, CKK.AES, 16),
      () => mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE), ec.privateKey, CKK.AES, 16),
    ];
    for (const [i, action] of cases.entries()) expect([i, await rvOf(action)]).toEqual([i, CKR.MECHANISM_PARAM_INVALID]);
  });
});

describe('CKR_KEY_TYPE_INCONSISTENT', () => {
  it('a key of the wrong type or class for the mechanism', async () => {
    const cases: Array<() => unknown> = [
      () => mechanisms.sign(mech(CKM.SHA256_RSA_PKCS), ec.privateKey),
      () => mechanisms.sign(mech(CKM.ECDSA_SHA256), rsa.privateKey),
      () => mechanisms.sign(mech(CKM.EDDSA), ec.privateKey),
      () => mechanisms.verify(mech(CKM.ECDSA), ec.privateKey),
      () => mechanisms.sign(mech(CKM.SHA256_RSA_PKCS), rsa.publicKey),
      () => mechanisms.encrypt(mech(CKM.AES_CBC, iv), secret(CKK.GENERIC_SECRET, Buffer.alloc(16))),
      () => mechanisms.sign(mech(CKM.SHA256_HMAC), rsa.privateKey),
      // DER that does not hold the key type it claims
      () => mechanisms.sign(mech(CKM.SHA256_RSA_PKCS), { ...ec.privateKey, keyType: CKK.RSA }),
    ];
    for (const [i, action] of cases.entries()) expect([i, await rvOf(action)]).toEqual([i, CKR.KEY_TYPE_INCONSISTENT]);
  });
});

describe('CKR_KEY_SIZE_RANGE', () => {
  it('key sizes outside what the mechanism takes', async () => {
    const cases: Array<() => unknown> = [
      () => mechanisms.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), { modulusBits: 768 }),
      () => mechanisms.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), { modulusBits: 8192 }),
      () => mechanisms.generateKey(mech(CKM.AES_KEY_GEN), { valueLength: 20 }),
      () => mechanisms.generateKey(mech(CKM.GENERIC_SECRET_KEY_GEN), { valueLength: 0 }),
      () => mechanisms.generateKey(mech(CKM.GENERIC_SECRET_KEY_GEN), { valueLength: 513 }),
      () => mechanisms.encrypt(mech(CKM.AES_ECB), aes(Buffer.alloc(20))),
      () => mechanisms.sign(mech(CKM.SHA256_HMAC), secret(CKK.GENERIC_SECRET, Buffer.alloc(0))),
      () => mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: ecPoint() }), ec.privateKey, CKK.AES, 20),
      () => mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: ecPoint() }), ec.privateKey, CKK.GENERIC_SECRET, 33),
    ];
    for (const [i, action] of cases.entries()) expect([i, await rvOf(action)]).toEqual([i, CKR.KEY_SIZE_RANGE]);
  });
});

function ecPoint(): Buffer {
  return ec.publicAttributes.get(0x181 /* CKA_EC_POINT */) as Buffer;
}

describe('CKR_DATA_LEN_RANGE', () => {
  it('input that is not a block multiple, too long for the key, or not a hash', async () => {
    const ctr2 = mech(CKM.AES_CTR, { kind: 'ctr', counterBits: 2, counterBlock: Buffer.alloc(16) });
    const cases: Array<() => unknown> = [
      () => encrypt(mech(CKM.AES_ECB), aes128, Buffer.alloc(15)),
      () => encrypt(mech(CKM.AES_CBC, iv), aes128, Buffer.alloc(16), Buffer.alloc(1)),
      () => encrypt(ctr2, aes128, Buffer.alloc(64), Buffer.alloc(1)),
      () => encrypt(mech(CKM.AES_KEY_WRAP), aes128, Buffer.alloc(12)),
      () => sign(mech(CKM.RSA_PKCS), rsa.privateKey, Buffer.alloc(246)),
      () => encrypt(mech(CKM.RSA_PKCS), rsa.publicKey, Buffer.alloc(246)),
      () => encrypt(mech(CKM.RSA_PKCS_OAEP, oaep(CKM.SHA256, CKG.MGF1_SHA256)), rsa.publicKey, Buffer.alloc(191)),
      () => encrypt(mech(CKM.RSA_X_509), rsa.publicKey, Buffer.alloc(257)),
      () => sign(mech(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 32)), rsa.privateKey, Buffer.alloc(31)),
      () => sign(mech(CKM.RSA_PKCS_PSS, pss(CKM.SHA256, CKG.MGF1_SHA256, 32)), rsa.privateKey, Buffer.alloc(33)),
    ];
    for (const [i, action] of cases.entries()) expect([i, await rvOf(action)]).toEqual([i, CKR.DATA_LEN_RANGE]);
    // The limits themselves are fine.
    expect((await sign(mech(CKM.RSA_PKCS), rsa.privateKey, Buffer.alloc(245))).length).toBe(256);
    expect((await encrypt(mech(CKM.RSA_PKCS_OAEP, oaep(CKM.SHA256, CKG.MGF1_SHA256)), rsa.publicKey, Buffer.alloc(190))).length).toBe(256);
  });

  it('CKR_DATA_INVALID: raw RSA input not below the modulus', async () => {
    expect(await rvOf(() => encrypt(mech(CKM.RSA_X_509), rsa.publicKey, Buffer.alloc(256, 0xff)))).toBe(CKR.DATA_INVALID);
    expect(await rvOf(() => sign(mech(CKM.RSA_X_509), rsa.privateKey, Buffer.alloc(256, 0xff)))).toBe(CKR.DATA_INVALID);
  });
});

describe('CKR_ENCRYPTED_DATA_LEN_RANGE and CKR_ENCRYPTED_DATA_INVALID', () => {
  it('ciphertext of an impossible length', async () => {
    const cases: Array<() => unknown> = [
      () => decrypt(mech(CKM.AES_CBC, iv), aes128, Buffer.alloc(15)),
      () => decrypt(mech(CKM.AES_CBC_PAD, iv), aes128, Buffer.alloc(17)),
      () => decrypt(mech(CKM.AES_CBC_PAD, iv), aes128),
      () => decrypt(mech(CKM.AES_ECB), aes128, Buffer.alloc(33)),
      () => decrypt(mech(CKM.AES_GCM, gcm(128)), aes128, Buffer.alloc(15)),
      () => decrypt(mech(CKM.AES_KEY_WRAP), aes128, Buffer.alloc(20)),
      () => decrypt(mech(CKM.AES_KEY_WRAP_PAD), aes128, Buffer.alloc(8)),
      () => decrypt(mech(CKM.RSA_PKCS), rsa.privateKey, Buffer.alloc(255)),
      () => decrypt(mech(CKM.RSA_PKCS_OAEP, oaep(CKM.SHA_1, CKG.MGF1_SHA1)), rsa.privateKey, Buffer.alloc(257)),
    ];
    for (const [i, action] of cases.entries()) expect([i, await rvOf(action)]).toEqual([i, CKR.ENCRYPTED_DATA_LEN_RANGE]);
  });

  it('ciphertext that fails its tag, padding or integrity check', async () => {
    const gcmMech = mech(CKM.AES_GCM, gcm(128));
    const sealed = await encrypt(gcmMech, aes128, Buffer.from('authenticated'));
    sealed[0] = sealed[0]! ^ 1;
    const badPadding = await encrypt(mech(CKM.AES_CBC, iv), aes128, Buffer.alloc(32, 0x11));
    const oaepMech = mech(CKM.RSA_PKCS_OAEP, oaep(CKM.SHA256, CKG.MGF1_SHA256));
    const oaepSealed = await encrypt(oaepMech, rsa.publicKey, Buffer.from('x'));
    oaepSealed[100] = oaepSealed[100]! ^ 1;
    const mixedMech = mech(CKM.RSA_PKCS_OAEP, oaep(CKM.SHA256, CKG.MGF1_SHA1));
    const mixedSealed = await encrypt(mixedMech, rsa.publicKey, Buffer.from('x'));
    const mixedTampered = Buffer.from(mixedSealed);
    mixedTampered[100] = mixedTampered[100]! ^ 1;
    const pkcsSealed = await encrypt(mech(CKM.RSA_X_509), rsa.publicKey, Buffer.concat([hex('0001'), Buffer.alloc(254, 0xff)]));
    const wrapped = await encrypt(mech(CKM.AES_KEY_WRAP), aes128, Buffer.alloc(16, 9));
    const cases: Array<() => unknown> = [
      () => decrypt(gcmMech, aes128, sealed),
      () => decrypt(mech(CKM.AES_CBC_PAD, iv), aes128, badPadding),
      () => decrypt(oaepMech, rsa.privateKey, oaepSealed),
      () => decrypt(mixedMech, rsa.privateKey, mixedTampered),
      () => decrypt(mech(CKM.RSA_PKCS_OAEP, oaep(CKM.SHA256, CKG.MGF1_SHA256)), rsa.privateKey, mixedSealed), // MGF1 hash differs
      () => decrypt(mech(CKM.RSA_PKCS_OAEP, { ...oaep(CKM.SHA256, CKG.MGF1_SHA1), sourceData: hex('01') }), rsa.privateKey, mixedSealed), // label differs
      () => decrypt(mech(CKM.RSA_PKCS), rsa.privateKey, pkcsSealed), // block type 1 is not encryption padding
      () => decrypt(mech(CKM.AES_KEY_WRAP), aes(Buffer.alloc(16, 4)), wrapped),
    ];
    for (const [i, action] of cases.entries()) expect([i, await rvOf(action)]).toEqual([i, CKR.ENCRYPTED_DATA_INVALID]);
  });
});

describe('bad signatures: false, or CKR_SIGNATURE_LEN_RANGE for an impossible length', () => {
  it('a flipped bit verifies false for each family', async () => {
    const data = Buffer.from('signed');
    const flip = (signature: Buffer) => { signature[signature.length >> 1] = signature[signature.length >> 1]! ^ 0x10; return signature; };
    const hmacKey = secret(CKK.GENERIC_SECRET, Buffer.alloc(32, 1));
    for (const [type, privateKey, publicKey] of [
      [CKM.SHA256_RSA_PKCS, rsa.privateKey, rsa.publicKey],
      [CKM.ECDSA_SHA256, ec.privateKey, ec.publicKey],
      [CKM.ECDSA, ec.privateKey, ec.publicKey],
      [CKM.EDDSA, ed.privateKey, ed.publicKey],
      [CKM.SHA256_HMAC, hmacKey, hmacKey],
      [CKM.RSA_PKCS, rsa.privateKey, rsa.publicKey],
      [CKM.RSA_X_509, rsa.privateKey, rsa.publicKey],
    ] as const) {
      const signature = await sign(mech(type), privateKey, data);
      expect(await verify(mech(type), publicKey, signature, data)).toBe(true);
      expect(await verify(mech(type), publicKey, flip(signature), data)).toBe(false);
    }
  });

  it('a signature of the wrong length is CKR_SIGNATURE_LEN_RANGE', async () => {
    const data = Buffer.from('signed');
    const cases: Array<() => unknown> = [
      () => verify(mech(CKM.SHA256_RSA_PKCS), rsa.publicKey, Buffer.alloc(255), data),
      () => verify(mech(CKM.ECDSA_SHA256), ec.publicKey, Buffer.alloc(63), data),
      () => verify(mech(CKM.ECDSA), ec.publicKey, Buffer.alloc(65), data),
      () => verify(mech(CKM.EDDSA), ed.publicKey, Buffer.alloc(63), data),
      () => verify(mech(CKM.SHA256_HMAC), secret(CKK.GENERIC_SECRET, Buffer.alloc(32)), Buffer.alloc(31), data),
    ];
    for (const [i, action] of cases.entries()) expect([i, await rvOf(action)]).toEqual([i, CKR.SIGNATURE_LEN_RANGE]);
  });
});

describe('EC parameters: CKR_CURVE_NOT_SUPPORTED and CKR_DOMAIN_PARAMS_INVALID', () => {
  it('a well-formed curve we do not offer', async () => {
    const cases: Array<[number, Buffer]> = [
      [CKM.EC_KEY_PAIR_GEN, hex('06082a8648ce3d030101')], // prime192v1 (P-192)
      [CKM.EC_KEY_PAIR_GEN, hex('06092b2403030208010108')], // brainpoolP256t1
      [CKM.EC_KEY_PAIR_GEN, hex('130c656477617264733235353139')], // edwards25519 is not a CKK_EC curve
      [CKM.EC_EDWARDS_KEY_PAIR_GEN, P256.params],
      [CKM.EC_EDWARDS_KEY_PAIR_GEN, Buffer.concat([hex('130a'), Buffer.from('edwards448')])],
    ];
    for (const [type, ecParams] of cases) {
      expect(await rvOf(() => mechanisms.generateKeyPair(mech(type), { ecParams }))).toBe(CKR.CURVE_NOT_SUPPORTED);
    }
  });

  it('bytes that are not DER at all', async () => {
    for (const ecParams of [hex('0102'), hex('06082a8648ce3d03'), hex('06'), hex('0500')]) {
      expect(await rvOf(() => mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams }))).toBe(CKR.DOMAIN_PARAMS_INVALID);
    }
    expect(await rvOf(() => ecPublicKeyDer(hex('0102'), Buffer.alloc(65)))).toBe(CKR.DOMAIN_PARAMS_INVALID);
  });
});

describe('templates: CKR_TEMPLATE_INCOMPLETE, CKR_TEMPLATE_INCONSISTENT, CKR_ATTRIBUTE_VALUE_INVALID', () => {
  it('missing values', async () => {
    expect(await rvOf(() => mechanisms.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), {}))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rvOf(() => mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), {}))).toBe(CKR.TEMPLATE_INCOMPLETE);
    expect(await rvOf(() => mechanisms.generateKey(mech(CKM.AES_KEY_GEN), {}))).toBe(CKR.TEMPLATE_INCOMPLETE);
  });

  it('values that contradict each other', async () => {
    expect(await rvOf(() => mechanisms.generateKey(mech(CKM.AES_KEY_GEN), { valueLength: 16, keyType: CKK.GENERIC_SECRET }))).toBe(CKR.TEMPLATE_INCONSISTENT);
    expect(await rvOf(() => mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: ecPoint() }), ec.privateKey, CKK.RSA, 16))).toBe(CKR.TEMPLATE_INCONSISTENT);
    expect(await rvOf(() => mechanisms.describeKey({ ...rsa.publicKey, keyType: CKK.EC }))).toBe(CKR.TEMPLATE_INCONSISTENT);
  });

  it('values PKCS#11 does not allow', async () => {
    expect(await rvOf(() => mechanisms.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), { modulusBits: 2048, publicExponent: hex('010000') }))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(await rvOf(() => mechanisms.describeKey(aes(Buffer.alloc(20))))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(await rvOf(() => mechanisms.describeKey({ objectClass: CKO.PUBLIC_KEY, keyType: CKK.RSA, der: hex('3000') }))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
  });

  it('CKR_ARGUMENTS_BAD: a negative random length', async () => {
    expect(await rvOf(() => mechanisms.random(-1))).toBe(CKR.ARGUMENTS_BAD);
  });
});

describe('wrapping: CKR_WRAPPED_KEY_*, CKR_(UN)WRAPPING_KEY_*, CKR_KEY_NOT_WRAPPABLE', () => {
  const kek = aes(Buffer.alloc(32, 8));

  it('wrapped bytes that do not unwrap, or do not hold the key the template names', async () => {
    const wrapped = await mechanisms.wrapKey(mech(CKM.AES_KEY_WRAP), kek, aes128);
    expect(await rvOf(() => mechanisms.unwrapKey(mech(CKM.AES_KEY_WRAP), aes(Buffer.alloc(32, 7)), wrapped, CKO.SECRET_KEY, CKK.AES))).toBe(CKR.WRAPPED_KEY_INVALID);
    const odd = await mechanisms.wrapKey(mech(CKM.AES_KEY_WRAP_PAD), kek, secret(CKK.GENERIC_SECRET, Buffer.alloc(20, 1)));
    expect(await rvOf(() => mechanisms.unwrapKey(mech(CKM.AES_KEY_WRAP_PAD), kek, odd, CKO.SECRET_KEY, CKK.AES))).toBe(CKR.WRAPPED_KEY_INVALID);
    expect(await rvOf(() => mechanisms.unwrapKey(mech(CKM.AES_KEY_WRAP_PAD), kek, odd, CKO.PRIVATE_KEY, CKK.RSA))).toBe(CKR.WRAPPED_KEY_INVALID);
    const ecWrapped = await mechanisms.wrapKey(mech(CKM.AES_KEY_WRAP_PAD), kek, ec.privateKey);
    expect(await rvOf(() => mechanisms.unwrapKey(mech(CKM.AES_KEY_WRAP_PAD), kek, ecWrapped, CKO.PRIVATE_KEY, CKK.RSA))).toBe(CKR.WRAPPED_KEY_INVALID);
    expect(await rvOf(() => mechanisms.unwrapKey(mech(CKM.AES_KEY_WRAP), kek, Buffer.alloc(20), CKO.SECRET_KEY, CKK.AES))).toBe(CKR.WRAPPED_KEY_LEN_RANGE);
    expect(await rvOf(() => mechanisms.unwrapKey(mech(CKM.RSA_PKCS), rsa.privateKey, Buffer.alloc(100), CKO.SECRET_KEY, CKK.AES))).toBe(CKR.WRAPPED_KEY_LEN_RANGE);
  });

  it('wrapping keys of the wrong type or size', async () => {
    expect(await rvOf(() => mechanisms.wrapKey(mech(CKM.AES_KEY_WRAP), secret(CKK.GENERIC_SECRET, Buffer.alloc(16)), aes128))).toBe(CKR.WRAPPING_KEY_TYPE_INCONSISTENT);
    expect(await rvOf(() => mechanisms.wrapKey(mech(CKM.AES_KEY_WRAP), aes(Buffer.alloc(17)), aes128))).toBe(CKR.WRAPPING_KEY_SIZE_RANGE);
    expect(await rvOf(() => mechanisms.unwrapKey(mech(CKM.RSA_PKCS), rsa.publicKey, Buffer.alloc(256), CKO.SECRET_KEY, CKK.AES))).toBe(CKR.UNWRAPPING_KEY_TYPE_INCONSISTENT);
    expect(await rvOf(() => mechanisms.unwrapKey(mech(CKM.AES_KEY_WRAP), aes(Buffer.alloc(15)), Buffer.alloc(24), CKO.SECRET_KEY, CKK.AES))).toBe(CKR.UNWRAPPING_KEY_SIZE_RANGE);
  });

  it('keys that cannot travel that way', async () => {
    expect(await rvOf(() => mechanisms.wrapKey(mech(CKM.AES_KEY_WRAP), kek, rsa.publicKey))).toBe(CKR.KEY_NOT_WRAPPABLE);
    // C_WrapKey (PKCS#11 3.0 5.18): a public key wraps secret keys; a private key travels under a
    // secret key only, whether or not its PKCS#8 would fit in the block (as SoftHSM2 answers).
    for (const mechanism of [mech(CKM.RSA_PKCS), mech(CKM.RSA_PKCS_OAEP, oaep(CKM.SHA_1, CKG.MGF1_SHA1))]) {
      for (const key of [ec.privateKey, rsa.privateKey, ed.privateKey]) {
        expect(await rvOf(() => mechanisms.wrapKey(mechanism, rsa.publicKey, key))).toBe(CKR.KEY_NOT_WRAPPABLE);
      }
    }
    // A 20-byte secret does not fit RFC 3394; CBC without padding zero-pads it to the block (PKCS#11 2.40).
    expect(await rvOf(() => mechanisms.wrapKey(mech(CKM.AES_KEY_WRAP), kek, secret(CKK.GENERIC_SECRET, Buffer.alloc(20))))).toBe(CKR.KEY_SIZE_RANGE);
    expect(await mechanisms.wrapKey(mech(CKM.AES_CBC, iv), kek, secret(CKK.GENERIC_SECRET, Buffer.alloc(20)))).toHaveLength(32);
  });
});
