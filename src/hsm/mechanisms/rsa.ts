// RSA: key-pair generation, PKCS#1 v1.5 / PSS / raw X.509 signatures, PKCS#1 v1.5 / OAEP / raw
// encryption. Hash-then-sign runs as node:crypto's asynchronous one-shot sign; mechanisms over
// a precomputed input go through rsa-private.ts (worker threads).

import {
  constants, generateKeyPair, publicDecrypt, publicEncrypt, sign, verify, type KeyObject,
} from 'node:crypto';
import { CKA, CKK, CKM, CKO, CKR, CKZ, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Mechanism, RsaPkcsOaepParams, RsaPkcsPssParams } from '../../pkcs11/mechanism.js';
import type {
  DerivedAttributes, GeneratedKeyPair, KeyMaterial, KeyPairRequest, StreamingOperation,
} from './contract.js';
import { hashNamed, hashOfMgf, hashOfParameter, requireNoParameter, type HashAlgorithm } from './digest.js';
import type { MechanismEntry } from './entry.js';
import { asymmetricKey, base64url, generatedKeyPair } from './keys.js';
import { HashedMessage, WholeMessage } from './message.js';
import { maxPssSalt, oaepDecode, oaepEncode, pkcs1v15Unpad, pssEncode, pssVerify } from './rsa-padding.js';
import { isHeavyRsa, rsaPrivate, RsaWorkerFailure } from './rsa-private.js';

/**
 * What the mechanisms can do; a partition's policy (src/hsm/policy.ts) asks for more: 2048 bits
 * generated and 1024 used unless its legacy RSA sizes are on.
 */
export const RSA_GENERATE_MIN_BITS = 1024;
export const RSA_GENERATE_MAX_BITS = 4096;
/** Imported keys may be smaller or larger than what we generate. */
const RSA_USE_MIN_BITS = 512;
const RSA_USE_MAX_BITS = 16384;

interface RsaKey {
  object: KeyObject;
  bits: number;
  /** modulus length in bytes */
  k: number;
}

function rsaKey(key: KeyMaterial, objectClass: number): RsaKey {
  const object = asymmetricKey(key, CKK.RSA, objectClass);
  const bits = object.asymmetricKeyDetails?.modulusLength ?? 0;
  if (bits < RSA_USE_MIN_BITS || bits > RSA_USE_MAX_BITS) throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
  return { object, bits, k: Math.ceil(bits / 8) };
}

// --- attributes ---------------------------------------------------------------------------

export function describeRsa(object: KeyObject): { modulus: Buffer; bits: number; exponent: Buffer } {
  const jwk = object.export({ format: 'jwk' });
  const modulus = base64url(jwk.n);
  return { modulus, bits: object.asymmetricKeyDetails?.modulusLength ?? modulus.length * 8, exponent: base64url(jwk.e) };
}

export function rsaPublicAttributes(object: KeyObject): DerivedAttributes {
  const { modulus, bits, exponent } = describeRsa(object);
  return new Map<number, number | boolean | Buffer>([
    [CKA.MODULUS, modulus], [CKA.MODULUS_BITS, bits], [CKA.PUBLIC_EXPONENT, exponent],
  ]);
}

export function rsaPrivateAttributes(object: KeyObject): DerivedAttributes {
  const { modulus, exponent } = describeRsa(object);
  return new Map<number, number | boolean | Buffer>([[CKA.MODULUS, modulus], [CKA.PUBLIC_EXPONENT, exponent]]);
}

// --- key generation -----------------------------------------------------------------------

function publicExponentOf(bytes: Buffer | undefined): number {
  if (!bytes || bytes.length === 0) return 65537;
  const first = bytes.findIndex((byte) => byte !== 0);
  // node:crypto takes the exponent as a 32-bit number; it must be odd and at least 3.
  if (first < 0 || bytes.length - first > 4) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
  const exponent = bytes.readUIntBE(first, bytes.length - first);
  if (exponent < 3 || exponent % 2 === 0) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID);
  return exponent;
}

async function generateRsaKeyPair(mechanism: Mechanism, request: KeyPairRequest): Promise<GeneratedKeyPair> {
  requireNoParameter(mechanism);
  const bits = request.modulusBits;
  if (bits === undefined) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE);
  if (!Number.isInteger(bits) || bits < RSA_GENERATE_MIN_BITS || bits > RSA_GENERATE_MAX_BITS) {
    throw new Pkcs11Error(CKR.KEY_SIZE_RANGE);
  }
  const publicExponent = publicExponentOf(request.publicExponent);
  return generatedKeyPair(CKK.RSA, (done) => generateKeyPair('rsa', { modulusLength: bits, publicExponent }, done), (publicKey, privateKey) => ({
    publicAttributes: rsaPublicAttributes(publicKey),
    privateAttributes: rsaPrivateAttributes(privateKey),
  }));
}

// --- primitives -----------------------------------------------------------------------------

type SignOptions = { key: KeyObject; padding?: number; saltLength?: number };

/**
 * The whole message, to sign in one node:crypto call on the libuv thread pool, for keys that are
 * not heavy; a heavy key's message is digested here and signed on its own thread (rsaPrivate).
 */
function lightMessage(key: RsaKey, input: HashedMessage): Buffer | null {
  return isHeavyRsa(key.bits) ? null : input.message();
}

function signAsync(hash: string, data: Buffer, options: SignOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    sign(hash, data, options, (error, signature) => {
      if (error) reject(new Pkcs11Error(CKR.FUNCTION_FAILED, error.message));
      else resolve(signature);
    });
  });
}

function verifyAsync(hash: string, data: Buffer, options: SignOptions, signature: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    verify(hash, data, options, signature, (error, valid) => resolve(!error && valid));
  });
}

/** s^e mod n with no padding check, or null when s is not below n. */
function publicRaw(key: RsaKey, signature: Buffer): Buffer | null {
  try {
    return publicDecrypt({ key: key.object, padding: constants.RSA_NO_PADDING }, signature);
  } catch {
    return null;
  }
}

async function privateRaw(key: RsaKey, input: Buffer, padding: number, inputError: number): Promise<Buffer> {
  try {
    return await rsaPrivate({ operation: 'encrypt', key: key.object, padding, data: input });
  } catch (error) {
    throw new Pkcs11Error(error instanceof RsaWorkerFailure ? CKR.DEVICE_ERROR : inputError, (error as Error).message);
  }
}

function leftPad(data: Buffer, length: number): Buffer {
  if (data.length === length) return data;
  const out = Buffer.alloc(length);
  data.copy(out, length - data.length);
  return out;
}

function checkSignatureLength(key: RsaKey, signature: Buffer): void {
  if (signature.length !== key.k) throw new Pkcs11Error(CKR.SIGNATURE_LEN_RANGE);
}

// --- PKCS#1 v1.5 signatures ---------------------------------------------------------------

async function signPkcs1Raw(key: RsaKey, input: Buffer): Promise<Buffer> {
  if (input.length > key.k - 11) throw new Pkcs11Error(CKR.DATA_LEN_RANGE);
  return privateRaw(key, input, constants.RSA_PKCS1_PADDING, CKR.DATA_LEN_RANGE);
}

function verifyPkcs1Raw(key: RsaKey, input: Buffer, signature: Buffer): boolean {
  if (input.length > key.k - 11) throw new Pkcs11Error(CKR.DATA_LEN_RANGE);
  checkSignatureLength(key, signature);
  let recovered: Buffer;
  try {
    recovered = publicDecrypt({ key: key.object, padding: constants.RSA_PKCS1_PADDING }, signature);
  } catch {
    return false;
  }
  return recovered.equals(input);
}

function rsaPkcsSigner(mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> {
  requireNoParameter(mechanism);
  const key = rsaKey(material, CKO.PRIVATE_KEY);
  const input = new WholeMessage();
  return {
    dispose() { input.release(); },
    async update(data) { input.add(data); },
    final: () => signPkcs1Raw(key, input.take()),
  };
}

function rsaPkcsVerifier(mechanism: Mechanism, material: KeyMaterial): StreamingOperation<Buffer, boolean> {
  requireNoParameter(mechanism);
  const key = rsaKey(material, CKO.PUBLIC_KEY);
  const input = new WholeMessage();
  return {
    dispose() { input.release(); },
    async update(data) { input.add(data); },
    async final(signature) { return verifyPkcs1Raw(key, input.take(), signature); },
  };
}

function hashedPkcsSigner(hash: HashAlgorithm) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    requireNoParameter(mechanism);
    const key = rsaKey(material, CKO.PRIVATE_KEY);
    const input = new HashedMessage(hash);
    return {
      dispose() { input.release(); },
      async update(data) { input.add(data); },
      async final() {
        const message = lightMessage(key, input);
        if (message) return signAsync(hash.name, message, { key: key.object, padding: constants.RSA_PKCS1_PADDING });
        return signPkcs1Raw(key, Buffer.concat([hash.digestInfoPrefix, input.digest()]));
      },
    };
  };
}

function hashedPkcsVerifier(hash: HashAlgorithm) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<Buffer, boolean> => {
    requireNoParameter(mechanism);
    const key = rsaKey(material, CKO.PUBLIC_KEY);
    const input = new HashedMessage(hash);
    return {
      dispose() { input.release(); },
      async update(data) { input.add(data); },
      async final(signature) {
        checkSignatureLength(key, signature);
        const message = input.message();
        if (message) return verifyAsync(hash.name, message, { key: key.object, padding: constants.RSA_PKCS1_PADDING }, signature);
        return verifyPkcs1Raw(key, Buffer.concat([hash.digestInfoPrefix, input.digest()]), signature);
      },
    };
  };
}

// --- PSS ------------------------------------------------------------------------------------

interface PssSettings {
  hash: HashAlgorithm;
  mgfHash: HashAlgorithm;
  saltLength: number;
}

/** CK_RSA_PKCS_PSS_PARAMS checked against the key; `fixedHash` for the SHAxxx_RSA_PKCS_PSS forms. */
function pssSettings(mechanism: Mechanism, key: RsaKey, fixedHash?: HashAlgorithm): PssSettings {
  const parameter = mechanism.parameter;
  if (!parameter || parameter.kind !== 'pss') throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  const params: RsaPkcsPssParams = parameter;
  const hash = hashOfParameter(params.hashAlg);
  const mgfHash = hashOfMgf(params.mgf);
  if (fixedHash && hash !== fixedHash) throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  if (!Number.isInteger(params.saltLength) || params.saltLength < 0 || params.saltLength > maxPssSalt(key.bits, hash)) {
    throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  }
  return { hash, mgfHash, saltLength: params.saltLength };
}

async function signPssDigest(key: RsaKey, settings: PssSettings, mHash: Buffer): Promise<Buffer> {
  if (mHash.length !== settings.hash.length) throw new Pkcs11Error(CKR.DATA_LEN_RANGE);
  const em = pssEncode(mHash, key.bits, key.k, settings.hash, settings.mgfHash, settings.saltLength);
  return privateRaw(key, em, constants.RSA_NO_PADDING, CKR.FUNCTION_FAILED);
}

function verifyPssDigest(key: RsaKey, settings: PssSettings, mHash: Buffer, signature: Buffer): boolean {
  if (mHash.length !== settings.hash.length) throw new Pkcs11Error(CKR.DATA_LEN_RANGE);
  checkSignatureLength(key, signature);
  const em = publicRaw(key, signature);
  return em !== null && pssVerify(em, mHash, key.bits, settings.hash, settings.mgfHash, settings.saltLength);
}

function pssSigner(fixedHash?: HashAlgorithm) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    const key = rsaKey(material, CKO.PRIVATE_KEY);
    const settings = pssSettings(mechanism, key, fixedHash);
    if (!fixedHash) {
      const input = new WholeMessage(settings.hash.length);
      return {
        dispose() { input.release(); },
        async update(data) { input.add(data); },
        final: () => signPssDigest(key, settings, input.take()),
      };
    }
    const input = new HashedMessage(fixedHash);
    return {
      dispose() { input.release(); },
      async update(data) { input.add(data); },
      async final() {
        const message = lightMessage(key, input);
        if (message && settings.mgfHash === fixedHash) {
          return signAsync(fixedHash.name, message, { key: key.object, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: settings.saltLength });
        }
        return signPssDigest(key, settings, input.digest());
      },
    };
  };
}

function pssVerifier(fixedHash?: HashAlgorithm) {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<Buffer, boolean> => {
    const key = rsaKey(material, CKO.PUBLIC_KEY);
    const settings = pssSettings(mechanism, key, fixedHash);
    if (!fixedHash) {
      const input = new WholeMessage(settings.hash.length);
      return {
        dispose() { input.release(); },
        async update(data) { input.add(data); },
        async final(signature) { return verifyPssDigest(key, settings, input.take(), signature); },
      };
    }
    const input = new HashedMessage(fixedHash);
    return {
      dispose() { input.release(); },
      async update(data) { input.add(data); },
      async final(signature) {
        checkSignatureLength(key, signature);
        const message = input.message();
        if (message && settings.mgfHash === fixedHash) {
          return verifyAsync(fixedHash.name, message, { key: key.object, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: settings.saltLength }, signature);
        }
        return verifyPssDigest(key, settings, input.digest(), signature);
      },
    };
  };
}

// --- raw RSA (X.509) ------------------------------------------------------------------------

/** Input for raw RSA: at most k bytes, numerically below n (else CKR_DATA_INVALID from OpenSSL). */
function rawBlock(key: RsaKey, input: Buffer): Buffer {
  if (input.length > key.k) throw new Pkcs11Error(CKR.DATA_LEN_RANGE);
  return leftPad(input, key.k);
}

function x509Signer(mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> {
  requireNoParameter(mechanism);
  const key = rsaKey(material, CKO.PRIVATE_KEY);
  const input = new WholeMessage();
  return {
    dispose() { input.release(); },
    async update(data) { input.add(data); },
    final: async () => privateRaw(key, rawBlock(key, input.take()), constants.RSA_NO_PADDING, CKR.DATA_INVALID),
  };
}

function x509Verifier(mechanism: Mechanism, material: KeyMaterial): StreamingOperation<Buffer, boolean> {
  requireNoParameter(mechanism);
  const key = rsaKey(material, CKO.PUBLIC_KEY);
  const input = new WholeMessage();
  return {
    dispose() { input.release(); },
    async update(data) { input.add(data); },
    async final(signature) {
      const expected = rawBlock(key, input.take());
      checkSignatureLength(key, signature);
      const recovered = publicRaw(key, signature);
      return recovered !== null && recovered.equals(expected);
    },
  };
}

// --- encryption -----------------------------------------------------------------------------

interface OaepSettings {
  hash: HashAlgorithm;
  mgfHash: HashAlgorithm;
  label: Buffer | undefined;
}

function oaepSettings(mechanism: Mechanism): OaepSettings {
  const parameter = mechanism.parameter;
  if (!parameter || parameter.kind !== 'oaep') throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  const params: RsaPkcsOaepParams = parameter;
  const hash = hashOfParameter(params.hashAlg);
  const mgfHash = hashOfMgf(params.mgf);
  if (params.source !== 0 && params.source !== CKZ.DATA_SPECIFIED) throw new Pkcs11Error(CKR.MECHANISM_PARAM_INVALID);
  const label = params.source === CKZ.DATA_SPECIFIED && params.sourceData && params.sourceData.length > 0 ? params.sourceData : undefined;
  return { hash, mgfHash, label };
}

/** node:crypto pads OAEP only with one hash for both the label and MGF1 (Java's SHA-256 + MGF1-SHA1 is not). */
function openSslPadsOaep(oaep: OaepSettings): boolean {
  return oaep.mgfHash === oaep.hash;
}

type RsaCipherKind = 'pkcs' | 'oaep' | 'x509';

function encryptOnce(kind: RsaCipherKind, key: RsaKey, oaep: OaepSettings | null, data: Buffer): Buffer {
  const limit = kind === 'pkcs' ? key.k - 11 : kind === 'oaep' ? key.k - 2 * oaep!.hash.length - 2 : key.k;
  if (data.length > limit) throw new Pkcs11Error(CKR.DATA_LEN_RANGE);
  try {
    if (kind === 'oaep' && !openSslPadsOaep(oaep!)) {
      const em = oaepEncode(data, key.k, oaep!.hash, oaep!.mgfHash, oaep!.label ?? Buffer.alloc(0));
      return publicEncrypt({ key: key.object, padding: constants.RSA_NO_PADDING }, em);
    }
    if (kind === 'oaep') {
      return publicEncrypt({ key: key.object, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: oaep!.hash.name, ...(oaep!.label ? { oaepLabel: oaep!.label } : {}) }, data);
    }
    if (kind === 'pkcs') return publicEncrypt({ key: key.object, padding: constants.RSA_PKCS1_PADDING }, data);
    return publicEncrypt({ key: key.object, padding: constants.RSA_NO_PADDING }, leftPad(data, key.k));
  } catch (error) {
    throw new Pkcs11Error(CKR.DATA_INVALID, (error as Error).message);
  }
}

async function decryptOnce(kind: RsaCipherKind, key: RsaKey, oaep: OaepSettings | null, data: Buffer): Promise<Buffer> {
  if (data.length !== key.k) throw new Pkcs11Error(CKR.ENCRYPTED_DATA_LEN_RANGE);
  let out: Buffer;
  try {
    out = kind === 'oaep' && openSslPadsOaep(oaep!)
      ? await rsaPrivate({ operation: 'decrypt', key: key.object, padding: constants.RSA_PKCS1_OAEP_PADDING, data, oaepHash: oaep!.hash.name, ...(oaep!.label ? { oaepLabel: oaep!.label } : {}) })
      : await rsaPrivate({ operation: 'decrypt', key: key.object, padding: constants.RSA_NO_PADDING, data });
  } catch (error) {
    throw new Pkcs11Error(error instanceof RsaWorkerFailure ? CKR.DEVICE_ERROR : CKR.ENCRYPTED_DATA_INVALID);
  }
  if (kind === 'x509' || (kind === 'oaep' && openSslPadsOaep(oaep!))) return out;
  const message = kind === 'oaep' ? oaepDecode(out, oaep!.hash, oaep!.mgfHash, oaep!.label ?? Buffer.alloc(0)) : pkcs1v15Unpad(out);
  if (!message) throw new Pkcs11Error(CKR.ENCRYPTED_DATA_INVALID);
  return message;
}

function rsaCipher(kind: RsaCipherKind, direction: 'encrypt' | 'decrypt') {
  return (mechanism: Mechanism, material: KeyMaterial): StreamingOperation<void, Buffer> => {
    const oaep = kind === 'oaep' ? oaepSettings(mechanism) : null;
    if (kind !== 'oaep') requireNoParameter(mechanism);
    const key = rsaKey(material, direction === 'encrypt' ? CKO.PUBLIC_KEY : CKO.PRIVATE_KEY);
    const input = new WholeMessage(key.k);
    return {
      dispose() { input.release(); },
      async update(data) { input.add(data, direction === 'encrypt' ? CKR.DATA_LEN_RANGE : CKR.ENCRYPTED_DATA_LEN_RANGE); },
      async final() {
        const data = input.take();
        return direction === 'encrypt' ? encryptOnce(kind, key, oaep, data) : decryptOnce(kind, key, oaep, data);
      },
    };
  };
}

// --- registry entries -----------------------------------------------------------------------

const use = { minKeySize: RSA_USE_MIN_BITS, maxKeySize: RSA_USE_MAX_BITS };

const hashed: Array<[number, number, HashAlgorithm]> = [
  [CKM.SHA1_RSA_PKCS, CKM.SHA1_RSA_PKCS_PSS, hashNamed('sha1')],
  [CKM.SHA224_RSA_PKCS, CKM.SHA224_RSA_PKCS_PSS, hashNamed('sha224')],
  [CKM.SHA256_RSA_PKCS, CKM.SHA256_RSA_PKCS_PSS, hashNamed('sha256')],
  [CKM.SHA384_RSA_PKCS, CKM.SHA384_RSA_PKCS_PSS, hashNamed('sha384')],
  [CKM.SHA512_RSA_PKCS, CKM.SHA512_RSA_PKCS_PSS, hashNamed('sha512')],
];

export const rsaEntries: MechanismEntry[] = [
  { type: CKM.RSA_PKCS_KEY_PAIR_GEN, minKeySize: RSA_GENERATE_MIN_BITS, maxKeySize: RSA_GENERATE_MAX_BITS, generateKeyPair: generateRsaKeyPair },
  {
    type: CKM.RSA_PKCS, ...use, singlePart: true, wraps: true,
    sign: rsaPkcsSigner, verify: rsaPkcsVerifier, encrypt: rsaCipher('pkcs', 'encrypt'), decrypt: rsaCipher('pkcs', 'decrypt'),
  },
  { type: CKM.RSA_PKCS_OAEP, ...use, singlePart: true, wraps: true, encrypt: rsaCipher('oaep', 'encrypt'), decrypt: rsaCipher('oaep', 'decrypt') },
  {
    type: CKM.RSA_X_509, ...use, singlePart: true,
    sign: x509Signer, verify: x509Verifier, encrypt: rsaCipher('x509', 'encrypt'), decrypt: rsaCipher('x509', 'decrypt'),
  },
  { type: CKM.RSA_PKCS_PSS, ...use, singlePart: true, sign: pssSigner(), verify: pssVerifier() },
  ...hashed.flatMap(([pkcs, pss, hash]): MechanismEntry[] => [
    { type: pkcs, ...use, sign: hashedPkcsSigner(hash), verify: hashedPkcsVerifier(hash) },
    { type: pss, ...use, sign: pssSigner(hash), verify: pssVerifier(hash) },
  ]),
];
