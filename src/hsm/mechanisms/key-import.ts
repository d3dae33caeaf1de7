// C_CreateObject gives a key as PKCS#11 attributes (CKA_MODULUS ..., CKA_EC_PARAMS and
// CKA_EC_POINT or CKA_VALUE); the mechanisms take DER. These build the DER, and fail with the
// CKR_ a bad template deserves.

import { createECDH, createPrivateKey, createPublicKey, ECDH, type JsonWebKey } from 'node:crypto';
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import { bigIntToBytes, bytesToBigInt, curveFromParams, ED25519, type WeierstrassCurve } from './curves.js';
import { ecSubjectPublicKeyInfo, encodeElement, readOctetString } from '../../pkcs11/der.js';

const b64 = (value: Buffer): string => value.toString('base64url');

/** Big-endian integer bytes without leading zeros, as JWK wants them. */
function unsigned(value: Buffer): Buffer {
  const first = value.findIndex((byte) => byte !== 0);
  return first < 0 ? Buffer.alloc(1) : value.subarray(first);
}

function fromJwk(jwk: JsonWebKey, kind: 'public' | 'private'): Buffer {
  try {
    return kind === 'public'
      ? createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'der', type: 'spki' })
      : createPrivateKey({ key: jwk, format: 'jwk' }).export({ format: 'der', type: 'pkcs8' });
  } catch {
    throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
  }
}

export function rsaPublicKeyDer(modulus: Buffer, publicExponent: Buffer): Buffer {
  return fromJwk({ kty: 'RSA', n: b64(unsigned(modulus)), e: b64(unsigned(publicExponent)) }, 'public');
}

export interface RsaPrivateComponents {
  modulus: Buffer; publicExponent: Buffer; privateExponent: Buffer;
  prime1: Buffer; prime2: Buffer; exponent1: Buffer; exponent2: Buffer; coefficient: Buffer;
}

export function rsaPrivateKeyDer(c: RsaPrivateComponents): Buffer {
  return fromJwk({
    kty: 'RSA', n: b64(unsigned(c.modulus)), e: b64(unsigned(c.publicExponent)), d: b64(unsigned(c.privateExponent)),
    p: b64(unsigned(c.prime1)), q: b64(unsigned(c.prime2)), dp: b64(unsigned(c.exponent1)),
    dq: b64(unsigned(c.exponent2)), qi: b64(unsigned(c.coefficient)),
  }, 'private');
}

/** SPKI of an uncompressed point on a named curve, checked by node:crypto (the point on the curve). */
function ecSpki(curve: WeierstrassCurve, uncompressed: Buffer): Buffer {
  const spki = ecSubjectPublicKeyInfo(curve.params, uncompressed);
  try {
    return createPublicKey({ key: spki, format: 'der', type: 'spki' }).export({ format: 'der', type: 'spki' });
  } catch {
    throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
  }
}

/** CKA_EC_POINT (DER OCTET STRING, or the bare point some applications send) to SPKI DER. */
export function ecPublicKeyDer(ecParams: Buffer, ecPoint: Buffer): Buffer {
  const curve = curveFromParams(ecParams);
  if (curve.family === 'edwards') {
    const raw = ecPoint.length === 32 ? ecPoint : readOctetString(ecPoint);
    if (!raw || raw.length !== 32) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
    return fromJwk({ kty: 'OKP', crv: 'Ed25519', x: b64(raw) }, 'public');
  }
  const bare = ecPoint.length === 2 * curve.byteLength + 1 && ecPoint[0] === 0x04 ? ecPoint : readOctetString(ecPoint) ?? ecPoint;
  let uncompressed: Buffer;
  try {
    uncompressed = ECDH.convertKey(bare, curve.nodeName, undefined, undefined, 'uncompressed') as Buffer;
  } catch {
    throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
  }
  return ecSpki(curve, uncompressed);
}

/** CKA_EC_PARAMS + CKA_VALUE (the private scalar, or the Ed25519 seed) to PKCS#8 DER. */
export function ecPrivateKeyDer(ecParams: Buffer, value: Buffer): Buffer {
  const curve = curveFromParams(ecParams);
  if (curve.family === 'edwards') {
    if (value.length !== 32) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
    return ed25519PrivateKeyDer(value);
  }
  if (value.length === 0 || value.length > curve.byteLength) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
  const d = bigIntToBytes(bytesToBigInt(value), curve.byteLength);
  let point: Buffer;
  try {
    const ecdh = createECDH(curve.nodeName);
    ecdh.setPrivateKey(d);
    point = ecdh.getPublicKey();
  } catch {
    throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
  }
  // SEC1 ECPrivateKey: version 1, the scalar, [0] the curve, [1] the public point.
  const sec1 = encodeElement(0x30, Buffer.concat([
    Buffer.from('020101', 'hex'), encodeElement(0x04, d), encodeElement(0xa0, curve.params),
    encodeElement(0xa1, encodeElement(0x03, Buffer.concat([Buffer.from([0]), point]))),
  ]));
  try {
    return createPrivateKey({ key: sec1, format: 'der', type: 'sec1' }).export({ format: 'der', type: 'pkcs8' });
  } catch {
    throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
  }
}

// RFC 8410 PrivateKeyInfo for id-Ed25519, up to the 32-byte seed.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function ed25519PrivateKeyDer(seed: Buffer): Buffer {
  if (seed.length !== 32) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
  return Buffer.concat([ED25519_PKCS8_PREFIX, seed]);
}

export { ED25519 };
