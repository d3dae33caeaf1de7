// HMAC-SHA-1/2 (RFC 2104) over generic secret keys, and AES keys, which some applications
// use for HMAC too; and CKM_GENERIC_SECRET_KEY_GEN for their keys.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CKA, CKK, CKM, CKO, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import type { GeneratedSecretKey, KeyMaterial, SecretKeyRequest, StreamingOperation } from './contract.js';
import { hashNamed, requireNoParameter, type HashAlgorithm } from './digest.js';
import type { MechanismEntry } from './entry.js';
import { secretKey } from './keys.js';

/** Key sizes in bytes for HMAC; CKM_GENERIC_SECRET_KEY_GEN reports the same range in bits. */
export const SECRET_MIN_BYTES = 1;
export const SECRET_MAX_BYTES = 512;

function hmacKey(material: KeyMaterial): Buffer {
  const key = secretKey(material, [CKK.GENERIC_SECRET, CKK.AES]);
  if (key.length < SECRET_MIN_BYTES || key.length > SECRET_MAX_BYTES) throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
  return key;
}

function hmacSigner(hash: HashAlgorithm) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    requireNoParameter(mechanism);
    const mac = createHmac(hash.name, hmacKey(material));
    return {
      async update(data) { mac.update(data); },
      async final() { return mac.digest(); },
    };
  };
}

function hmacVerifier(hash: HashAlgorithm) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<Buffer, boolean> => {
    requireNoParameter(mechanism);
    const mac = createHmac(hash.name, hmacKey(material));
    return {
      async update(data) { mac.update(data); },
      async final(signature) {
        if (signature.length !== hash.length) throw new Pkcs11Error(CKR.SIGNATURE_LEN_RANGE);
        return timingSafeEqual(mac.digest(), signature);
      },
    };
  };
}

async function generateGenericSecret(mechanism: Mechanism, request: SecretKeyRequest): Promise<GeneratedSecretKey> {
  requireNoParameter(mechanism);
  const keyType = request.keyType ?? CKK.GENERIC_SECRET;
  if (keyType !== CKK.GENERIC_SECRET) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT);
  const length = request.valueLength;
  if (length === undefined) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE);
  if (!Number.isInteger(length) || length < SECRET_MIN_BYTES || length > SECRET_MAX_BYTES) {
    throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
  }
  const value = await new Promise<Buffer>((resolve, reject) => {
    randomBytes(length, (error, bytes) => (error ? reject(new Pkcs11Error(CKR.FUNCTION_FAILED)) : resolve(bytes)));
  });
  return {
    keyType,
    key: { objectClass: CKO.SECRET_KEY, keyType, der: value },
    attributes: new Map([[CKA.VALUE_LEN, length]]),
  };
}

const hmacs: Array<[number, HashAlgorithm]> = [
  [CKM.SHA_1_HMAC, hashNamed('sha1')], [CKM.SHA224_HMAC, hashNamed('sha224')],
  [CKM.SHA256_HMAC, hashNamed('sha256')], [CKM.SHA384_HMAC, hashNamed('sha384')],
  [CKM.SHA512_HMAC, hashNamed('sha512')],
];

export const hmacEntries: MechanismEntry[] = [
  { type: CKM.GENERIC_SECRET_KEY_GEN, minKeySize: SECRET_MIN_BYTES * 8, maxKeySize: SECRET_MAX_BYTES * 8, generateKey: generateGenericSecret },
  ...hmacs.map(([type, hash]): MechanismEntry => ({
    type, minKeySize: SECRET_MIN_BYTES, maxKeySize: SECRET_MAX_BYTES,
    sign: hmacSigner(hash), verify: hmacVerifier(hash),
  })),
];
