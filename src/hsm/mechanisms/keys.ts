// KeyMaterial (DER or raw bytes) to node:crypto KeyObjects, with the checks every mechanism
// shares: the object class and key type fit, and the DER really holds that kind of key.
// Parsing PKCS#8 costs more than an Ed25519 signature, so KeyObjects are kept per Buffer:
// a token model that hands over the same Buffer for the same key parses it once.

import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { CKK, CKO, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { GeneratedKeyPair, KeyMaterial } from './contract.js';

const keyObjects = new WeakMap<Buffer, KeyObject>();

const nodeTypeOf = new Map<number, string>([
  [CKK.RSA, 'rsa'], [CKK.EC, 'ec'], [CKK.EC_EDWARDS, 'ed25519'],
]);

/** The parsed key, or null when the DER is not a key of that class. */
export function parseAsymmetric(der: Buffer, objectClass: number): KeyObject | null {
  try {
    return objectClass === CKO.PRIVATE_KEY
      ? createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
      : createPublicKey({ key: der, format: 'der', type: 'spki' });
  } catch {
    return null;
  }
}

/** The CKK_ of a parsed key, or undefined for kinds the HSM does not offer (DSA, X25519 ...). */
export function keyTypeOfObject(key: KeyObject): number | undefined {
  switch (key.asymmetricKeyType) {
    case 'rsa': return CKK.RSA;
    case 'ec': return CKK.EC;
    case 'ed25519': return CKK.EC_EDWARDS;
    default: return undefined;
  }
}

/**
 * The KeyObject for an operation that needs a key of `keyType` and class `objectClass`.
 * A key of another class or type is CKR_KEY_TYPE_INCONSISTENT, as is DER that does not match
 * the type it claims.
 */
export function asymmetricKey(key: KeyMaterial, keyType: number, objectClass: number): KeyObject {
  if (key.keyType !== keyType || key.objectClass !== objectClass) {
    throw new Pkcs11Error(CKR.KEY_TYPE_INCONSISTENT);
  }
  let object = keyObjects.get(key.der);
  if (!object) {
    const parsed = parseAsymmetric(key.der, objectClass);
    if (!parsed) throw new Pkcs11Error(CKR.KEY_TYPE_INCONSISTENT);
    object = parsed;
    keyObjects.set(key.der, object);
  }
  // Checked on every use: the same bytes may arrive labelled with another type.
  if (object.type !== (objectClass === CKO.PRIVATE_KEY ? 'private' : 'public') || object.asymmetricKeyType !== nodeTypeOf.get(keyType)) {
    throw new Pkcs11Error(CKR.KEY_TYPE_INCONSISTENT);
  }
  return object;
}

/** The raw value of a secret key whose type is one of `keyTypes`. */
export function secretKey(key: KeyMaterial, keyTypes: readonly number[]): Buffer {
  if (key.objectClass !== CKO.SECRET_KEY || !keyTypes.includes(key.keyType)) {
    throw new Pkcs11Error(CKR.KEY_TYPE_INCONSISTENT);
  }
  return key.der;
}

/** An AES key's raw value, CKR_KEY_SIZE_RANGE unless 16, 24 or 32 bytes. */
export function aesKey(key: KeyMaterial): Buffer {
  const value = secretKey(key, [CKK.AES]);
  if (value.length !== 16 && value.length !== 24 && value.length !== 32) {
    throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
  }
  return value;
}

export function base64url(value: string | undefined): Buffer {
  return Buffer.from(value ?? '', 'base64url');
}

/**
 * A key pair from node:crypto, off the event loop, as the contract returns it: SPKI and PKCS#8
 * DER with the attributes the caller derives from the KeyObjects.
 */
export async function generatedKeyPair(
  keyType: number,
  generate: (done: (error: Error | null, publicKey: KeyObject, privateKey: KeyObject) => void) => void,
  attributes: (publicKey: KeyObject, privateKey: KeyObject) => Pick<GeneratedKeyPair, 'publicAttributes' | 'privateAttributes'>,
): Promise<GeneratedKeyPair> {
  const { publicKey, privateKey } = await new Promise<{ publicKey: KeyObject; privateKey: KeyObject }>((resolve, reject) => {
    generate((error, publicKey, privateKey) => {
      if (error) reject(new Pkcs11Error(CKR.FUNCTION_FAILED, error.message));
      else resolve({ publicKey, privateKey });
    });
  });
  return {
    keyType,
    publicKey: { objectClass: CKO.PUBLIC_KEY, keyType, der: publicKey.export({ format: 'der', type: 'spki' }) },
    privateKey: { objectClass: CKO.PRIVATE_KEY, keyType, der: privateKey.export({ format: 'der', type: 'pkcs8' }) },
    ...attributes(publicKey, privateKey),
  };
}
