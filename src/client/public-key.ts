// A public key as node:crypto holds it, from a PKCS#11 public key's attributes: its
// CKA_PUBLIC_KEY_INFO when the token gives one, else its components (a module behind the
// passthrough, SoftHSM2 2.6 say, has no CKA_PUBLIC_KEY_INFO).
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { CKA, CKK, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { ecSubjectPublicKeyInfo, encodeElement, readElement, readElements, readOctetString } from '../pkcs11/der.js';
import type { AttributeRead } from './template.js';

/** The attributes `publicKeyOf` reads, in the order it takes them. */
export const PUBLIC_KEY_ATTRIBUTES = [CKA.PUBLIC_KEY_INFO, CKA.KEY_TYPE, CKA.MODULUS, CKA.PUBLIC_EXPONENT, CKA.EC_PARAMS, CKA.EC_POINT] as const;

const ED25519_ALGORITHM = Buffer.from('300506032b6570', 'hex');

function bytes(read: AttributeRead | undefined): Buffer | null {
  return read && Buffer.isBuffer(read.value) && read.value.length > 0 ? read.value : null;
}

/** CKA_EC_POINT is a DER OCTET STRING; some tokens give the bare point. */
function pointOf(ecPoint: Buffer): Buffer {
  return readOctetString(ecPoint) ?? ecPoint;
}

export function publicKeyOf(reads: readonly AttributeRead[]): KeyObject {
  const [info, keyType, modulus, exponent, ecParams, ecPoint] = PUBLIC_KEY_ATTRIBUTES.map((_, i) => reads[i]);
  const spki = bytes(info);
  if (spki) return createPublicKey({ key: spki, format: 'der', type: 'spki' });
  const n = bytes(modulus);
  const e = bytes(exponent);
  const params = bytes(ecParams);
  const point = bytes(ecPoint);
  try {
    if (keyType?.value === CKK.RSA && n && e) {
      return createPublicKey({ key: { kty: 'RSA', n: n.toString('base64url'), e: e.toString('base64url') }, format: 'jwk' });
    }
    if (keyType?.value === CKK.EC && params && point) {
      return createPublicKey({ key: ecSubjectPublicKeyInfo(params, pointOf(point)), format: 'der', type: 'spki' });
    }
    if (keyType?.value === CKK.EC_EDWARDS && point && pointOf(point).length === 32) {
      const spkiOfEd25519 = encodeElement(0x30, Buffer.concat([ED25519_ALGORITHM, encodeElement(0x03, Buffer.concat([Buffer.from([0]), pointOf(point)]))]));
      return createPublicKey({ key: spkiOfEd25519, format: 'der', type: 'spki' });
    }
  } catch (error) {
    throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, `the token's public key components do not make a key: ${(error as Error).message}`);
  }
  throw new Pkcs11Error(CKR.ATTRIBUTE_TYPE_INVALID, 'neither CKA_PUBLIC_KEY_INFO nor the components of an RSA, EC or Ed25519 public key');
}

/**
 * The key identifier of RFC 5280 4.2.1.2 (method 1): SHA-1 of the subjectPublicKey bits, which is
 * what `openssl req`/`x509` put in a certificate's subjectKeyIdentifier by default. As a key's
 * CKA_ID it pairs the private key, the public key and the certificate the way OpenSSL's pkcs11
 * engine, p11tool and NSS pair them.
 */
export function keyIdOf(key: KeyObject): Buffer {
  const spki = readElement(key.export({ format: 'der', type: 'spki' }));
  const bits = spki && readElements(spki.value)?.[1];
  if (!bits || bits.tag !== 0x03 || bits.value.length < 2) throw new Error('not a SubjectPublicKeyInfo');
  return createHash('sha1').update(bits.value.subarray(1)).digest();
}
