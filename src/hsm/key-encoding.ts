// Between PKCS#11 key components (CKA_MODULUS, CKA_EC_POINT, CKA_VALUE ...) and the DER forms
// the mechanisms take (SPKI, PKCS#8): used by C_CreateObject for imported keys and by
// C_GetAttributeValue for the components of a non-sensitive private key.

import { createPrivateKey, createPublicKey, type JsonWebKey } from 'node:crypto';
import { CKA, CKK, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { AttributeValue } from '../pkcs11/attributes.js';
import { WEIERSTRASS_CURVES } from './mechanisms/curves.js';
import { ecSubjectPublicKeyInfo } from '../pkcs11/der.js';

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
/** CKA_EC_PARAMS forms of Ed25519: the OID 1.3.101.112, or PrintableString "edwards25519". */
const ED25519_PARAMS = [Buffer.from('06032b6570', 'hex'), Buffer.from('130c656477617264733235353139', 'hex')];

const CURVES = new Map<string, { name: string; bytes: number }>(
  WEIERSTRASS_CURVES.map((curve) => [curve.params.toString('hex'), { name: curve.name, bytes: curve.byteLength }]),
);

function invalid(detail: string): Pkcs11Error {
  return new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, detail);
}

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

/** The content of a DER OCTET STRING, or the input itself when it is not one (raw points are accepted). */
function unwrapOctetString(value: Buffer): Buffer {
  if (value[0] !== 0x04 || value.length < 2) return value;
  let at = 1;
  let length = value[at++]!;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = (length << 8) | value[at++]!;
  }
  return at + length === value.length ? value.subarray(at) : value;
}

const b64u = (b: Buffer) => b.toString('base64url');
const fromB64u = (s: string | undefined) => Buffer.from(s ?? '', 'base64url');

function bytesOf(attrs: ReadonlyMap<number, AttributeValue>, type: number): Buffer {
  const v = attrs.get(type);
  if (!Buffer.isBuffer(v)) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, `missing 0x${type.toString(16)}`);
  return v;
}

function stripLeadingZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

function isEd25519(params: Buffer): boolean {
  return ED25519_PARAMS.some((p) => p.equals(params));
}

/** SPKI DER of a public key given by its components. */
export function publicKeyDer(keyType: number, attrs: ReadonlyMap<number, AttributeValue>): Buffer {
  try {
    switch (keyType) {
      case CKK.RSA: {
        const jwk: JsonWebKey = { kty: 'RSA', n: b64u(stripLeadingZeros(bytesOf(attrs, CKA.MODULUS))), e: b64u(stripLeadingZeros(bytesOf(attrs, CKA.PUBLIC_EXPONENT))) };
        return createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' });
      }
      case CKK.EC: {
        const params = bytesOf(attrs, CKA.EC_PARAMS);
        if (!CURVES.has(params.toString('hex'))) throw new Pkcs11Error(CKR.CURVE_NOT_SUPPORTED);
        const point = unwrapOctetString(bytesOf(attrs, CKA.EC_POINT));
        const spki = ecSubjectPublicKeyInfo(params, point);
        createPublicKey({ key: spki, format: 'der', type: 'spki' });
        return spki;
      }
      case CKK.EC_EDWARDS: {
        if (!isEd25519(bytesOf(attrs, CKA.EC_PARAMS))) throw new Pkcs11Error(CKR.CURVE_NOT_SUPPORTED);
        const point = unwrapOctetString(bytesOf(attrs, CKA.EC_POINT));
        if (point.length !== 32) throw invalid('Ed25519 point must be 32 bytes');
        return Buffer.concat([ED25519_SPKI_PREFIX, point]);
      }
      default:
        throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'key type not supported for import');
    }
  } catch (error) {
    if (error instanceof Pkcs11Error) throw error;
    throw invalid(`public key components do not form a key: ${(error as Error).message}`);
  }
}

/** PKCS#8 DER of a private key given by its components. */
export function privateKeyDer(keyType: number, attrs: ReadonlyMap<number, AttributeValue>): Buffer {
  try {
    switch (keyType) {
      case CKK.RSA: {
        const c = (t: number) => b64u(stripLeadingZeros(bytesOf(attrs, t)));
        const jwk: JsonWebKey = {
          kty: 'RSA', n: c(CKA.MODULUS), e: c(CKA.PUBLIC_EXPONENT), d: c(CKA.PRIVATE_EXPONENT), p: c(CKA.PRIME_1),
          q: c(CKA.PRIME_2), dp: c(CKA.EXPONENT_1), dq: c(CKA.EXPONENT_2), qi: c(CKA.COEFFICIENT),
        };
        return createPrivateKey({ key: jwk, format: 'jwk' }).export({ type: 'pkcs8', format: 'der' });
      }
      case CKK.EC: {
        const params = bytesOf(attrs, CKA.EC_PARAMS);
        const curve = CURVES.get(params.toString('hex'));
        if (!curve) throw new Pkcs11Error(CKR.CURVE_NOT_SUPPORTED);
        const d = stripLeadingZeros(bytesOf(attrs, CKA.VALUE));
        if (d.length > curve.bytes) throw invalid('EC private value too long');
        const padded = Buffer.concat([Buffer.alloc(curve.bytes - d.length), d]);
        const sec1 = der(0x30, Buffer.from('020101', 'hex'), der(0x04, padded), der(0xa0, params));
        return createPrivateKey({ key: sec1, format: 'der', type: 'sec1' }).export({ type: 'pkcs8', format: 'der' });
      }
      case CKK.EC_EDWARDS: {
        if (!isEd25519(bytesOf(attrs, CKA.EC_PARAMS))) throw new Pkcs11Error(CKR.CURVE_NOT_SUPPORTED);
        const seed = bytesOf(attrs, CKA.VALUE);
        if (seed.length !== 32) throw invalid('Ed25519 private value must be 32 bytes');
        return Buffer.concat([ED25519_PKCS8_PREFIX, seed]);
      }
      default:
        throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'key type not supported for import');
    }
  } catch (error) {
    if (error instanceof Pkcs11Error) throw error;
    throw invalid(`private key components do not form a key: ${(error as Error).message}`);
  }
}

/** Private components present in a template, which are part of the key material, not attributes. */
export const PRIVATE_COMPONENTS: readonly number[] = [
  CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2, CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT, CKA.VALUE,
];

/** The private components of a PKCS#8 key, for reading a non-sensitive, extractable private key. */
export function privateComponents(keyType: number, pkcs8: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  const key = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
  const jwk = key.export({ format: 'jwk' });
  if (keyType === CKK.RSA) {
    out.set(CKA.PRIVATE_EXPONENT, fromB64u(jwk.d));
    out.set(CKA.PRIME_1, fromB64u(jwk.p));
    out.set(CKA.PRIME_2, fromB64u(jwk.q));
    out.set(CKA.EXPONENT_1, fromB64u(jwk.dp));
    out.set(CKA.EXPONENT_2, fromB64u(jwk.dq));
    out.set(CKA.COEFFICIENT, fromB64u(jwk.qi));
  } else if (keyType === CKK.EC || keyType === CKK.EC_EDWARDS) {
    out.set(CKA.VALUE, fromB64u(jwk.d));
  }
  return out;
}

/** CKA_PUBLIC_KEY_INFO of a private key: the SPKI of its public half. */
export function publicKeyInfoOf(pkcs8: Buffer): Buffer {
  return createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });
}
