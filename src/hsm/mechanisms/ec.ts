// EC on the Weierstrass curves of curves.ts: key-pair generation, ECDSA (raw over a hash, and hash-then-sign)
// with PKCS#11's fixed-width r||s signatures, and ECDH1 derivation (CKD_NULL, X9.63 SHA KDFs).
// A digest the caller hashed is signed natively (native-ecdsa.ts, OpenSSL's EVP_PKEY_sign).

import { createECDH, createHash, createPublicKey, generateKeyPair, sign, verify, type KeyObject } from 'node:crypto';
import { CKA, CKD, CKF, CKK, CKM, CKO, CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Ecdh1DeriveParams, Mechanism } from '../../pkcs11/mechanism.js';
import type {
  DerivedAttributes, GeneratedKeyPair, KeyMaterial, KeyPairRequest, StreamingOperation,
} from './contract.js';
import { bigIntToBytes, curveFromNodeName, curveFromParams, type WeierstrassCurve } from './curves.js';
import { octetString, readElement, readOctetString } from '../../pkcs11/der.js';
import { hashNamed, hashOfKdf, requireNoParameter, type HashAlgorithm } from './digest.js';
import type { MechanismEntry } from './entry.js';
import { SECRET_MAX_BYTES } from './hmac.js';
import { asymmetricKey, generatedKeyPair } from './keys.js';
import { HashedMessage, WholeMessage } from './message.js';
import { signDigest, verifyDigest } from './native-ecdsa.js';

interface EcKey {
  object: KeyObject;
  curve: WeierstrassCurve;
}

function ecKey(key: KeyMaterial, objectClass: number): EcKey {
  const object = asymmetricKey(key, CKK.EC, objectClass);
  return { object, curve: curveFromNodeName(object.asymmetricKeyDetails?.namedCurve) };
}

const privateScalars = new WeakMap<KeyObject, bigint>();
const publicPoints = new WeakMap<KeyObject, Buffer>();

/** The private scalar, read from the key's SEC1 DER (node:crypto's JWK knows only some curves). */
function privateScalar(key: EcKey): bigint {
  let d = privateScalars.get(key.object);
  if (d === undefined) {
    // ECPrivateKey ::= SEQUENCE { version INTEGER (1), privateKey OCTET STRING, ... }
    const body = readElement(key.object.export({ format: 'der', type: 'sec1' }))?.value;
    if (!body || body[0] !== 0x02 || body[1] !== 0x01 || body[3] !== 0x04) throw new Pkcs11Error(CKR.GENERAL_ERROR, 'unreadable EC private key');
    d = BigInt(`0x${body.subarray(5, 5 + body[4]!).toString('hex')}`);
    privateScalars.set(key.object, d);
  }
  return d;
}

/** The uncompressed point 0x04 || X || Y of a public or private key: the end of its SPKI. */
export function ecPoint(object: KeyObject, curve: WeierstrassCurve): Buffer {
  let point = publicPoints.get(object);
  if (!point) {
    const spki = (object.type === 'public' ? object : createPublicKey(object)).export({ format: 'der', type: 'spki' });
    point = Buffer.from(spki.subarray(spki.length - (2 * curve.byteLength + 1)));
    if (point[0] !== 0x04) throw new Pkcs11Error(CKR.GENERAL_ERROR, 'unreadable EC public key');
    publicPoints.set(object, point);
  }
  return point;
}

// --- attributes and generation ------------------------------------------------------------

export function ecPublicAttributes(object: KeyObject): DerivedAttributes {
  const curve = curveFromNodeName(object.asymmetricKeyDetails?.namedCurve);
  return new Map<number, number | boolean | Buffer>([
    [CKA.EC_PARAMS, curve.params], [CKA.EC_POINT, octetString(ecPoint(object, curve))],
  ]);
}

export function ecPrivateAttributes(object: KeyObject): DerivedAttributes {
  const curve = curveFromNodeName(object.asymmetricKeyDetails?.namedCurve);
  return new Map<number, number | boolean | Buffer>([[CKA.EC_PARAMS, curve.params]]);
}

async function generateEcKeyPair(mechanism: Mechanism, request: KeyPairRequest): Promise<GeneratedKeyPair> {
  requireNoParameter(mechanism);
  if (!request.ecParams) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE);
  const curve = curveFromParams(request.ecParams);
  if (curve.family !== 'weierstrass') throw new Pkcs11Error(CKR.CURVE_NOT_SUPPORTED);
  return generatedKeyPair(CKK.EC, (done) => generateKeyPair('ec', { namedCurve: curve.nodeName }, done), (publicKey, privateKey) => ({
    publicAttributes: ecPublicAttributes(publicKey),
    privateAttributes: ecPrivateAttributes(privateKey),
  }));
}

// --- ECDSA ----------------------------------------------------------------------------------

const P1363 = 'ieee-p1363' as const;

/**
 * Messages up to this size are hashed here and their digest signed natively on the calling
 * thread (a P-256 signature costs less than the thread-pool hop of node's asynchronous sign);
 * larger ones go to node's sign on the thread pool, whole, so the hashing leaves the event loop.
 */
const INLINE_HASH_LIMIT = 16 * 1024;

function signMessage(hash: HashAlgorithm, message: Buffer, key: EcKey): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    sign(hash.name, message, { key: key.object, dsaEncoding: P1363 }, (error, signature) => {
      if (error) reject(new Pkcs11Error(CKR.FUNCTION_FAILED, error.message));
      else resolve(signature);
    });
  });
}

function verifyMessage(hash: HashAlgorithm, message: Buffer, key: EcKey, signature: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    verify(hash.name, message, { key: key.object, dsaEncoding: P1363 }, signature, (error, valid) => resolve(!error && valid));
  });
}

function checkSignatureLength(key: EcKey, signature: Buffer): void {
  if (signature.length !== 2 * key.curve.byteLength) throw new Pkcs11Error(CKR.SIGNATURE_LEN_RANGE);
}

/** CKM_ECDSA: the input is already a hash (any length; it is truncated to the order's size). */
function ecdsaSigner(mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> {
  requireNoParameter(mechanism);
  const key = ecKey(material, CKO.PRIVATE_KEY);
  const input = new WholeMessage(1024);
  return {
    dispose() { input.release(); },
    async update(data) { input.add(data); },
    async final() { return signDigest(key.object, input.take()); },
  };
}

function ecdsaVerifier(mechanism: Mechanism, material: KeyMaterial): StreamingOperation<Buffer, boolean> {
  requireNoParameter(mechanism);
  const key = ecKey(material, CKO.PUBLIC_KEY);
  const input = new WholeMessage(1024);
  return {
    dispose() { input.release(); },
    async update(data) { input.add(data); },
    async final(signature) {
      checkSignatureLength(key, signature);
      return verifyDigest(key.object, input.take(), signature);
    },
  };
}

function hashedEcdsaSigner(hash: HashAlgorithm) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    requireNoParameter(mechanism);
    const key = ecKey(material, CKO.PRIVATE_KEY);
    const input = new HashedMessage(hash);
    return {
      dispose() { input.release(); },
      async update(data) { input.add(data); },
      async final() {
        const message = input.message();
        if (message && message.length > INLINE_HASH_LIMIT) return signMessage(hash, message, key);
        return signDigest(key.object, message ? createHash(hash.name).update(message).digest() : input.digest());
      },
    };
  };
}

function hashedEcdsaVerifier(hash: HashAlgorithm) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<Buffer, boolean> => {
    requireNoParameter(mechanism);
    const key = ecKey(material, CKO.PUBLIC_KEY);
    const input = new HashedMessage(hash);
    return {
      dispose() { input.release(); },
      async update(data) { input.add(data); },
      async final(signature) {
        checkSignatureLength(key, signature);
        const message = input.message();
        if (message && message.length > INLINE_HASH_LIMIT) return verifyMessage(hash, message, key, signature);
        return verifyDigest(key.object, message ? createHash(hash.name).update(message).digest() : input.digest(), signature);
      },
    };
  };
}

// --- ECDH -----------------------------------------------------------------------------------

/** X9.63 KDF (SEC 1, 3.6.1): Hash(Z || counter || sharedInfo) blocks. */
function x963Kdf(hash: HashAlgorithm, secret: Buffer, sharedInfo: Buffer | null, length: number): Buffer {
  const blocks: Buffer[] = [];
  const counter = Buffer.alloc(4);
  for (let produced = 0, i = 1; produced < length; produced += hash.length, i++) {
    counter.writeUInt32BE(i);
    const block = createHash(hash.name).update(secret).update(counter);
    if (sharedInfo) block.update(sharedInfo);
    blocks.push(block.digest());
  }
  return Buffer.concat(blocks).subarray(0, length);
}

/** The peer's point: raw (0x04 || X || Y, or compressed), or wrapped in a DER OCTET STRING. */
function peerPoint(curve: WeierstrassCurve, publicData: Buffer): Buffer {
  const first = publicData[0];
  if (publicData.length === 2 * curve.byteLength + 1 && first === 0x04) return publicData;
  if (publicData.length === curve.byteLength + 1 && (first === 0x02 || first === 0x03)) return publicData;
  return readOctetString(publicData) ?? publicData;
}

function derivedLength(keyType: number, valueLength: number, available: number | null): number {
  if (keyType === CKK.AES) {
    const length = valueLength || (available ?? 0);
    if (length !== 16 && length !== 24 && length !== 32) {
      throw new Pkcs11Error(valueLength ? CKR.KEY_SIZE_RANGE : CKR.TEMPLATE_INCOMPLETE);
    }
    return length;
  }
  if (keyType !== CKK.GENERIC_SECRET) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT);
  // The bound of generic secrets everywhere else; the KDF would otherwise run (and hold the
  // output) for whatever length a client names.
  if (!Number.isInteger(valueLength) || valueLength < 0 || valueLength > SECRET_MAX_BYTES) throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
  return valueLength || (available ?? 0);
}

async function deriveEcdh(mechanism: Mechanism, baseKey: KeyMaterial, keyType: number, valueLength: number): Promise<KeyMaterial> {
  const parameter = mechanism.parameter;
  if (!parameter || parameter.kind !== 'ecdh1') throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  const params: Ecdh1DeriveParams = parameter;
  const kdfHash = hashOfKdf(params.kdf);
  if (params.kdf !== CKD.NULL && !kdfHash) throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  if (params.kdf === CKD.NULL && params.sharedData && params.sharedData.length > 0) {
    throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  }
  const key = ecKey(baseKey, CKO.PRIVATE_KEY);
  const ecdh = createECDH(key.curve.nodeName);
  ecdh.setPrivateKey(bigIntToBytes(privateScalar(key), key.curve.byteLength));
  let secret: Buffer;
  try {
    secret = ecdh.computeSecret(peerPoint(key.curve, params.publicData));
  } catch {
    throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  }
  let value: Buffer;
  if (kdfHash) {
    const length = derivedLength(keyType, valueLength, kdfHash.length);
    value = x963Kdf(kdfHash, secret, params.sharedData, length);
  } else {
    const length = derivedLength(keyType, valueLength, secret.length);
    if (length > secret.length) throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
    // Truncation keeps the trailing bytes, as SoftHSM2 does.
    value = Buffer.from(secret.subarray(secret.length - length));
  }
  secret.fill(0);
  return { objectClass: CKO.SECRET_KEY, keyType, der: value };
}

// --- registry entries -----------------------------------------------------------------------

const EC_CAPABILITIES = CKF.EC_F_P | CKF.EC_NAMED_CURVE | CKF.EC_UNCOMPRESSED;
const use = { minKeySize: 224, maxKeySize: 521, extraFlags: EC_CAPABILITIES };

const hashedEcdsa: Array<[number, HashAlgorithm]> = [
  [CKM.ECDSA_SHA1, hashNamed('sha1')], [CKM.ECDSA_SHA224, hashNamed('sha224')],
  [CKM.ECDSA_SHA256, hashNamed('sha256')], [CKM.ECDSA_SHA384, hashNamed('sha384')],
  [CKM.ECDSA_SHA512, hashNamed('sha512')],
];

export const ecEntries: MechanismEntry[] = [
  { type: CKM.EC_KEY_PAIR_GEN, ...use, generateKeyPair: generateEcKeyPair },
  { type: CKM.ECDSA, ...use, singlePart: true, sign: ecdsaSigner, verify: ecdsaVerifier },
  ...hashedEcdsa.map(([type, hash]): MechanismEntry => ({
    type, ...use, sign: hashedEcdsaSigner(hash), verify: hashedEcdsaVerifier(hash),
  })),
  // The NIST prime curves have cofactor 1, so cofactor ECDH is plain ECDH.
  { type: CKM.ECDH1_DERIVE, ...use, derive: deriveEcdh },
  { type: CKM.ECDH1_COFACTOR_DERIVE, ...use, derive: deriveEcdh },
];
