// ECDSA over a hash the caller computed (CKM_ECDSA, and long multi-part ECDSA_SHAxxx input).
// node:crypto only signs messages it hashes itself, so the signature is assembled here
// (SEC 1, 4.1.3): the scalar multiplication k·G, the one step that touches secret values
// bit by bit, is OpenSSL's (ECDH.setPrivateKey computes the public point in constant time);
// the modular arithmetic is BigInt with the nonce inverse blinded. Verification handles only
// public values. On P-256 OpenSSL does the scalar multiplications (ECDH gives u1·G whole and
// the x of u2·Q; y is recovered and its sign fixed with x((u2+1)·Q)) and BigInt adds the
// points; on P-384/P-521, where OpenSSL 3.0's generic constant-time code is slower than that,
// and for the scalars ECDH refuses (0, n-1), verification is all BigInt.

import { createECDH, randomBytes } from 'node:crypto';
import { bigIntToBytes, bytesToBigInt, generator, type WeierstrassCurve } from './curves.js';

function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

/** a^-1 mod m for m prime and a not a multiple of m (extended Euclid). */
function invert(a: bigint, m: bigint): bigint {
  let [r0, r1] = [mod(a, m), m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return mod(s0, m);
}

/** The hash as an integer, truncated to the bit length of n (SEC 1, 4.1.3 step 5). */
function hashToInteger(curve: WeierstrassCurve, hash: Buffer): bigint {
  const nBits = curve.n.toString(2).length;
  let e = bytesToBigInt(hash);
  const hashBits = hash.length * 8;
  if (hashBits > nBits) e >>= BigInt(hashBits - nBits);
  return e;
}

/** A uniform scalar in [1, n-1]. */
function randomScalar(curve: WeierstrassCurve): bigint {
  return mod(bytesToBigInt(randomBytes(curve.byteLength + 16)), curve.n - 1n) + 1n;
}

/** r||s, each the width of n, over `hash` with the private scalar `d`. */
export function signPrehashed(curve: WeierstrassCurve, d: bigint, hash: Buffer): Buffer {
  const { n, byteLength } = curve;
  const e = hashToInteger(curve, hash);
  const ecdh = createECDH(curve.nodeName);
  for (;;) {
    const k = randomScalar(curve);
    ecdh.setPrivateKey(bigIntToBytes(k, byteLength));
    const r = mod(bytesToBigInt(ecdh.getPublicKey().subarray(1, 1 + byteLength)), n);
    if (r === 0n) continue;
    // s = k^-1 (e + r d), computed as (b k)^-1 · b (e + r d) so the inversion never sees k.
    const b = randomScalar(curve);
    const s = mod(invert(mod(b * k, n), n) * mod(b * mod(e + r * d, n), n), n);
    if (s === 0n) continue;
    return Buffer.concat([bigIntToBytes(r, byteLength), bigIntToBytes(s, byteLength)]);
  }
}

// Jacobian coordinates on y^2 = x^3 - 3x + b; z = 0 is the point at infinity.
interface Jacobian { x: bigint; y: bigint; z: bigint }

const INFINITY: Jacobian = { x: 1n, y: 1n, z: 0n };

function double(P: Jacobian, p: bigint): Jacobian {
  if (P.z === 0n || P.y === 0n) return INFINITY;
  const delta = mod(P.z * P.z, p);
  const gamma = mod(P.y * P.y, p);
  const beta = mod(P.x * gamma, p);
  const alpha = mod(3n * (P.x - delta) * (P.x + delta), p);
  const x = mod(alpha * alpha - 8n * beta, p);
  const z = mod((P.y + P.z) * (P.y + P.z) - gamma - delta, p);
  const y = mod(alpha * (4n * beta - x) - 8n * gamma * gamma, p);
  return { x, y, z };
}

function add(P: Jacobian, Q: Jacobian, p: bigint): Jacobian {
  if (P.z === 0n) return Q;
  if (Q.z === 0n) return P;
  const z1z1 = mod(P.z * P.z, p);
  const z2z2 = mod(Q.z * Q.z, p);
  const u1 = mod(P.x * z2z2, p);
  const u2 = mod(Q.x * z1z1, p);
  const s1 = mod(P.y * Q.z * z2z2, p);
  const s2 = mod(Q.y * P.z * z1z1, p);
  const h = mod(u2 - u1, p);
  const r = mod(2n * (s2 - s1), p);
  if (h === 0n) return r === 0n ? double(P, p) : INFINITY;
  const i = mod(4n * h * h, p);
  const j = mod(h * i, p);
  const v = mod(u1 * i, p);
  const x = mod(r * r - j - 2n * v, p);
  const y = mod(r * (v - x) - 2n * s1 * j, p);
  const z = mod(((P.z + Q.z) * (P.z + Q.z) - z1z1 - z2z2) * h, p);
  return { x, y, z };
}

/** u1·G + u2·Q by Shamir's trick. */
function twoScalarMultiply(u1: bigint, G: Jacobian, u2: bigint, Q: Jacobian, p: bigint): Jacobian {
  const both = add(G, Q, p);
  let R = INFINITY;
  const bits = Math.max(u1.toString(2).length, u2.toString(2).length);
  for (let i = bits - 1; i >= 0; i--) {
    R = double(R, p);
    const bit = BigInt(i);
    const a = (u1 >> bit) & 1n;
    const c = (u2 >> bit) & 1n;
    if (a && c) R = add(R, both, p);
    else if (a) R = add(R, G, p);
    else if (c) R = add(R, Q, p);
  }
  return R;
}

function decodeSignature(curve: WeierstrassCurve, hash: Buffer, signature: Buffer): { r: bigint; u1: bigint; u2: bigint } | null {
  const { n, byteLength } = curve;
  const r = bytesToBigInt(signature.subarray(0, byteLength));
  const s = bytesToBigInt(signature.subarray(byteLength));
  if (r <= 0n || r >= n || s <= 0n || s >= n) return null;
  const w = invert(s, n);
  return { r, u1: mod(hashToInteger(curve, hash) * w, n), u2: mod(r * w, n) };
}

function pointOf(curve: WeierstrassCurve, encoded: Buffer): Affine {
  return {
    x: bytesToBigInt(encoded.subarray(1, 1 + curve.byteLength)),
    y: bytesToBigInt(encoded.subarray(1 + curve.byteLength)),
  };
}

/** Checks r||s over `hash` with BigInt arithmetic only; the reference for verifyPrehashed. */
export function verifyByBigInt(curve: WeierstrassCurve, point: Buffer, hash: Buffer, signature: Buffer): boolean {
  const decoded = decodeSignature(curve, hash, signature);
  if (!decoded) return false;
  const { p, n } = curve;
  const g = generator(curve);
  const Q = pointOf(curve, point);
  const R = twoScalarMultiply(decoded.u1, { x: g.x, y: g.y, z: 1n }, decoded.u2, { x: Q.x, y: Q.y, z: 1n }, p);
  if (R.z === 0n) return false;
  const zInverse = invert(R.z, p);
  return mod(R.x * zInverse * zInverse, p) % n === decoded.r;
}

// Affine points; null is the point at infinity.
interface Affine { x: bigint; y: bigint }

function affineAdd(P: Affine, Q: Affine, p: bigint): Affine | null {
  let lambda: bigint;
  if (P.x === Q.x) {
    if (mod(P.y + Q.y, p) === 0n) return null;
    lambda = mod(3n * (P.x * P.x - 1n) * invert(2n * P.y, p), p);
  } else {
    lambda = mod((Q.y - P.y) * invert(Q.x - P.x, p), p);
  }
  const x = mod(lambda * lambda - P.x - Q.x, p);
  return { x, y: mod(lambda * (P.x - x) - P.y, p) };
}

function modPow(base: bigint, exponent: bigint, m: bigint): bigint {
  let result = 1n;
  let b = mod(base, m);
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % m;
    b = (b * b) % m;
  }
  return result;
}

/** Checks r||s over `hash` against the public point (uncompressed, 0x04 || X || Y). */
export function verifyPrehashed(curve: WeierstrassCurve, point: Buffer, hash: Buffer, signature: Buffer): boolean {
  const decoded = decodeSignature(curve, hash, signature);
  if (!decoded) return false;
  const { p, n, b, byteLength } = curve;
  const { r, u1, u2 } = decoded;
  if (!curve.fastNativeMultiply || u1 === 0n || u2 === n - 1n) return verifyByBigInt(curve, point, hash, signature);
  const ecdh = createECDH(curve.nodeName);
  ecdh.setPrivateKey(bigIntToBytes(u1, byteLength));
  const P1 = pointOf(curve, ecdh.getPublicKey());
  ecdh.setPrivateKey(bigIntToBytes(u2, byteLength));
  const x2 = bytesToBigInt(ecdh.computeSecret(point));
  ecdh.setPrivateKey(bigIntToBytes(u2 + 1n, byteLength));
  const x3 = bytesToBigInt(ecdh.computeSecret(point));
  // p ≡ 3 (mod 4) for P-256, P-384 and P-521, so a square root is one exponentiation.
  const y2 = modPow(x2 * x2 * x2 - 3n * x2 + b, (p + 1n) / 4n, p);
  const Q = pointOf(curve, point);
  let P2: Affine = { x: x2, y: y2 };
  if (affineAdd(P2, Q, p)?.x !== x3) P2 = { x: x2, y: mod(-y2, p) };
  const R = affineAdd(P1, P2, p);
  return R !== null && R.x % n === r;
}
