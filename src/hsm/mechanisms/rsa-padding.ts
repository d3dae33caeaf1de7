// RSA encodings node:crypto does not apply for us: EMSA-PSS over a precomputed hash (RFC 8017
// 9.1, for CKM_RSA_PKCS_PSS and for long multi-part messages), and the removal of PKCS#1 v1.5
// encryption padding, which Node 20 no longer does in privateDecrypt (CVE-2023-46809).

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { HashAlgorithm } from './digest.js';

function mgf1(hash: HashAlgorithm, seed: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  const counter = Buffer.alloc(4);
  for (let offset = 0, i = 0; offset < length; offset += hash.length, i++) {
    counter.writeUInt32BE(i);
    createHash(hash.name).update(seed).update(counter).digest().copy(out, offset);
  }
  return out;
}

function pssHash(hash: HashAlgorithm, mHash: Buffer, salt: Buffer): Buffer {
  return createHash(hash.name).update(Buffer.alloc(8)).update(mHash).update(salt).digest();
}

/** The longest salt a modulus of `modulusBits` allows with this hash. */
export function maxPssSalt(modulusBits: number, hash: HashAlgorithm): number {
  return Math.ceil((modulusBits - 1) / 8) - hash.length - 2;
}

/** EM for RSASP1, already left-padded to the modulus length `k`. */
export function pssEncode(mHash: Buffer, modulusBits: number, k: number, hash: HashAlgorithm, mgfHash: HashAlgorithm, saltLength: number): Buffer {
  const emBits = modulusBits - 1;
  const emLen = Math.ceil(emBits / 8);
  const salt = randomBytes(saltLength);
  const h = pssHash(hash, mHash, salt);
  const db = Buffer.alloc(emLen - hash.length - 1);
  db[db.length - saltLength - 1] = 0x01;
  salt.copy(db, db.length - saltLength);
  const mask = mgf1(mgfHash, h, db.length);
  for (let i = 0; i < db.length; i++) db[i] = db[i]! ^ mask[i]!;
  db[0] = db[0]! & (0xff >> (8 * emLen - emBits));
  const em = Buffer.alloc(k);
  db.copy(em, k - emLen);
  h.copy(em, k - hash.length - 1);
  em[k - 1] = 0xbc;
  return em;
}

/** EMSA-PSS-VERIFY on `em` = s^e mod n, k bytes. */
export function pssVerify(em: Buffer, mHash: Buffer, modulusBits: number, hash: HashAlgorithm, mgfHash: HashAlgorithm, saltLength: number): boolean {
  const emBits = modulusBits - 1;
  const emLen = Math.ceil(emBits / 8);
  for (let i = 0; i < em.length - emLen; i++) if (em[i] !== 0) return false;
  const encoded = em.subarray(em.length - emLen);
  if (emLen < hash.length + saltLength + 2 || encoded[emLen - 1] !== 0xbc) return false;
  const maskedDb = encoded.subarray(0, emLen - hash.length - 1);
  const h = encoded.subarray(emLen - hash.length - 1, emLen - 1);
  const topMask = 0xff >> (8 * emLen - emBits);
  if ((maskedDb[0]! & ~topMask) !== 0) return false;
  const mask = mgf1(mgfHash, h, maskedDb.length);
  const db = Buffer.alloc(maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i] = maskedDb[i]! ^ mask[i]!;
  db[0] = db[0]! & topMask;
  const separator = db.length - saltLength - 1;
  for (let i = 0; i < separator; i++) if (db[i] !== 0) return false;
  if (db[separator] !== 0x01) return false;
  return timingSafeEqual(pssHash(hash, mHash, db.subarray(separator + 1)), h);
}

/**
 * The message inside an EME-PKCS1-v1_5 block, or null. Scans the whole block whatever it finds,
 * so the time taken does not say where the padding went wrong; the CKR_ENCRYPTED_DATA_INVALID
 * answer itself remains the padding oracle every PKCS#11 token with CKM_RSA_PKCS decrypt has.
 */
export function pkcs1v15Unpad(em: Buffer): Buffer | null {
  let bad = em[0]! | (em[1]! ^ 0x02);
  let separator = 0;
  for (let i = 2; i < em.length; i++) {
    const isZero = ((em[i]! - 1) >> 31) & 1; // 1 when em[i] === 0
    const first = isZero & (separator === 0 ? 1 : 0);
    separator = first ? i : separator;
  }
  bad |= separator === 0 ? 1 : 0;
  bad |= separator < 10 ? 1 : 0; // at least eight non-zero padding bytes
  return bad ? null : em.subarray(separator + 1);
}

/**
 * EME-OAEP encoding (RFC 8017 7.1.1) of `message` into k bytes, for an MGF1 hash other than the
 * OAEP hash: node:crypto uses one hash for both.
 */
export function oaepEncode(message: Buffer, k: number, hash: HashAlgorithm, mgfHash: HashAlgorithm, label: Buffer): Buffer {
  const db = Buffer.alloc(k - hash.length - 1);
  createHash(hash.name).update(label).digest().copy(db);
  db[db.length - message.length - 1] = 0x01;
  message.copy(db, db.length - message.length);
  const seed = randomBytes(hash.length);
  const dbMask = mgf1(mgfHash, seed, db.length);
  for (let i = 0; i < db.length; i++) db[i] = db[i]! ^ dbMask[i]!;
  const seedMask = mgf1(mgfHash, db, seed.length);
  for (let i = 0; i < seed.length; i++) seed[i] = seed[i]! ^ seedMask[i]!;
  return Buffer.concat([Buffer.alloc(1), seed, db]);
}

/**
 * The message inside an EME-OAEP block `em` (k bytes), or null. As pkcs1v15Unpad, it does the
 * same work whatever is wrong, and every fault gives the same null (Manger's attack needs to
 * tell a bad first byte from a bad label hash or separator).
 */
export function oaepDecode(em: Buffer, hash: HashAlgorithm, mgfHash: HashAlgorithm, label: Buffer): Buffer | null {
  const hLen = hash.length;
  if (em.length < 2 * hLen + 2) return null;
  const maskedSeed = em.subarray(1, 1 + hLen);
  const maskedDb = em.subarray(1 + hLen);
  const seedMask = mgf1(mgfHash, maskedDb, hLen);
  const seed = Buffer.alloc(hLen);
  for (let i = 0; i < hLen; i++) seed[i] = maskedSeed[i]! ^ seedMask[i]!;
  const dbMask = mgf1(mgfHash, seed, maskedDb.length);
  const db = Buffer.alloc(maskedDb.length);
  for (let i = 0; i < db.length; i++) db[i] = maskedDb[i]! ^ dbMask[i]!;
  let bad = em[0]!;
  bad |= timingSafeEqual(db.subarray(0, hLen), createHash(hash.name).update(label).digest()) ? 0 : 1;
  let separator = 0;
  let found = 0;
  for (let i = hLen; i < db.length; i++) {
    const isOne = ((((db[i]! ^ 0x01) - 1) >> 31) & 1);
    const isZero = (((db[i]! - 1) >> 31) & 1);
    const first = isOne & (found ^ 1);
    separator = first ? i : separator;
    bad |= (found ^ 1) & (isOne ^ 1) & (isZero ^ 1); // a byte other than 0x00 before the 0x01
    found |= isOne;
  }
  bad |= found ^ 1;
  return bad ? null : Buffer.from(db.subarray(separator + 1));
}
