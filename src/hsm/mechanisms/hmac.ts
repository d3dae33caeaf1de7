// HMAC-SHA-1/2 (RFC 2104) over generic secret keys, the HMAC key type of its hash
// (CKK_SHA256_HMAC for CKM_SHA256_HMAC ...), and AES keys, which some applications use for HMAC
// too; the _GENERAL forms give the first 1 to hash-length bytes; and CKM_GENERIC_SECRET_KEY_GEN
// for their keys.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CKA, CKK, CKM, CKO, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';
import type { GeneratedSecretKey, KeyMaterial, SecretKeyRequest, StreamingOperation } from './contract.js';
import { hashNamed, requireNoParameter, type HashAlgorithm } from './digest.js';
import type { MechanismEntry } from './entry.js';
import { macLength } from './cmac.js';
import { secretKey } from './keys.js';

/** Key sizes in bytes for HMAC; CKM_GENERIC_SECRET_KEY_GEN reports the same range in bits. */
export const SECRET_MIN_BYTES = 1;
export const SECRET_MAX_BYTES = 512;

/** The key types of PKCS#11 2.40 made for one HMAC hash each. */
export const HMAC_KEY_TYPES: readonly number[] = [CKK.SHA_1_HMAC, CKK.SHA224_HMAC, CKK.SHA256_HMAC, CKK.SHA384_HMAC, CKK.SHA512_HMAC];

/** A generic secret or an HMAC key: any bytes, of any length. */
export function isGenericSecret(keyType: number): boolean {
  return keyType === CKK.GENERIC_SECRET || HMAC_KEY_TYPES.includes(keyType);
}

interface Hmac {
  hash: HashAlgorithm;
  /** The HMAC key type of this hash; a generic secret or AES key does as well. */
  keyType: number;
  general: boolean;
}

function hmacKey(material: KeyMaterial, keyType: number): Buffer {
  const key = secretKey(material, [CKK.GENERIC_SECRET, CKK.AES, keyType]);
  if (key.length < SECRET_MIN_BYTES || key.length > SECRET_MAX_BYTES) throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
  return key;
}

function hmacSigner({ hash, keyType, general }: Hmac) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    const length = macLength(mechanism, hash.length, general);
    const mac = createHmac(hash.name, hmacKey(material, keyType));
    return {
      async update(data) { mac.update(data); },
      async final() { return mac.digest().subarray(0, length); },
    };
  };
}

function hmacVerifier({ hash, keyType, general }: Hmac) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<Buffer, boolean> => {
    const length = macLength(mechanism, hash.length, general);
    const mac = createHmac(hash.name, hmacKey(material, keyType));
    return {
      async update(data) { mac.update(data); },
      async final(signature) {
        if (signature.length !== length) throw new Pkcs11Error(CKR.SIGNATURE_LEN_RANGE);
        return timingSafeEqual(mac.digest().subarray(0, length), signature);
      },
    };
  };
}

async function generateGenericSecret(mechanism: Mechanism, request: SecretKeyRequest): Promise<GeneratedSecretKey> {
  requireNoParameter(mechanism);
  const keyType = request.keyType ?? CKK.GENERIC_SECRET;
  if (!isGenericSecret(keyType)) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT);
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

const hmacs: Array<[number, number, HashAlgorithm, number]> = [
  [CKM.SHA_1_HMAC, CKM.SHA_1_HMAC_GENERAL, hashNamed('sha1'), CKK.SHA_1_HMAC],
  [CKM.SHA224_HMAC, CKM.SHA224_HMAC_GENERAL, hashNamed('sha224'), CKK.SHA224_HMAC],
  [CKM.SHA256_HMAC, CKM.SHA256_HMAC_GENERAL, hashNamed('sha256'), CKK.SHA256_HMAC],
  [CKM.SHA384_HMAC, CKM.SHA384_HMAC_GENERAL, hashNamed('sha384'), CKK.SHA384_HMAC],
  [CKM.SHA512_HMAC, CKM.SHA512_HMAC_GENERAL, hashNamed('sha512'), CKK.SHA512_HMAC],
];

export const hmacEntries: MechanismEntry[] = [
  { type: CKM.GENERIC_SECRET_KEY_GEN, minKeySize: SECRET_MIN_BYTES * 8, maxKeySize: SECRET_MAX_BYTES * 8, generateKey: generateGenericSecret },
  ...hmacs.flatMap(([type, generalType, hash, keyType]) => [false, true].map((general): MechanismEntry => ({
    type: general ? generalType : type, minKeySize: SECRET_MIN_BYTES, maxKeySize: SECRET_MAX_BYTES,
    sign: hmacSigner({ hash, keyType, general }), verify: hmacVerifier({ hash, keyType, general }),
  }))),
];
