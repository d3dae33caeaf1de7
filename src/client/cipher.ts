// Encryption as the convenience layer and the CLI do it: a named cipher, a fresh IV per message,
// and the IV carried in front of the ciphertext, so `decrypt` needs only the key and the bytes.
//   aes-gcm      12-byte IV || ciphertext || 16-byte tag
//   aes-cbc-pad  16-byte IV || ciphertext
//   aes-ctr      16-byte initial counter block || ciphertext
//   rsa-oaep     ciphertext (OAEP with SHA-256 and MGF1-SHA-256)
//   rsa-pkcs     ciphertext (PKCS#1 v1.5; prefer OAEP)
import { randomBytes } from 'node:crypto';
import { CKK, CKM } from '../pkcs11/constants.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import { ClientError } from './errors.js';
import { OAEP_SHA256 } from './key-specs.js';

export const CIPHERS = ['aes-gcm', 'aes-cbc-pad', 'aes-ctr', 'rsa-oaep', 'rsa-pkcs'] as const;
export type CipherName = (typeof CIPHERS)[number];

export function isCipherName(value: string): value is CipherName {
  return (CIPHERS as readonly string[]).includes(value);
}

export function defaultCipher(keyType: number): CipherName {
  if (keyType === CKK.AES) return 'aes-gcm';
  if (keyType === CKK.RSA) return 'rsa-oaep';
  throw new ClientError('NTLS_ERR_ARGUMENT', 'this key does not encrypt', 'name an AES or RSA key');
}

const IV_LENGTH: Record<CipherName, number> = { 'aes-gcm': 12, 'aes-cbc-pad': 16, 'aes-ctr': 16, 'rsa-oaep': 0, 'rsa-pkcs': 0 };

function mechanismFor(cipher: CipherName, iv: Buffer, aad: Buffer): Mechanism {
  switch (cipher) {
    case 'aes-gcm': return { type: CKM.AES_GCM, parameter: { kind: 'gcm', iv, aad, tagBits: 128 } };
    case 'aes-cbc-pad': return { type: CKM.AES_CBC_PAD, parameter: { kind: 'bytes', value: iv } };
    case 'aes-ctr': return { type: CKM.AES_CTR, parameter: { kind: 'ctr', counterBits: 128, counterBlock: iv } };
    case 'rsa-oaep': return OAEP_SHA256;
    case 'rsa-pkcs': return { type: CKM.RSA_PKCS, parameter: null };
  }
}

/** The mechanism for one new message and the prefix to put before its ciphertext. */
export function encryptionFor(cipher: CipherName, aad: Buffer = Buffer.alloc(0)): { mechanism: Mechanism; prefix: Buffer } {
  const iv = IV_LENGTH[cipher] ? randomBytes(IV_LENGTH[cipher]) : Buffer.alloc(0);
  if (cipher === 'aes-ctr') iv.fill(0, 12); // 96-bit random nonce, 32-bit counter from 0
  return { mechanism: mechanismFor(cipher, iv, aad), prefix: iv };
}

/** Splits a message made by `encryptionFor` back into its mechanism and ciphertext. */
export function decryptionFor(cipher: CipherName, message: Buffer, aad: Buffer = Buffer.alloc(0)): { mechanism: Mechanism; ciphertext: Buffer } {
  const n = IV_LENGTH[cipher];
  if (message.length < n) throw new ClientError('NTLS_ERR_ARGUMENT', `${message.length} bytes are too short for ${cipher} (its ${n}-byte IV comes first)`, 'decrypt what `encrypt` wrote, with the same --cipher');
  return { mechanism: mechanismFor(cipher, message.subarray(0, n), aad), ciphertext: message.subarray(n) };
}
