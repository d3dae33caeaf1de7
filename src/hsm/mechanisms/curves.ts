// The curves the software HSM offers, named as PKCS#11 sees them (CKA_EC_PARAMS bytes) and as
// node:crypto does, with their short Weierstrass constants: the NIST prime curves P-224 to P-521,
// secp256k1 and the brainpool r1 curves (constants as `openssl ecparam -param_enc explicit`
// prints them). Keys of every one travel as DER (SPKI, SEC1, PKCS#8): node:crypto's JWK knows
// only some of them.

import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import { readElement } from '../../pkcs11/der.js';

export interface WeierstrassCurve {
  family: 'weierstrass';
  name: 'P-224' | 'P-256' | 'P-384' | 'P-521' | 'secp256k1' | 'brainpoolP256r1' | 'brainpoolP384r1' | 'brainpoolP512r1';
  /** node:crypto / OpenSSL name */
  nodeName: string;
  bits: number;
  /** Field element and scalar width in bytes (66 for P-521). */
  byteLength: number;
  /** CKA_EC_PARAMS: DER OBJECT IDENTIFIER of the named curve */
  params: Buffer;
  p: bigint;
  n: bigint;
  b: bigint;
}

export interface EdwardsCurve {
  family: 'edwards';
  name: 'Ed25519';
  nodeName: 'ed25519';
  bits: 255;
  /** CKA_EC_PARAMS we report: PrintableString "edwards25519" (PKCS#11 3.0) */
  params: Buffer;
}

export type Curve = WeierstrassCurve | EdwardsCurve;

const hex = (value: string): Buffer => Buffer.from(value, 'hex');
const big = (value: string): bigint => BigInt(`0x${value}`);

export const P224: WeierstrassCurve = {
  family: 'weierstrass', name: 'P-224', nodeName: 'secp224r1', bits: 224, byteLength: 28,
  params: hex('06052b81040021'),
  p: big('ffffffffffffffffffffffffffffffff000000000000000000000001'),
  n: big('ffffffffffffffffffffffffffff16a2e0b8f03e13dd29455c5c2a3d'),
  b: big('b4050a850c04b3abf54132565044b0b7d7bfd8ba270b39432355ffb4'),
};

export const P256: WeierstrassCurve = {
  family: 'weierstrass', name: 'P-256', nodeName: 'prime256v1', bits: 256, byteLength: 32,
  params: hex('06082a8648ce3d030107'),
  p: big('ffffffff00000001000000000000000000000000ffffffffffffffffffffffff'),
  n: big('ffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551'),
  b: big('5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604b'),
};

export const P384: WeierstrassCurve = {
  family: 'weierstrass', name: 'P-384', nodeName: 'secp384r1', bits: 384, byteLength: 48,
  params: hex('06052b81040022'),
  p: big('fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffeffffffff0000000000000000ffffffff'),
  n: big('ffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973'),
  b: big('b3312fa7e23ee7e4988e056be3f82d19181d9c6efe8141120314088f5013875ac656398d8a2ed19d2a85c8edd3ec2aef'),
};

export const P521: WeierstrassCurve = {
  family: 'weierstrass', name: 'P-521', nodeName: 'secp521r1', bits: 521, byteLength: 66,
  params: hex('06052b81040023'),
  p: (1n << 521n) - 1n,
  n: big('01fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409'),
  b: big('0051953eb9618e1c9a1f929a21a0b68540eea2da725b99b315f3b8b489918ef109e156193951ec7e937b1652c0bd3bb1bf073573df883d2c34f1ef451fd46b503f00'),
};

export const SECP256K1: WeierstrassCurve = {
  family: 'weierstrass', name: 'secp256k1', nodeName: 'secp256k1', bits: 256, byteLength: 32,
  params: hex('06052b8104000a'),
  p: big('fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f'),
  n: big('fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141'),
  b: 7n,
};

export const BRAINPOOL_P256R1: WeierstrassCurve = {
  family: 'weierstrass', name: 'brainpoolP256r1', nodeName: 'brainpoolP256r1', bits: 256, byteLength: 32,
  params: hex('06092b2403030208010107'),
  p: big('a9fb57dba1eea9bc3e660a909d838d726e3bf623d52620282013481d1f6e5377'),
  n: big('a9fb57dba1eea9bc3e660a909d838d718c397aa3b561a6f7901e0e82974856a7'),
  b: big('26dc5c6ce94a4b44f330b5d9bbd77cbf958416295cf7e1ce6bccdc18ff8c07b6'),
};

export const BRAINPOOL_P384R1: WeierstrassCurve = {
  family: 'weierstrass', name: 'brainpoolP384r1', nodeName: 'brainpoolP384r1', bits: 384, byteLength: 48,
  params: hex('06092b240303020801010b'),
  p: big('8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b412b1da197fb71123acd3a729901d1a71874700133107ec53'),
  n: big('8cb91e82a3386d280f5d6f7e50e641df152f7109ed5456b31f166e6cac0425a7cf3ab6af6b7fc3103b883202e9046565'),
  b: big('04a8c7dd22ce28268b39b55416f0447c2fb77de107dcd2a62e880ea53eeb62d57cb4390295dbc9943ab78696fa504c11'),
};

export const BRAINPOOL_P512R1: WeierstrassCurve = {
  family: 'weierstrass', name: 'brainpoolP512r1', nodeName: 'brainpoolP512r1', bits: 512, byteLength: 64,
  params: hex('06092b240303020801010d'),
  p: big('aadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca703308717d4d9b009bc66842aecda12ae6a380e62881ff2f2d82c68528aa6056583a48f3'),
  n: big('aadd9db8dbe9c48b3fd4e6ae33c9fc07cb308db3b3c9d20ed6639cca70330870553e5c414ca92619418661197fac10471db1d381085ddaddb58796829ca90069'),
  b: big('3df91610a83441caea9863bc2ded5d5aa8253aa10a2ef1c98b9ac8b57f1117a72bf2c7b9e7c1ac4d77fc94cadc083e67984050b75ebae5dd2809bd638016f723'),
};

/** Every Weierstrass curve offered, smallest first. */
export const WEIERSTRASS_CURVES: readonly WeierstrassCurve[] = [
  P224, P256, P384, P521, SECP256K1, BRAINPOOL_P256R1, BRAINPOOL_P384R1, BRAINPOOL_P512R1,
];

export const ED25519: EdwardsCurve = {
  family: 'edwards', name: 'Ed25519', nodeName: 'ed25519', bits: 255,
  params: Buffer.concat([hex('130c'), Buffer.from('edwards25519', 'ascii')]),
};

/** Every accepted spelling of CKA_EC_PARAMS, hex-keyed. */
const byParams = new Map<string, Curve>([
  ...WEIERSTRASS_CURVES.map((curve): [string, Curve] => [curve.params.toString('hex'), curve]),
  [ED25519.params.toString('hex'), ED25519],
  ['06032b6570', ED25519], // id-Ed25519, RFC 8410
  ['06092b06010401da470f01', ED25519], // 1.3.6.1.4.1.11591.15.1, the GnuPG OID some tools send
]);

const byNodeName = new Map<string, WeierstrassCurve>([
  ...WEIERSTRASS_CURVES.map((curve): [string, WeierstrassCurve] => [curve.nodeName, curve]),
  ['P-256', P256], ['P-384', P384], ['P-521', P521],
]);

const TAG_OID = 0x06;
const TAG_PRINTABLE_STRING = 0x13;

/**
 * CKA_EC_PARAMS to a curve. Malformed bytes are CKR_DOMAIN_PARAMS_INVALID; a well-formed
 * curve name or OID we do not offer (brainpool t1, secp192r1, explicit parameters) is
 * CKR_CURVE_NOT_SUPPORTED.
 */
export function curveFromParams(params: Buffer): Curve {
  const curve = byParams.get(params.toString('hex'));
  if (curve) return curve;
  const element = readElement(params);
  if (!element || element.value.length === 0) throw new Pkcs11Error(CKR.DOMAIN_PARAMS_INVALID);
  if (element.tag === TAG_OID || element.tag === TAG_PRINTABLE_STRING || element.tag === 0x30) {
    throw new Pkcs11Error(CKR.CURVE_NOT_SUPPORTED);
  }
  throw new Pkcs11Error(CKR.DOMAIN_PARAMS_INVALID);
}

/** The curve of a node KeyObject's asymmetricKeyDetails.namedCurve. */
export function curveFromNodeName(name: string | undefined): WeierstrassCurve {
  const curve = name === undefined ? undefined : byNodeName.get(name);
  if (!curve) throw new Pkcs11Error(CKR.CURVE_NOT_SUPPORTED);
  return curve;
}

export function bytesToBigInt(bytes: Buffer): bigint {
  return bytes.length === 0 ? 0n : BigInt(`0x${bytes.toString('hex')}`);
}

export function bigIntToBytes(value: bigint, length: number): Buffer {
  const hexValue = value.toString(16);
  if (hexValue.length > length * 2) throw new RangeError('integer too large');
  return Buffer.from(hexValue.padStart(length * 2, '0'), 'hex');
}
