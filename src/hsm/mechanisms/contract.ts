// The seam between the token model (sessions, objects, attributes, roles) and the crypto.
// The token model checks roles, handles and usage attributes (CKA_SIGN ...), then calls these;
// these check that the mechanism fits the key and its parameters, and do the work on
// node:crypto, asynchronously. A failure is a Pkcs11Error carrying the CKR_ code.

import type { MechanismInfo } from '../../pkcs11/info.js';
import type { Mechanism } from '../../pkcs11/mechanism.js';

/** The key as the crypto needs it; the token model decrypts stored values before handing them over. */
export interface KeyMaterial {
  /** CKO_PUBLIC_KEY, CKO_PRIVATE_KEY or CKO_SECRET_KEY */
  objectClass: number;
  /** CKK_RSA, CKK_EC, CKK_EC_EDWARDS, CKK_AES, CKK_DES3, CKK_GENERIC_SECRET, CKK_SHA*_HMAC */
  keyType: number;
  /** Public: SPKI DER. Private: PKCS#8 DER. Secret: the raw key bytes. */
  der: Buffer;
}

/** Attributes a key-generation or import yields, keyed by CKA_ value (numbers, booleans, bytes). */
export type DerivedAttributes = Map<number, number | boolean | Buffer>;

export interface GeneratedKeyPair {
  keyType: number;
  publicKey: KeyMaterial;
  privateKey: KeyMaterial;
  /** CKA_MODULUS, CKA_MODULUS_BITS, CKA_PUBLIC_EXPONENT / CKA_EC_PARAMS, CKA_EC_POINT ... */
  publicAttributes: DerivedAttributes;
  privateAttributes: DerivedAttributes;
}

export interface GeneratedSecretKey {
  keyType: number;
  key: KeyMaterial;
  /** CKA_VALUE_LEN ... */
  attributes: DerivedAttributes;
}

/** Template values a generation needs, already read from the caller's templates. */
export interface KeyPairRequest {
  /** CKA_MODULUS_BITS for RSA */
  modulusBits?: number;
  /** CKA_PUBLIC_EXPONENT for RSA (big-endian bytes) */
  publicExponent?: Buffer;
  /** CKA_EC_PARAMS: DER OID of the named curve, or PrintableString "edwards25519" */
  ecParams?: Buffer;
}

export interface SecretKeyRequest {
  /** CKA_VALUE_LEN in bytes */
  valueLength?: number;
  /** CKA_KEY_TYPE, for CKM_GENERIC_SECRET_KEY_GEN */
  keyType?: number;
}

/** CK_MECHANISM_INFO with the mechanism it describes. */
export interface MechanismDescription extends MechanismInfo {
  type: number;
}

/** A multi-part operation: update any number of times, then final. Single-part = one update + final. */
export interface StreamingOperation<TFinalArg, TResult> {
  update(data: Buffer): Promise<Buffer | void>;
  final(arg: TFinalArg): Promise<TResult>;
  /** Gives back what the operation holds (kept input); called once it has left its session, finished or not. */
  dispose?(): void;
}

export interface Mechanisms {
  /** Everything supported, for C_GetMechanismList / C_GetMechanismInfo. */
  list(): readonly MechanismDescription[];
  generateKeyPair(mechanism: Mechanism, request: KeyPairRequest): Promise<GeneratedKeyPair>;
  generateKey(mechanism: Mechanism, request: SecretKeyRequest): Promise<GeneratedSecretKey>;
  /** Attributes of an imported key (C_CreateObject): modulus, EC point, value length ... */
  describeKey(key: KeyMaterial): DerivedAttributes;
  sign(mechanism: Mechanism, key: KeyMaterial): StreamingOperation<void, Buffer>;
  verify(mechanism: Mechanism, key: KeyMaterial): StreamingOperation<Buffer, boolean>;
  /** update() returns output as it becomes available (CBC, CTR, ECB); final() the rest (padding, GCM tag). */
  encrypt(mechanism: Mechanism, key: KeyMaterial): StreamingOperation<void, Buffer>;
  decrypt(mechanism: Mechanism, key: KeyMaterial): StreamingOperation<void, Buffer>;
  digest(mechanism: Mechanism): StreamingOperation<void, Buffer>;
  wrapKey(mechanism: Mechanism, wrappingKey: KeyMaterial, key: KeyMaterial): Promise<Buffer>;
  /** Returns the unwrapped key's material (its class and type come from the caller's template). */
  /** `valueLength`: the template's CKA_VALUE_LEN, which cuts a secret key's value unwrapped by a block cipher without padding. */
  unwrapKey(mechanism: Mechanism, unwrappingKey: KeyMaterial, wrapped: Buffer, objectClass: number, keyType: number, valueLength?: number): Promise<KeyMaterial>;
  /** ECDH1: the shared secret as a secret key of `valueLength` bytes (0: the whole secret). */
  deriveKey(mechanism: Mechanism, baseKey: KeyMaterial, keyType: number, valueLength: number): Promise<KeyMaterial>;
  random(length: number): Promise<Buffer>;
}
