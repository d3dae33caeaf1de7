// C_WrapKey / C_UnwrapKey on top of the wrapping mechanisms' encrypt and decrypt: secret keys
// travel as their raw value, private keys as PKCS#8 DER (under secret keys only). The CKR_ codes
// of the cipher are translated into the wrapping vocabulary (a bad tag is a WRAPPED_KEY_INVALID,
// not an ENCRYPTED_DATA_INVALID).

import { CKK, CKM, CKO, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import type { KeyMaterial, StreamingOperation } from './contract.js';
import { curveFromNodeName } from './curves.js';
import { isGenericSecret } from './hmac.js';
import { keyTypeOfObject, parseAsymmetric } from './keys.js';
import { entryFor } from './registry.js';

function translate(error: unknown, codes: ReadonlyMap<number, number>): unknown {
  if (error instanceof Pkcs11Error) {
    const code = codes.get(error.rv);
    if (code !== undefined) return new Pkcs11Error(code);
  }
  return error;
}

const wrapInitCodes = new Map([
  [CKR.KEY_TYPE_INCONSISTENT, CKR.WRAPPING_KEY_TYPE_INCONSISTENT],
  [CKR.KEY_SIZE_RANGE, CKR.WRAPPING_KEY_SIZE_RANGE],
]);
const wrapDataCodes = new Map([[CKR.DATA_LEN_RANGE, CKR.KEY_SIZE_RANGE]]);
const unwrapInitCodes = new Map([
  [CKR.KEY_TYPE_INCONSISTENT, CKR.UNWRAPPING_KEY_TYPE_INCONSISTENT],
  [CKR.KEY_SIZE_RANGE, CKR.UNWRAPPING_KEY_SIZE_RANGE],
]);
const unwrapDataCodes = new Map([
  [CKR.ENCRYPTED_DATA_LEN_RANGE, CKR.WRAPPED_KEY_LEN_RANGE],
  [CKR.ENCRYPTED_DATA_INVALID, CKR.WRAPPED_KEY_INVALID],
]);

/**
 * Block ciphers without padding, by block size. PKCS#11 (2.40, ECB and CBC key wrapping): a
 * secret key's value is wrapped padded on the trailing end with up to block size minus one zero
 * bytes, and unwrapped cut to the template's CKA_VALUE_LEN (or the key type's fixed length).
 */
const UNPADDED_BLOCK = new Map<number, number>([[CKM.AES_ECB, 16], [CKM.AES_CBC, 16], [CKM.DES3_ECB, 8], [CKM.DES3_CBC, 8]]);

function zeroPadded(value: Buffer, block: number): Buffer {
  const rest = value.length % block;
  return rest === 0 ? value : Buffer.concat([value, Buffer.alloc(block - rest)]);
}

/** An unwrapped secret value cut to its length: the template's, else DES3's fixed 24 bytes, else all of it. */
function cutToLength(value: Buffer, keyType: number, valueLength: number | undefined): Buffer {
  const length = valueLength ?? (keyType === CKK.DES3 ? 24 : value.length);
  if (length > value.length) throw new Pkcs11Error(CKR.WRAPPED_KEY_INVALID);
  const cut = Buffer.from(value.subarray(0, length));
  value.fill(0);
  return cut;
}

async function runOnce(operation: StreamingOperation<void, Buffer>, data: Buffer): Promise<Buffer> {
  try {
    const head = await operation.update(data);
    const tail = await operation.final();
    return head ? Buffer.concat([head, tail]) : tail;
  } finally {
    operation.dispose?.();
  }
}

export async function wrapKey(mechanism: Mechanism, wrappingKey: KeyMaterial, key: KeyMaterial): Promise<Buffer> {
  const entry = entryFor(mechanism.type);
  if (!entry.wraps || !entry.encrypt) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
  if (key.objectClass !== CKO.SECRET_KEY && key.objectClass !== CKO.PRIVATE_KEY) {
    throw new Pkcs11Error(CKR.KEY_NOT_WRAPPABLE);
  }
  let operation: StreamingOperation<void, Buffer>;
  try {
    operation = entry.encrypt(mechanism, wrappingKey);
  } catch (error) {
    throw translate(error, wrapInitCodes);
  }
  // C_WrapKey (PKCS#11 3.0 5.18): a public key wraps secret keys; a private key travels under a
  // secret key only (RSA PKCS #1 v1.5 and OAEP carry a secret key's value, never a PKCS#8).
  if (key.objectClass === CKO.PRIVATE_KEY && wrappingKey.objectClass !== CKO.SECRET_KEY) {
    operation.dispose?.();
    throw new Pkcs11Error(CKR.KEY_NOT_WRAPPABLE);
  }
  const block = UNPADDED_BLOCK.get(mechanism.type);
  const value = block !== undefined && key.objectClass === CKO.SECRET_KEY ? zeroPadded(key.der, block) : key.der;
  try {
    return await runOnce(operation, value);
  } catch (error) {
    throw translate(error, wrapDataCodes);
  } finally {
    if (value !== key.der) value.fill(0);
  }
}

/** Checks that the unwrapped bytes are a key of the class and type the template names. */
function unwrappedKey(value: Buffer, objectClass: number, keyType: number): KeyMaterial {
  if (objectClass === CKO.SECRET_KEY) {
    if (keyType === CKK.AES) {
      if (value.length !== 16 && value.length !== 24 && value.length !== 32) throw new Pkcs11Error(CKR.WRAPPED_KEY_INVALID);
    } else if (keyType === CKK.DES3) {
      if (value.length !== 24) throw new Pkcs11Error(CKR.WRAPPED_KEY_INVALID);
    } else if (isGenericSecret(keyType)) {
      if (value.length === 0) throw new Pkcs11Error(CKR.WRAPPED_KEY_INVALID);
    } else {
      throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT);
    }
    return { objectClass, keyType, der: value };
  }
  if (objectClass !== CKO.PRIVATE_KEY) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT);
  if (keyType !== CKK.RSA && keyType !== CKK.EC && keyType !== CKK.EC_EDWARDS) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT);
  const object = parseAsymmetric(value, CKO.PRIVATE_KEY);
  if (!object || keyTypeOfObject(object) !== keyType) throw new Pkcs11Error(CKR.WRAPPED_KEY_INVALID);
  if (keyType === CKK.EC) curveFromNodeName(object.asymmetricKeyDetails?.namedCurve);
  value.fill(0);
  return { objectClass, keyType, der: object.export({ format: 'der', type: 'pkcs8' }) };
}

export async function unwrapKey(mechanism: Mechanism, unwrappingKey: KeyMaterial, wrapped: Buffer, objectClass: number, keyType: number, valueLength?: number): Promise<KeyMaterial> {
  const entry = entryFor(mechanism.type);
  if (!entry.wraps || !entry.decrypt) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
  let operation: StreamingOperation<void, Buffer>;
  try {
    operation = entry.decrypt(mechanism, unwrappingKey);
  } catch (error) {
    throw translate(error, unwrapInitCodes);
  }
  let value: Buffer;
  try {
    value = await runOnce(operation, wrapped);
  } catch (error) {
    throw translate(error, unwrapDataCodes);
  }
  if (UNPADDED_BLOCK.has(mechanism.type) && objectClass === CKO.SECRET_KEY) value = cutToLength(value, keyType, valueLength);
  // A CKA_VALUE_LEN the unwrapped key does not have is refused, not ignored: the application
  // would otherwise hold a key of another length than it asked for.
  if (objectClass === CKO.SECRET_KEY && valueLength !== undefined && value.length !== valueLength) {
    value.fill(0);
    throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, `CKA_VALUE_LEN ${valueLength}, the unwrapped key has ${value.length} bytes`);
  }
  return unwrappedKey(value, objectClass, keyType);
}
