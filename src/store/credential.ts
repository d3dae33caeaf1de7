// A role's credential as stored: never the PIN, only what a KDF of it yields. scrypt turns
// PIN + salt into 64 bytes: the first half is the key-encryption key that wraps this role's copy
// of the partition key, the second half is hashed into the verifier checked at login.

import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { KEY_BYTES, seal, unseal } from './seal.js';

export interface KdfParameters {
  /** scrypt cost N (a power of two). */
  cost: number;
  blockSize: number;
  parallelization: number;
}

/** Real work factor: N=2^15, r=8, p=1 (32 MiB, about 0.1 s per login on a server core). */
export const DEFAULT_KDF: KdfParameters = { cost: 1 << 15, blockSize: 8, parallelization: 1 };

export interface Credential {
  kdf: 'scrypt';
  cost: number;
  blockSize: number;
  parallelization: number;
  salt: Buffer;
  verifier: Buffer;
  /** The partition key sealed under the KEK. */
  wrappedKey: Buffer;
}

function derive(pin: Buffer, salt: Buffer, params: KdfParameters): Promise<Buffer> {
  const maxmem = 128 * params.cost * params.blockSize * params.parallelization + 16 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    scrypt(pin, salt, 64, { N: params.cost, r: params.blockSize, p: params.parallelization, maxmem }, (error, key) =>
      error ? reject(error) : resolve(key));
  });
}

function verifierOf(derived: Buffer): Buffer {
  return createHash('sha256').update('ntls-pin-verifier').update(derived.subarray(KEY_BYTES)).digest();
}

export async function createCredential(pin: Buffer, partitionKey: Buffer, params: KdfParameters, aad: Buffer): Promise<Credential> {
  const salt = randomBytes(16);
  const derived = await derive(pin, salt, params);
  const credential: Credential = {
    kdf: 'scrypt', cost: params.cost, blockSize: params.blockSize, parallelization: params.parallelization,
    salt, verifier: verifierOf(derived), wrappedKey: seal(derived.subarray(0, KEY_BYTES), partitionKey, aad),
  };
  derived.fill(0);
  return credential;
}

/** The partition key when the PIN is right, null when it is wrong. */
export async function openCredential(pin: Buffer, credential: Credential, aad: Buffer): Promise<Buffer | null> {
  const derived = await derive(pin, credential.salt, credential);
  try {
    if (!timingSafeEqual(verifierOf(derived), credential.verifier)) return null;
    return unseal(derived.subarray(0, KEY_BYTES), credential.wrappedKey, aad);
  } finally {
    derived.fill(0);
  }
}

export function encodeCredential(c: Credential): string {
  return JSON.stringify({
    kdf: c.kdf, N: c.cost, r: c.blockSize, p: c.parallelization,
    salt: c.salt.toString('base64'), verifier: c.verifier.toString('base64'), wrappedKey: c.wrappedKey.toString('base64'),
  });
}

export function decodeCredential(text: string): Credential {
  const o = JSON.parse(text) as Record<string, unknown>;
  if (o.kdf !== 'scrypt' || typeof o.N !== 'number' || typeof o.r !== 'number' || typeof o.p !== 'number'
    || typeof o.salt !== 'string' || typeof o.verifier !== 'string' || typeof o.wrappedKey !== 'string') {
    throw new Error('malformed credential');
  }
  return {
    kdf: 'scrypt', cost: o.N, blockSize: o.r, parallelization: o.p,
    salt: Buffer.from(o.salt, 'base64'), verifier: Buffer.from(o.verifier, 'base64'), wrappedKey: Buffer.from(o.wrappedKey, 'base64'),
  };
}
