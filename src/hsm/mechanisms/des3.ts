// Triple DES (legacy: payment systems still run on it): CKM_DES3_KEY_GEN and the block modes
// CKM_DES3_ECB, CKM_DES3_CBC, CKM_DES3_CBC_PAD on node:crypto's des-ede3. Keys are three-key
// (24 bytes); generated ones have DES's odd parity in each byte. Single DES is not offered
// (docs/hsm.md, "Refused on purpose").

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { CKA, CKK, CKM, CKO, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import { blockOperation, type Direction } from './aes.js';
import type { GeneratedSecretKey, KeyMaterial, SecretKeyRequest, StreamingOperation } from './contract.js';
import { requireNoParameter } from './digest.js';
import type { MechanismEntry } from './entry.js';
import { secretKey } from './keys.js';

const BLOCK = 8;
export const DES3_KEY_BYTES = 24;

/** Each byte with DES's odd parity (its low bit set so the byte has an odd number of ones). */
export function withOddParity(key: Buffer): Buffer {
  const out = Buffer.from(key);
  for (let i = 0; i < out.length; i++) {
    let ones = 0;
    for (let b = out[i]! >> 1; b !== 0; b >>= 1) ones += b & 1;
    out[i] = (out[i]! & 0xfe) | (ones % 2 === 0 ? 1 : 0);
  }
  return out;
}

async function generateDes3Key(mechanism: Mechanism, request: SecretKeyRequest): Promise<GeneratedSecretKey> {
  requireNoParameter(mechanism);
  if (request.keyType !== undefined && request.keyType !== CKK.DES3) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT);
  if (request.valueLength !== undefined && request.valueLength !== DES3_KEY_BYTES) throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
  const random = await new Promise<Buffer>((resolve, reject) => {
    randomBytes(DES3_KEY_BYTES, (error, bytes) => (error ? reject(new Pkcs11Error(CKR.FUNCTION_FAILED)) : resolve(bytes)));
  });
  const value = withOddParity(random);
  random.fill(0);
  return {
    keyType: CKK.DES3,
    key: { objectClass: CKO.SECRET_KEY, keyType: CKK.DES3, der: value },
    attributes: new Map([[CKA.VALUE_LEN, DES3_KEY_BYTES]]),
  };
}

/** A DES3 key's value: 24 bytes, else CKR_KEY_SIZE_RANGE. */
export function des3Key(material: KeyMaterial): Buffer {
  const value = secretKey(material, [CKK.DES3]);
  if (value.length !== DES3_KEY_BYTES) throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
  return value;
}

function ivParameter(mechanism: Mechanism): Buffer {
  const parameter = mechanism.parameter;
  if (!parameter || parameter.kind !== 'bytes' || parameter.value.length !== BLOCK) throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  return parameter.value;
}

function ecb(direction: Direction) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    requireNoParameter(mechanism);
    const create = direction === 'encrypt' ? createCipheriv : createDecipheriv;
    return blockOperation(direction, create('des-ede3', des3Key(material), null).setAutoPadding(false), true, undefined, BLOCK);
  };
}

function cbc(direction: Direction, padded: boolean) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    const iv = ivParameter(mechanism);
    const create = direction === 'encrypt' ? createCipheriv : createDecipheriv;
    const cipher = create('des-ede3-cbc', des3Key(material), iv).setAutoPadding(padded);
    return blockOperation(direction, cipher, !padded || direction === 'decrypt', undefined, BLOCK);
  };
}

// Key sizes in bytes, as for AES.
const sizes = { minKeySize: DES3_KEY_BYTES, maxKeySize: DES3_KEY_BYTES };

export const des3Entries: MechanismEntry[] = [
  { type: CKM.DES3_KEY_GEN, ...sizes, generateKey: generateDes3Key },
  { type: CKM.DES3_ECB, ...sizes, wraps: true, encrypt: ecb('encrypt'), decrypt: ecb('decrypt') },
  { type: CKM.DES3_CBC, ...sizes, wraps: true, encrypt: cbc('encrypt', false), decrypt: cbc('decrypt', false) },
  { type: CKM.DES3_CBC_PAD, ...sizes, wraps: true, encrypt: cbc('encrypt', true), decrypt: cbc('decrypt', true) },
];
