// The ECDSA assembled outside node:crypto's sign (ecdsa-prehash.ts) against node:crypto's own
// verification, and its OpenSSL-assisted verification against the all-BigInt reference.

import { describe, expect, it } from 'vitest';
import { createECDH, createHash, createPublicKey, randomBytes, verify as nodeVerify } from 'node:crypto';
import { bytesToBigInt, P256, P384, P521, type WeierstrassCurve } from '../../../src/hsm/mechanisms/curves.js';
import { signPrehashed, verifyByBigInt, verifyPrehashed } from '../../../src/hsm/mechanisms/ecdsa-prehash.js';

function keyPair(curve: WeierstrassCurve) {
  const ecdh = createECDH(curve.nodeName);
  ecdh.generateKeys();
  const point = ecdh.getPublicKey();
  const x = point.subarray(1, 1 + curve.byteLength).toString('base64url');
  const y = point.subarray(1 + curve.byteLength).toString('base64url');
  const publicKey = createPublicKey({ key: { kty: 'EC', crv: curve.name, x, y }, format: 'jwk' });
  return { d: bytesToBigInt(ecdh.getPrivateKey()), point, publicKey };
}

describe.each([
  { curve: P256, hashName: 'sha256' }, { curve: P384, hashName: 'sha384' }, { curve: P521, hashName: 'sha512' },
] as const)('$curve.name', ({ curve, hashName }) => {
  const { d, point, publicKey } = keyPair(curve);

  it('signatures verify with node:crypto, and both verifications agree on valid and tampered ones', () => {
    for (let i = 0; i < 8; i++) {
      const message = randomBytes(40);
      const hash = createHash(hashName).update(message).digest();
      const signature = signPrehashed(curve, d, hash);
      expect(signature.length).toBe(2 * curve.byteLength);
      expect(nodeVerify(hashName, message, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
      expect(verifyPrehashed(curve, point, hash, signature)).toBe(true);
      expect(verifyByBigInt(curve, point, hash, signature)).toBe(true);
      const tampered = Buffer.from(signature);
      tampered[i % tampered.length] = tampered[i % tampered.length]! ^ 0x40;
      expect(verifyPrehashed(curve, point, hash, tampered)).toBe(verifyByBigInt(curve, point, hash, tampered));
      expect(verifyPrehashed(curve, point, hash, tampered)).toBe(false);
      // (r, s) does not verify for the negated hash (the y-sign of u2·Q is pinned down).
      const negated = Buffer.from((curve.n - bytesToBigInt(hash) % curve.n).toString(16).padStart(hash.length * 2, '0').slice(-hash.length * 2), 'hex');
      if (hash.length * 8 <= curve.n.toString(2).length) expect(verifyPrehashed(curve, point, negated, signature)).toBe(false);
    }
  });

  it('degenerate inputs: a zero hash (u1 = 0), r or s out of range, s = n - r', () => {
    const zero = Buffer.alloc(32);
    const signature = signPrehashed(curve, d, zero);
    expect(verifyPrehashed(curve, point, zero, signature)).toBe(true);
    const width = curve.byteLength;
    const hex = (value: bigint) => Buffer.from(value.toString(16).padStart(width * 2, '0'), 'hex');
    const hash = randomBytes(32);
    for (const [r, s] of [[0n, 1n], [1n, 0n], [curve.n, 1n], [1n, curve.n]]) {
      expect(verifyPrehashed(curve, point, hash, Buffer.concat([hex(r!), hex(s!)]))).toBe(false);
    }
    const r = bytesToBigInt(randomBytes(width)) % curve.n;
    const crafted = Buffer.concat([hex(r), hex(curve.n - r)]); // u2 = n - 1
    expect(verifyPrehashed(curve, point, hash, crafted)).toBe(verifyByBigInt(curve, point, hash, crafted));
  });
});
