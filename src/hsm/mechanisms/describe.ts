// describeKey: the attributes PKCS#11 derives from a key's value (C_CreateObject, C_UnwrapKey).

import { createCipheriv, createHash } from 'node:crypto';
import { CKA, CKK, CKO, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { DerivedAttributes, KeyMaterial } from './contract.js';
import { ecPrivateAttributes, ecPublicAttributes } from './ec.js';
import { edwardsPrivateAttributes, edwardsPublicAttributes } from './eddsa.js';
import { keyTypeOfObject, parseAsymmetric } from './keys.js';
import { rsaPrivateAttributes, rsaPublicAttributes } from './rsa.js';
import { curveFromNodeName } from './curves.js';
import { isGenericSecret } from './hmac.js';

/**
 * CKA_CHECK_VALUE of a secret key: the first three bytes of a zero block encrypted in ECB with
 * it (AES, DES3), or of the SHA-1 of the value (generic secrets), as PKCS#11 defines them.
 */
export function checkValue(keyType: number, value: Buffer): Buffer {
  if (isGenericSecret(keyType)) return createHash('sha1').update(value).digest().subarray(0, 3);
  const cipher = keyType === CKK.AES ? `aes-${value.length * 8}-ecb` : 'des-ede3';
  const block = createCipheriv(cipher, value, null);
  block.setAutoPadding(false);
  return Buffer.concat([block.update(Buffer.alloc(keyType === CKK.AES ? 16 : 8)), block.final()]).subarray(0, 3);
}

export function describeKey(key: KeyMaterial): DerivedAttributes {
  if (key.objectClass === CKO.SECRET_KEY) {
    const length = key.der.length;
    if (key.keyType === CKK.AES) {
      if (length !== 16 && length !== 24 && length !== 32) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
    } else if (key.keyType === CKK.DES3) {
      if (length !== 24) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
    } else if (isGenericSecret(key.keyType)) {
      if (length === 0) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
    } else {
      throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT);
    }
    return new Map<number, number | Buffer>([[CKA.VALUE_LEN, length], [CKA.CHECK_VALUE, checkValue(key.keyType, key.der)]]);
  }
  if (key.objectClass !== CKO.PUBLIC_KEY && key.objectClass !== CKO.PRIVATE_KEY) return new Map();
  const object = parseAsymmetric(key.der, key.objectClass);
  if (!object) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
  if (keyTypeOfObject(object) !== key.keyType) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT);
  const isPublic = key.objectClass === CKO.PUBLIC_KEY;
  switch (key.keyType) {
    case CKK.RSA:
      return isPublic ? rsaPublicAttributes(object) : rsaPrivateAttributes(object);
    case CKK.EC:
      curveFromNodeName(object.asymmetricKeyDetails?.namedCurve);
      return isPublic ? ecPublicAttributes(object) : ecPrivateAttributes(object);
    default:
      return isPublic ? edwardsPublicAttributes(object) : edwardsPrivateAttributes();
  }
}
