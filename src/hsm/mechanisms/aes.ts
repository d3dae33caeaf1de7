// AES: key generation and the block modes ECB, CBC, CBC-PAD, CTR, GCM, plus key wrap as a
// cipher (RFC 3394; RFC 5649 for CKM_AES_KEY_WRAP_PAD, as SoftHSM2 reads it, and
// CKM_AES_KEY_WRAP_KWP). The streaming modes hand output back from update(); GCM decryption
// and key wrap hold the input until final(), so nothing is released before it is authenticated.

import { createCipheriv, createDecipheriv, randomBytes, type Cipher, type Decipher } from 'node:crypto';
import { CKA, CKK, CKM, CKO, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { CtrParams, GcmParams, Mechanism } from '../../pkcs11/mechanism.js';
import type { GeneratedSecretKey, KeyMaterial, SecretKeyRequest, StreamingOperation } from './contract.js';
import { requireNoParameter } from './digest.js';
import type { MechanismEntry } from './entry.js';
import { aesKey } from './keys.js';
import { WholeMessage } from './message.js';

const BLOCK = 16;

export type Direction = 'encrypt' | 'decrypt';

async function generateAesKey(mechanism: Mechanism, request: SecretKeyRequest): Promise<GeneratedSecretKey> {
  requireNoParameter(mechanism);
  if (request.keyType !== undefined && request.keyType !== CKK.AES) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT);
  const length = request.valueLength;
  if (length === undefined) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE);
  if (length !== 16 && length !== 24 && length !== 32) throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
  const value = await new Promise<Buffer>((resolve, reject) => {
    randomBytes(length, (error, bytes) => (error ? reject(new Pkcs11Error(CKR.FUNCTION_FAILED)) : resolve(bytes)));
  });
  return {
    keyType: CKK.AES,
    key: { objectClass: CKO.SECRET_KEY, keyType: CKK.AES, der: value },
    attributes: new Map([[CKA.VALUE_LEN, length]]),
  };
}

function cipherName(key: Buffer, mode: string): string {
  return `aes-${key.length * 8}-${mode}`;
}

/** The CBC IV: a 16-byte parameter. */
function ivParameter(mechanism: Mechanism): Buffer {
  const parameter = mechanism.parameter;
  if (!parameter || parameter.kind !== 'bytes' || parameter.value.length !== BLOCK) {
    throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  }
  return parameter.value;
}

/**
 * ECB, CBC, CBC-PAD, CTR (and DES3's, with its 8-byte block): node's cipher keeps partial blocks between updates. A leftover that
 * is not a whole block at final() is CKR_DATA_LEN_RANGE (encrypt) or
 * CKR_ENCRYPTED_DATA_LEN_RANGE (decrypt); bad CBC-PAD padding is CKR_ENCRYPTED_DATA_INVALID.
 */
export function blockOperation(direction: Direction, cipher: Cipher | Decipher, blockAligned: boolean, beforeUpdate?: (length: number) => void,
  block = BLOCK): StreamingOperation<void, Buffer> {
  let total = 0;
  const lengthError = direction === 'encrypt' ? CKR.DATA_LEN_RANGE : CKR.ENCRYPTED_DATA_LEN_RANGE;
  return {
    async update(data) {
      beforeUpdate?.(data.length);
      total += data.length;
      return cipher.update(data);
    },
    async final() {
      if (blockAligned && total % block !== 0) throw new Pkcs11Error(lengthError);
      try {
        return cipher.final();
      } catch {
        throw new Pkcs11Error(total === 0 ? lengthError : CKR.ENCRYPTED_DATA_INVALID);
      }
    },
  };
}

function ecb(direction: Direction) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    requireNoParameter(mechanism);
    const key = aesKey(material);
    const create = direction === 'encrypt' ? createCipheriv : createDecipheriv;
    const cipher = create(cipherName(key, 'ecb'), key, null).setAutoPadding(false);
    return blockOperation(direction, cipher, true);
  };
}

function cbc(direction: Direction, padded: boolean) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    const iv = ivParameter(mechanism);
    const key = aesKey(material);
    const create = direction === 'encrypt' ? createCipheriv : createDecipheriv;
    const cipher = create(cipherName(key, 'cbc'), key, iv).setAutoPadding(padded);
    return blockOperation(direction, cipher, !padded || direction === 'decrypt');
  };
}

/**
 * CTR with PKCS#11's counter width: the low `counterBits` of the block count, and the counter
 * must not wrap within them (node would carry into the nonce instead), else CKR_DATA_LEN_RANGE.
 */
function ctr(direction: Direction) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    const parameter = mechanism.parameter;
    if (!parameter || parameter.kind !== 'ctr') throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
    const params: CtrParams = parameter;
    if (params.counterBlock.length !== BLOCK || !Number.isInteger(params.counterBits) || params.counterBits < 1 || params.counterBits > 128) {
      throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
    }
    const key = aesKey(material);
    const width = BigInt(params.counterBits);
    const start = BigInt(`0x${params.counterBlock.toString('hex')}`) & ((1n << width) - 1n);
    const blocksAvailable = (1n << width) - start;
    let total = 0n;
    const create = direction === 'encrypt' ? createCipheriv : createDecipheriv;
    const cipher = create(cipherName(key, 'ctr'), key, params.counterBlock);
    return blockOperation(direction, cipher, false, (length) => {
      total += BigInt(length);
      if ((total + 15n) / 16n > blocksAvailable) throw new Pkcs11Error(direction === 'encrypt' ? CKR.DATA_LEN_RANGE : CKR.ENCRYPTED_DATA_LEN_RANGE);
    });
  };
}

function gcmParameters(mechanism: Mechanism): { iv: Buffer; aad: Buffer; tagLength: number } {
  const parameter = mechanism.parameter;
  if (!parameter || parameter.kind !== 'gcm') throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  const params: GcmParams = parameter;
  const tagLength = params.tagBits / 8;
  // node:crypto accepts tags of 4, 8 and 12..16 bytes (NIST SP 800-38D's list).
  const tagOk = Number.isInteger(tagLength) && (tagLength === 4 || tagLength === 8 || (tagLength >= 12 && tagLength <= 16));
  // IVs of 1 to 128 bytes: node:crypto refuses longer ones (12 bytes is what GCM is made for).
  if (!tagOk || params.iv.length === 0 || params.iv.length > 128) throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  return { iv: params.iv, aad: params.aad, tagLength };
}

function gcmEncrypt(mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> {
  const { iv, aad, tagLength } = gcmParameters(mechanism);
  const key = aesKey(material);
  const cipher = createCipheriv(cipherName(key, 'gcm') as 'aes-256-gcm', key, iv, { authTagLength: tagLength });
  if (aad.length > 0) cipher.setAAD(aad);
  return {
    async update(data) { return cipher.update(data); },
    async final() { return Buffer.concat([cipher.final(), cipher.getAuthTag()]); },
  };
}

function gcmDecrypt(mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> {
  const { iv, aad, tagLength } = gcmParameters(mechanism);
  const key = aesKey(material);
  const input = new WholeMessage();
  return {
    dispose() { input.release(); },
    async update(data) { input.add(data, CKR.ENCRYPTED_DATA_LEN_RANGE); },
    async final() {
      const sealed = input.take();
      if (sealed.length < tagLength) throw new Pkcs11Error(CKR.ENCRYPTED_DATA_LEN_RANGE);
      const decipher = createDecipheriv(cipherName(key, 'gcm') as 'aes-256-gcm', key, iv, { authTagLength: tagLength });
      decipher.setAuthTag(sealed.subarray(sealed.length - tagLength));
      if (aad.length > 0) decipher.setAAD(aad);
      const plain = decipher.update(sealed.subarray(0, sealed.length - tagLength));
      try {
        return Buffer.concat([plain, decipher.final()]);
      } catch {
        plain.fill(0);
        throw new Pkcs11Error(CKR.ENCRYPTED_DATA_INVALID);
      }
    },
  };
}

// --- key wrap as a cipher -------------------------------------------------------------------

const RFC3394_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const RFC5649_IV = Buffer.from('a65959a6', 'hex');

function keyWrap(direction: Direction, padded: boolean) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    const parameter = mechanism.parameter;
    const defaultIv = padded ? RFC5649_IV : RFC3394_IV;
    let iv: Buffer = defaultIv;
    if (parameter) {
      if (parameter.kind !== 'bytes') throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
      if (parameter.value.length === defaultIv.length) iv = parameter.value;
      else if (parameter.value.length !== 0) throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
    }
    const key = aesKey(material);
    const name = `id-aes${key.length * 8}-wrap${padded ? '-pad' : ''}`;
    const input = new WholeMessage();
    const lengthError = direction === 'encrypt' ? CKR.DATA_LEN_RANGE : CKR.ENCRYPTED_DATA_LEN_RANGE;
    return {
      dispose() { input.release(); },
      async update(data) { input.add(data, lengthError); },
      async final() {
        const data = input.take();
        const length = data.length;
        const lengthOk = direction === 'encrypt'
          ? (padded ? length >= 1 : length >= 16 && length % 8 === 0)
          : (padded ? length >= 16 && length % 8 === 0 : length >= 24 && length % 8 === 0);
        if (!lengthOk) throw new Pkcs11Error(lengthError);
        const create = direction === 'encrypt' ? createCipheriv : createDecipheriv;
        try {
          const cipher = create(name, key, iv);
          return Buffer.concat([cipher.update(data), cipher.final()]);
        } catch {
          throw new Pkcs11Error(direction === 'encrypt' ? CKR.FUNCTION_FAILED : CKR.ENCRYPTED_DATA_INVALID);
        }
      },
    };
  };
}

// --- registry entries -----------------------------------------------------------------------

const sizes = { minKeySize: 16, maxKeySize: 32 };

export const aesEntries: MechanismEntry[] = [
  { type: CKM.AES_KEY_GEN, ...sizes, generateKey: generateAesKey },
  { type: CKM.AES_ECB, ...sizes, wraps: true, encrypt: ecb('encrypt'), decrypt: ecb('decrypt') },
  { type: CKM.AES_CBC, ...sizes, wraps: true, encrypt: cbc('encrypt', false), decrypt: cbc('decrypt', false) },
  { type: CKM.AES_CBC_PAD, ...sizes, wraps: true, encrypt: cbc('encrypt', true), decrypt: cbc('decrypt', true) },
  { type: CKM.AES_CTR, ...sizes, encrypt: ctr('encrypt'), decrypt: ctr('decrypt') },
  { type: CKM.AES_GCM, ...sizes, wraps: true, encrypt: gcmEncrypt, decrypt: gcmDecrypt },
  { type: CKM.AES_KEY_WRAP, ...sizes, wraps: true, singlePart: true, encrypt: keyWrap('encrypt', false), decrypt: keyWrap('decrypt', false) },
  { type: CKM.AES_KEY_WRAP_PAD, ...sizes, wraps: true, singlePart: true, encrypt: keyWrap('encrypt', true), decrypt: keyWrap('decrypt', true) },
  { type: CKM.AES_KEY_WRAP_KWP, ...sizes, wraps: true, singlePart: true, encrypt: keyWrap('encrypt', true), decrypt: keyWrap('decrypt', true) },
];
