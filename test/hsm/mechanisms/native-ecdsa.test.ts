// Raw CKM_ECDSA (a digest the caller hashed) and long multi-part ECDSA_SHAxxx go through the
// native addon (native/ecdsa, OpenSSL's EVP_PKEY_sign): signatures are PKCS#11's r||s and verify
// with node:crypto; node:crypto's signatures verify here; tampered ones do not.

import { describe, expect, it } from 'vitest';
import { createHash, createPrivateKey, createPublicKey, randomBytes, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { CKK, CKM, CKO } from '../../../src/pkcs11/constants.js';
import { P256, P384, P521 } from '../../../src/hsm/mechanisms/curves.js';
import { signDigest, verifyDigest } from '../../../src/hsm/mechanisms/native-ecdsa.js';
import { mech, mechanisms, sign, verify } from './run.js';

const P1363 = 'ieee-p1363' as const;

describe.each([
  { curve: P256, hashName: 'sha256' }, { curve: P384, hashName: 'sha384' }, { curve: P521, hashName: 'sha512' },
] as const)('$curve.name', ({ curve, hashName }) => {
  it('raw CKM_ECDSA signs natively: r||s that node:crypto verifies over the same digest', async () => {
    const pair = await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: curve.params });
    const publicKey = createPublicKey({ key: pair.publicKey.der, format: 'der', type: 'spki' });
    for (let i = 0; i < 6; i++) {
      const message = randomBytes(40 + i);
      const hash = createHash(hashName).update(message).digest();
      const signature = await sign(mech(CKM.ECDSA), pair.privateKey, hash);
      expect(signature.length).toBe(2 * curve.byteLength);
      expect(nodeVerify(hashName, message, { key: publicKey, dsaEncoding: P1363 }, signature)).toBe(true);
      expect(await verify(mech(CKM.ECDSA), pair.publicKey, signature, hash)).toBe(true);
      const tampered = Buffer.from(signature);
      tampered[5] = tampered[5]! ^ 0x40;
      expect(await verify(mech(CKM.ECDSA), pair.publicKey, tampered, hash)).toBe(false);
      const otherHash = Buffer.from(hash);
      otherHash[0] = otherHash[0]! ^ 1;
      expect(await verify(mech(CKM.ECDSA), pair.publicKey, signature, otherHash)).toBe(false);
    }
  });

  it('node:crypto signatures verify natively; r or s of zero or n do not', async () => {
    const pair = await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: curve.params });
    const privateKey = createPrivateKey({ key: pair.privateKey.der, format: 'der', type: 'pkcs8' });
    const message = randomBytes(64);
    const hash = createHash(hashName).update(message).digest();
    const theirs = nodeSign(hashName, message, { key: privateKey, dsaEncoding: P1363 });
    expect(await verify(mech(CKM.ECDSA), pair.publicKey, theirs, hash)).toBe(true);
    const width = curve.byteLength;
    const n = Buffer.from(curve.n.toString(16).padStart(2 * width, '0'), 'hex');
    const zero = Buffer.alloc(width);
    for (const bad of [Buffer.concat([zero, theirs.subarray(width)]), Buffer.concat([theirs.subarray(0, width), zero]), Buffer.concat([n, theirs.subarray(width)])]) {
      expect(await verify(mech(CKM.ECDSA), pair.publicKey, bad, hash)).toBe(false);
    }
  });

  it('digests longer than the order are truncated to its bits, as the hashed mechanisms do', async () => {
    const pair = await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: curve.params });
    const publicKey = createPublicKey({ key: pair.publicKey.der, format: 'der', type: 'spki' });
    const message = randomBytes(33);
    const long = createHash('sha512').update(message).digest();
    const signature = await sign(mech(CKM.ECDSA), pair.privateKey, long);
    expect(nodeVerify('sha512', message, { key: publicKey, dsaEncoding: P1363 }, signature)).toBe(true);
  });

  it('a multi-part ECDSA_SHAxxx past the retained size signs its digest natively', async () => {
    const pair = await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: curve.params });
    const publicKey = createPublicKey({ key: pair.publicKey.der, format: 'der', type: 'spki' });
    const type = { sha256: CKM.ECDSA_SHA256, sha384: CKM.ECDSA_SHA384, sha512: CKM.ECDSA_SHA512 }[hashName];
    const chunks = Array.from({ length: 5 }, () => randomBytes(300 * 1024));
    const signature = await sign(mech(type), pair.privateKey, ...chunks);
    expect(nodeVerify(hashName, Buffer.concat(chunks), { key: publicKey, dsaEncoding: P1363 }, signature)).toBe(true);
    expect(await verify(mech(type), pair.publicKey, signature, ...chunks)).toBe(true);
  });
});

describe('the native key cache', () => {
  it('signs and verifies with one parsed key many times, and an empty digest is the integer 0', async () => {
    const pair = await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: P256.params });
    const privateKey = createPrivateKey({ key: pair.privateKey.der, format: 'der', type: 'pkcs8' });
    const publicKey = createPublicKey({ key: pair.publicKey.der, format: 'der', type: 'spki' });
    for (let i = 0; i < 50; i++) {
      const digest = randomBytes(32);
      expect(verifyDigest(publicKey, digest, signDigest(privateKey, digest))).toBe(true);
    }
    expect(verifyDigest(publicKey, Buffer.alloc(32), signDigest(privateKey, Buffer.alloc(0)))).toBe(true);
    expect(pair.privateKey.objectClass).toBe(CKO.PRIVATE_KEY);
    expect(pair.keyType).toBe(CKK.EC);
  });

  it('a key signing again and again draws a fresh nonce each time, and a bad signature leaves its verifying intact', async () => {
    const pair = await mechanisms.generateKeyPair(mech(CKM.EC_KEY_PAIR_GEN), { ecParams: P256.params });
    const privateKey = createPrivateKey({ key: pair.privateKey.der, format: 'der', type: 'pkcs8' });
    const publicKey = createPublicKey({ key: pair.publicKey.der, format: 'der', type: 'spki' });
    const digest = randomBytes(32);
    const signatures = Array.from({ length: 20 }, () => signDigest(privateKey, digest));
    expect(new Set(signatures.map((s) => s.subarray(0, 32).toString('hex'))).size).toBe(20);
    expect(verifyDigest(publicKey, digest, Buffer.alloc(64, 0xff))).toBe(false);
    for (const signature of signatures) expect(verifyDigest(publicKey, digest, signature)).toBe(true);
  });
});
