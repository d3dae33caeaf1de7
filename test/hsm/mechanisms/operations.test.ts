// The Mechanisms contract end to end: the mechanism list, derived attributes, key import,
// multi-part input past the retain limit, wrap/unwrap, ECDH, key generation.

import { beforeAll, describe, expect, it } from 'vitest';
import { constants, createECDH, createHash, ECDH, createPublicKey, verify as nodeVerify } from 'node:crypto';
import { CKA, CKD, CKF, CKG, CKK, CKM, CKO, CKZ } from '../../../src/pkcs11/constants.js';
import type { GeneratedKeyPair, KeyMaterial } from '../../../src/hsm/mechanisms/contract.js';
import {
  ecPrivateKeyDer, ecPublicKeyDer, RETAIN_LIMIT, rsaPublicKeyDer, singlePartMechanisms,
} from '../../../src/hsm/mechanisms/index.js';
import { ED25519, P256, P384, P521 } from '../../../src/hsm/mechanisms/curves.js';
import { readOctetString } from '../../../src/pkcs11/der.js';
import { aes, bytes, decrypt, encrypt, hex, mech, mechanisms, secret, sign, verify } from './run.js';

let rsa: GeneratedKeyPair;
let p256: GeneratedKeyPair;
let p384: GeneratedKeyPair;
let p521: GeneratedKeyPair;
let ed: GeneratedKeyPair;

beforeAll(async () => {
  [rsa, p256, p384, p521, ed] = await Promise.all([
    mechanisms.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), { modulusBits: 2048, publicExponent: hex('010001') }),
    mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: P256.params }),
    mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: P384.params }),
    mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: P521.params }),
    mechanisms.generateKeyPair(mech(CKM.EC_EDWARDS_KEY_PAIR_GEN), { ecParams: hex('06032b6570') }),
  ]);
});

describe('list()', () => {
  const info = (type: number) => mechanisms.list().find((entry) => entry.type === type)!;

  it('offers each mechanism once, with flags that match what it does', () => {
    const types = mechanisms.list().map((entry) => entry.type);
    expect(new Set(types).size).toBe(types.length);
    expect(info(CKM.RSA_PKCS).flags).toBe(CKF.ENCRYPT | CKF.DECRYPT | CKF.SIGN | CKF.VERIFY | CKF.WRAP | CKF.UNWRAP);
    expect(info(CKM.SHA256_RSA_PKCS).flags).toBe(CKF.SIGN | CKF.VERIFY);
    expect(info(CKM.RSA_PKCS_OAEP).flags).toBe(CKF.ENCRYPT | CKF.DECRYPT | CKF.WRAP | CKF.UNWRAP);
    expect(info(CKM.SHA384).flags).toBe(CKF.DIGEST);
    expect(info(CKM.AES_CTR).flags).toBe(CKF.ENCRYPT | CKF.DECRYPT);
    expect(info(CKM.AES_KEY_WRAP_PAD).flags & (CKF.WRAP | CKF.UNWRAP)).toBe(CKF.WRAP | CKF.UNWRAP);
    expect(info(CKM.ECDH1_DERIVE).flags & CKF.DERIVE).toBe(CKF.DERIVE);
    expect(info(CKM.EC_KEY_PAIR_GEN).flags).toBe(CKF.GENERATE_KEY_PAIR | CKF.EC_F_P | CKF.EC_NAMED_CURVE | CKF.EC_UNCOMPRESSED);
    expect(info(CKM.AES_KEY_GEN).flags).toBe(CKF.GENERATE);
    expect(info(CKM.EDDSA).flags).toBe(CKF.SIGN | CKF.VERIFY);
  });

  it('reports key sizes in bits for RSA and EC, bytes for AES and HMAC', () => {
    // What the mechanisms can do; a partition shows 2048 unless its legacy RSA sizes are on (test/hsm/legacy.test.ts).
    expect(info(CKM.RSA_PKCS_KEY_PAIR_GEN)).toMatchObject({ minKeySize: 1024, maxKeySize: 4096 });
    expect(info(CKM.DES3_CBC)).toMatchObject({ minKeySize: 24, maxKeySize: 24 });
    expect(info(CKM.ECDSA)).toMatchObject({ minKeySize: 224, maxKeySize: 521 });
    expect(info(CKM.AES_GCM)).toMatchObject({ minKeySize: 16, maxKeySize: 32 });
    expect(info(CKM.SHA256_HMAC)).toMatchObject({ minKeySize: 1, maxKeySize: 512 });
    expect(info(CKM.GENERIC_SECRET_KEY_GEN)).toMatchObject({ minKeySize: 8, maxKeySize: 4096 });
  });

  it('names the single-part mechanisms', () => {
    expect(singlePartMechanisms.has(CKM.RSA_PKCS)).toBe(true);
    expect(singlePartMechanisms.has(CKM.ECDSA)).toBe(true);
    expect(singlePartMechanisms.has(CKM.SHA256_RSA_PKCS)).toBe(false);
  });
});

describe('derived attributes and key import', () => {
  it('RSA: modulus, bits and exponent, the same from generation and describeKey; rebuilt SPKI is identical', () => {
    const attributes = mechanisms.describeKey(rsa.publicKey);
    expect(attributes.get(CKA.MODULUS_BITS)).toBe(2048);
    expect(attributes.get(CKA.PUBLIC_EXPONENT)).toEqual(hex('010001'));
    expect((attributes.get(CKA.MODULUS) as Buffer).length).toBe(256);
    expect(attributes).toEqual(rsa.publicAttributes);
    expect(mechanisms.describeKey(rsa.privateKey).get(CKA.MODULUS)).toEqual(attributes.get(CKA.MODULUS));
    expect(rsaPublicKeyDer(attributes.get(CKA.MODULUS) as Buffer, attributes.get(CKA.PUBLIC_EXPONENT) as Buffer)).toEqual(rsa.publicKey.der);
  });

  it('EC: CKA_EC_PARAMS is the curve OID, CKA_EC_POINT a DER OCTET STRING of the uncompressed point', () => {
    const a256 = mechanisms.describeKey(p256.publicKey);
    expect(a256.get(CKA.EC_PARAMS)).toEqual(hex('06082a8648ce3d030107'));
    const point = a256.get(CKA.EC_POINT) as Buffer;
    expect(point.subarray(0, 3)).toEqual(hex('044104'));
    expect(point.length).toBe(67);
    const a521 = mechanisms.describeKey(p521.publicKey);
    expect((a521.get(CKA.EC_POINT) as Buffer).subarray(0, 4)).toEqual(hex('04818504'));
    expect(a256).toEqual(p256.publicAttributes);
    expect(mechanisms.describeKey(p384.privateKey).get(CKA.EC_PARAMS)).toEqual(P384.params);
    expect(ecPublicKeyDer(P256.params, point)).toEqual(p256.publicKey.der);
  });

  it('EC import from a compressed point and from a private scalar', async () => {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const compressed = ecdh.getPublicKey(undefined, 'compressed');
    const publicKey: KeyMaterial = { objectClass: CKO.PUBLIC_KEY, keyType: CKK.EC, der: ecPublicKeyDer(P256.params, compressed) };
    const privateKey: KeyMaterial = { objectClass: CKO.PRIVATE_KEY, keyType: CKK.EC, der: ecPrivateKeyDer(P256.params, ecdh.getPrivateKey()) };
    const signature = await sign(mech(CKM.ECDSA_SHA256), privateKey, Buffer.from('imported'));
    expect(await verify(mech(CKM.ECDSA_SHA256), publicKey, signature, Buffer.from('imported'))).toBe(true);
  });

  it('Ed25519: CKA_EC_PARAMS as requested on generation, "edwards25519" from describeKey, CKA_EC_POINT 04 20 || key', () => {
    expect(ed.publicAttributes.get(CKA.EC_PARAMS)).toEqual(hex('06032b6570'));
    const attributes = mechanisms.describeKey(ed.publicKey);
    expect(attributes.get(CKA.EC_PARAMS)).toEqual(ED25519.params);
    const point = attributes.get(CKA.EC_POINT) as Buffer;
    expect(point.subarray(0, 2)).toEqual(hex('0420'));
    expect(point.subarray(2)).toEqual(ed.publicKey.der.subarray(ed.publicKey.der.length - 32));
    expect(ecPublicKeyDer(ED25519.params, point)).toEqual(ed.publicKey.der);
  });

  it('secret keys: CKA_VALUE_LEN', () => {
    expect(mechanisms.describeKey(aes(Buffer.alloc(24))).get(CKA.VALUE_LEN)).toBe(24);
    expect(mechanisms.describeKey(secret(CKK.GENERIC_SECRET, Buffer.alloc(5))).get(CKA.VALUE_LEN)).toBe(5);
  });
});

describe('key generation', () => {
  it('AES 128/192/256 and generic secrets of the requested length', async () => {
    for (const length of [16, 24, 32]) {
      const key = await mechanisms.generateKey(mech(CKM.AES_KEY_GEN), { valueLength: length });
      expect(key.key.der.length).toBe(length);
      expect(key.attributes.get(CKA.VALUE_LEN)).toBe(length);
    }
    const generic = await mechanisms.generateKey(mech(CKM.GENERIC_SECRET_KEY_GEN), { valueLength: 40, keyType: CKK.GENERIC_SECRET });
    const mac = await sign(mech(CKM.SHA256_HMAC), generic.key, Buffer.from('x'));
    expect(await verify(mech(CKM.SHA256_HMAC), generic.key, mac, Buffer.from('x'))).toBe(true);
  });

  it('RSA-4096 (generated once): bits, a PSS signature and its verification', async () => {
    const big = await mechanisms.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), { modulusBits: 4096 });
    expect(big.publicAttributes.get(CKA.MODULUS_BITS)).toBe(4096);
    const pss = mech(CKM.SHA512_RSA_PKCS_PSS, { kind: 'pss', hashAlg: CKM.SHA512, mgf: CKG.MGF1_SHA512, saltLength: 64 });
    const signature = await sign(pss, big.privateKey, Buffer.from('four thousand ninety-six'));
    expect(signature.length).toBe(512);
    expect(await verify(pss, big.publicKey, signature, Buffer.from('four thousand ninety-six'))).toBe(true);
  }, 120_000);

  it('RSA with public exponent 3', async () => {
    const pair = await mechanisms.generateKeyPair(mech(CKM.RSA_PKCS_KEY_PAIR_GEN), { modulusBits: 2048, publicExponent: hex('03') });
    expect(pair.publicAttributes.get(CKA.PUBLIC_EXPONENT)).toEqual(hex('03'));
  });

  it('random() returns the requested number of bytes', async () => {
    expect((await mechanisms.random(0)).length).toBe(0);
    const a = await mechanisms.random(32);
    expect(a.length).toBe(32);
    expect(a).not.toEqual(await mechanisms.random(32));
  });
});

describe('multi-part input beyond the retain limit (hashed as it arrives)', () => {
  const chunk = Buffer.alloc(256 * 1024, 0x5a);
  const chunks = Array.from({ length: (RETAIN_LIMIT * 2) / chunk.length + 1 }, () => chunk);
  const whole = Buffer.concat(chunks);

  it('SHA256_RSA_PKCS gives the same (deterministic) signature both ways', async () => {
    const streamed = await sign(mech(CKM.SHA256_RSA_PKCS), rsa.privateKey, ...chunks);
    const publicKey = createPublicKey({ key: rsa.publicKey.der, format: 'der', type: 'spki' });
    expect(nodeVerify('sha256', whole, publicKey, streamed)).toBe(true);
    expect(await verify(mech(CKM.SHA256_RSA_PKCS), rsa.publicKey, streamed, ...chunks)).toBe(true);
  });

  it('SHA384_RSA_PKCS_PSS and ECDSA_SHA256 signatures verify with node:crypto, and here', async () => {
    const pss = mech(CKM.SHA384_RSA_PKCS_PSS, { kind: 'pss', hashAlg: CKM.SHA384, mgf: CKG.MGF1_SHA384, saltLength: 48 });
    const rsaSignature = await sign(pss, rsa.privateKey, ...chunks);
    const rsaPublic = createPublicKey({ key: rsa.publicKey.der, format: 'der', type: 'spki' });
    expect(nodeVerify('sha384', whole, { key: rsaPublic, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 }, rsaSignature)).toBe(true);
    expect(await verify(pss, rsa.publicKey, rsaSignature, ...chunks)).toBe(true);

    const ecSignature = await sign(mech(CKM.ECDSA_SHA256), p256.privateKey, ...chunks);
    const ecPublic = createPublicKey({ key: p256.publicKey.der, format: 'der', type: 'spki' });
    expect(nodeVerify('sha256', whole, { key: ecPublic, dsaEncoding: 'ieee-p1363' }, ecSignature)).toBe(true);
    expect(await verify(mech(CKM.ECDSA_SHA256), p256.publicKey, ecSignature, ...chunks)).toBe(true);
    expect(await verify(mech(CKM.ECDSA_SHA256), p256.publicKey, ecSignature, ...chunks, Buffer.from('x'))).toBe(false);
  });

  it('raw CKM_ECDSA on P-384 and P-521 agrees with node:crypto hash-then-sign', async () => {
    for (const [pair, hashName] of [[p384, 'sha384'], [p521, 'sha512']] as const) {
      const data = Buffer.from(`message for ${hashName}`);
      const signature = await sign(mech(CKM.ECDSA), pair.privateKey, createHash(hashName).update(data).digest());
      const publicKey = createPublicKey({ key: pair.publicKey.der, format: 'der', type: 'spki' });
      expect(nodeVerify(hashName, data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
    }
  });
});

describe('wrap and unwrap', () => {
  const kek = aes(hex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'));

  for (const [name, wrapping] of [
    ['AES_KEY_WRAP_PAD', mech(CKM.AES_KEY_WRAP_PAD)],
    ['AES_KEY_WRAP_KWP', mech(CKM.AES_KEY_WRAP_KWP)],
    ['AES_CBC_PAD', mech(CKM.AES_CBC_PAD, bytes(Buffer.alloc(16, 7)))],
    ['AES_GCM', mech(CKM.AES_GCM, { kind: 'gcm', iv: Buffer.alloc(12, 9), aad: Buffer.alloc(0), tagBits: 128 })],
  ] as const) {
    it(`private keys (RSA, P-384, Ed25519) as PKCS#8 under ${name}`, async () => {
      for (const [pair, type] of [[rsa, CKM.SHA256_RSA_PKCS], [p384, CKM.ECDSA_SHA384], [ed, CKM.EDDSA]] as const) {
        const wrapped = await mechanisms.wrapKey(wrapping, kek, pair.privateKey);
        const unwrapped = await mechanisms.unwrapKey(wrapping, kek, wrapped, CKO.PRIVATE_KEY, pair.keyType);
        expect(unwrapped).toMatchObject({ objectClass: CKO.PRIVATE_KEY, keyType: pair.keyType });
        const signature = await sign(mech(type), unwrapped, Buffer.from('after unwrap'));
        expect(await verify(mech(type), pair.publicKey, signature, Buffer.from('after unwrap'))).toBe(true);
      }
    });
  }

  it('secret keys under RSA OAEP and RSA PKCS#1 v1.5, and under AES_KEY_WRAP / AES_ECB', async () => {
    const aesKey = aes(hex('00112233445566778899aabbccddeeff'));
    const oaep = mech(CKM.RSA_PKCS_OAEP, { kind: 'oaep', hashAlg: CKM.SHA256, mgf: CKG.MGF1_SHA256, source: CKZ.DATA_SPECIFIED, sourceData: null });
    for (const wrapping of [oaep, mech(CKM.RSA_PKCS)]) {
      const wrapped = await mechanisms.wrapKey(wrapping, rsa.publicKey, aesKey);
      expect(wrapped.length).toBe(256);
      const unwrapped = await mechanisms.unwrapKey(wrapping, rsa.privateKey, wrapped, CKO.SECRET_KEY, CKK.AES);
      expect(unwrapped.der).toEqual(aesKey.der);
    }
    for (const wrapping of [mech(CKM.AES_KEY_WRAP), mech(CKM.AES_ECB)]) {
      const wrapped = await mechanisms.wrapKey(wrapping, kek, aesKey);
      expect((await mechanisms.unwrapKey(wrapping, kek, wrapped, CKO.SECRET_KEY, CKK.AES)).der).toEqual(aesKey.der);
    }
  });
});

describe('ECDH1_DERIVE', () => {
  const pointOf = (pair: GeneratedKeyPair) => readOctetString(pair.publicAttributes.get(CKA.EC_POINT) as Buffer)!;

  it('both parties derive the same secret; the peer point may be raw, DER-wrapped or compressed', async () => {
    const other = await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: P256.params });
    const derive = (base: GeneratedKeyPair, publicData: Buffer) => mechanisms.deriveKey(
      mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData }), base.privateKey, CKK.GENERIC_SECRET, 0);
    const ab = await derive(p256, pointOf(other));
    const ba = await derive(other, pointOf(p256));
    expect(ab.der).toEqual(ba.der);
    expect(ab.der.length).toBe(32);
    expect((await derive(p256, other.publicAttributes.get(CKA.EC_POINT) as Buffer)).der).toEqual(ab.der);
    const compressed = ECDH.convertKey(pointOf(other), 'prime256v1', undefined, undefined, 'compressed') as Buffer;
    expect((await derive(p256, compressed)).der).toEqual(ab.der);
  });

  it('SHA-256 X9.63 KDF with shared data, and an AES key cut from the secret', async () => {
    const other = await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: P256.params });
    const z = (await mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: pointOf(other) }),
      p256.privateKey, CKK.GENERIC_SECRET, 0)).der;
    const shared = Buffer.from('context');
    const kdf = await mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.SHA256_KDF, sharedData: shared, publicData: pointOf(other) }),
      p256.privateKey, CKK.GENERIC_SECRET, 40);
    const block = (i: number) => createHash('sha256').update(z).update(Buffer.from([0, 0, 0, i])).update(shared).digest();
    expect(kdf.der).toEqual(Buffer.concat([block(1), block(2)]).subarray(0, 40));
    const aesKey = await mechanisms.deriveKey(mech(CKM.ECDH1_DERIVE, { kind: 'ecdh1', kdf: CKD.NULL, sharedData: null, publicData: pointOf(other) }),
      p256.privateKey, CKK.AES, 16);
    expect(aesKey).toMatchObject({ objectClass: CKO.SECRET_KEY, keyType: CKK.AES });
    expect(aesKey.der).toEqual(z.subarray(16));
  });
});

describe('AES modes in more detail', () => {
  it('CBC_PAD round trip at every length around a block', async () => {
    const key = aes(Buffer.alloc(16, 1));
    const iv = mech(CKM.AES_CBC_PAD, bytes(Buffer.alloc(16, 2)));
    for (let length = 0; length <= 33; length++) {
      const plain = Buffer.alloc(length, length);
      const sealed = await encrypt(iv, key, plain);
      expect(sealed.length).toBe(Math.floor(length / 16) * 16 + 16);
      expect(await decrypt(iv, key, sealed)).toEqual(plain);
    }
  });

  it('CTR with a 2-bit counter allows exactly four blocks', async () => {
    const counter = mech(CKM.AES_CTR, { kind: 'ctr', counterBits: 2, counterBlock: Buffer.alloc(16, 0xf0) });
    expect((await encrypt(counter, aes(Buffer.alloc(16)), Buffer.alloc(64))).length).toBe(64);
  });
});

describe('concurrency and buffer ownership', () => {
  it('many RSA private operations in flight at once on the worker pool all come back right', async () => {
    const oaep = mech(CKM.RSA_PKCS_OAEP, { kind: 'oaep', hashAlg: CKM.SHA_1, mgf: CKG.MGF1_SHA1, source: 0, sourceData: null });
    const inputs = Array.from({ length: 24 }, (_, i) => Buffer.from(`request number ${i}`));
    const [signatures, plains] = await Promise.all([
      Promise.all(inputs.map((input) => sign(mech(CKM.RSA_PKCS), rsa.privateKey, input))),
      Promise.all(inputs.map(async (input) => decrypt(oaep, rsa.privateKey, await encrypt(oaep, rsa.publicKey, input)))),
    ]);
    for (const [i, input] of inputs.entries()) {
      expect(await verify(mech(CKM.RSA_PKCS), rsa.publicKey, signatures[i]!, input)).toBe(true);
      expect(plains[i]).toEqual(input);
    }
  });

  it('input kept across updates is a copy: the caller may reuse its buffer', async () => {
    const frame = Buffer.from('first part, ');
    const operation = mechanisms.sign(mech(CKM.EDDSA), ed.privateKey);
    await operation.update(frame);
    frame.fill(0x21);
    await operation.update(Buffer.from('second part'));
    const signature = await operation.final();
    expect(await verify(mech(CKM.EDDSA), ed.publicKey, signature, Buffer.from('first part, second part'))).toBe(true);
  });
});
