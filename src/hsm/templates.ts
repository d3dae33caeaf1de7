// Which attributes each kind of object has, which a caller may give at creation and change
// afterwards, and the defaults this token fills in. Each creation path (C_CreateObject,
// C_GenerateKey, C_GenerateKeyPair, C_UnwrapKey, C_DeriveKey) turns a caller's template into
// the attributes and secret part of a new object here, with PKCS#11's return codes.

import { CKA, CKC, CKK, CKM, CKO, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { DerivedAttributes, KeyMaterial } from './mechanisms/contract.js';
import { HMAC_KEY_TYPES } from './mechanisms/hmac.js';
import type { AttributeValue } from '../pkcs11/attributes.js';
import { PRIVATE_COMPONENTS, privateKeyDer, publicKeyDer, publicKeyInfoOf } from './key-encoding.js';
import { createHash, X509Certificate } from 'node:crypto';

export type AttributeMap = Map<number, AttributeValue>;

const COMMON = [CKA.CLASS, CKA.TOKEN, CKA.PRIVATE, CKA.MODIFIABLE, CKA.LABEL, CKA.COPYABLE, CKA.DESTROYABLE];
const DATA = [...COMMON, CKA.APPLICATION, CKA.OBJECT_ID, CKA.VALUE];
const CERTIFICATE = [...COMMON, CKA.CERTIFICATE_TYPE, CKA.TRUSTED, CKA.CERTIFICATE_CATEGORY, CKA.CHECK_VALUE,
  CKA.START_DATE, CKA.END_DATE, CKA.PUBLIC_KEY_INFO, CKA.SUBJECT, CKA.ID, CKA.ISSUER, CKA.SERIAL_NUMBER, CKA.VALUE,
  CKA.URL, CKA.HASH_OF_SUBJECT_PUBLIC_KEY, CKA.HASH_OF_ISSUER_PUBLIC_KEY, CKA.JAVA_MIDP_SECURITY_DOMAIN,
  CKA.NAME_HASH_ALGORITHM];
const KEY = [...COMMON, CKA.KEY_TYPE, CKA.ID, CKA.START_DATE, CKA.END_DATE, CKA.DERIVE, CKA.LOCAL,
  CKA.KEY_GEN_MECHANISM, CKA.ALLOWED_MECHANISMS, CKA.DERIVE_TEMPLATE];
const PUBLIC_KEY = [...KEY, CKA.SUBJECT, CKA.ENCRYPT, CKA.VERIFY, CKA.VERIFY_RECOVER, CKA.WRAP, CKA.TRUSTED,
  CKA.WRAP_TEMPLATE, CKA.PUBLIC_KEY_INFO];
const PRIVATE_KEY = [...KEY, CKA.SUBJECT, CKA.SENSITIVE, CKA.DECRYPT, CKA.SIGN, CKA.SIGN_RECOVER, CKA.UNWRAP,
  CKA.EXTRACTABLE, CKA.ALWAYS_SENSITIVE, CKA.NEVER_EXTRACTABLE, CKA.WRAP_WITH_TRUSTED, CKA.UNWRAP_TEMPLATE,
  CKA.ALWAYS_AUTHENTICATE, CKA.PUBLIC_KEY_INFO];
const SECRET_KEY = [...KEY, CKA.SENSITIVE, CKA.ENCRYPT, CKA.DECRYPT, CKA.SIGN, CKA.VERIFY, CKA.WRAP, CKA.UNWRAP,
  CKA.EXTRACTABLE, CKA.ALWAYS_SENSITIVE, CKA.NEVER_EXTRACTABLE, CKA.CHECK_VALUE, CKA.WRAP_WITH_TRUSTED, CKA.TRUSTED,
  CKA.WRAP_TEMPLATE, CKA.UNWRAP_TEMPLATE, CKA.VALUE, CKA.VALUE_LEN];

const BY_KEY_TYPE: Record<number, { public: number[]; private: number[] }> = {
  [CKK.RSA]: {
    public: [CKA.MODULUS, CKA.MODULUS_BITS, CKA.PUBLIC_EXPONENT],
    private: [CKA.MODULUS, CKA.MODULUS_BITS, CKA.PUBLIC_EXPONENT, CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2,
      CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT],
  },
  [CKK.EC]: { public: [CKA.EC_PARAMS, CKA.EC_POINT], private: [CKA.EC_PARAMS, CKA.EC_POINT, CKA.VALUE] },
  [CKK.EC_EDWARDS]: { public: [CKA.EC_PARAMS, CKA.EC_POINT], private: [CKA.EC_PARAMS, CKA.EC_POINT, CKA.VALUE] },
};

const SECRET_KEY_TYPES = new Set<number>([CKK.AES, CKK.DES3, CKK.GENERIC_SECRET, ...HMAC_KEY_TYPES]);
export const KEY_TYPES = new Set<number>([CKK.RSA, CKK.EC, CKK.EC_EDWARDS, ...SECRET_KEY_TYPES]);
const PAIR_KEY_TYPES = new Set<number>([CKK.RSA, CKK.EC, CKK.EC_EDWARDS]);

const validCache = new Map<string, Set<number>>();

/** The attributes an object of this class (and key type) may have. */
export function validAttributes(objectClass: number, keyType?: number): Set<number> {
  const cacheKey = `${objectClass}:${keyType ?? ''}`;
  let set = validCache.get(cacheKey);
  if (set) return set;
  switch (objectClass) {
    case CKO.DATA: set = new Set(DATA); break;
    case CKO.CERTIFICATE: set = new Set(CERTIFICATE); break;
    case CKO.PUBLIC_KEY: set = new Set([...PUBLIC_KEY, ...(BY_KEY_TYPE[keyType ?? -1]?.public ?? [])]); break;
    case CKO.PRIVATE_KEY: set = new Set([...PRIVATE_KEY, ...(BY_KEY_TYPE[keyType ?? -1]?.private ?? [])]); break;
    case CKO.SECRET_KEY: set = new Set(SECRET_KEY); break;
    default: set = new Set(); break;
  }
  validCache.set(cacheKey, set);
  return set;
}

/** Attributes the token sets itself: a template giving them is CKR_ATTRIBUTE_READ_ONLY. */
const TOKEN_SET: readonly number[] = [CKA.LOCAL, CKA.ALWAYS_SENSITIVE, CKA.NEVER_EXTRACTABLE, CKA.KEY_GEN_MECHANISM, CKA.UNIQUE_ID];

/** Attributes C_SetAttributeValue may change (subject to CKA_MODIFIABLE and the one-way rules). */
const CHANGEABLE = new Set<number>([CKA.LABEL, CKA.ID, CKA.SUBJECT, CKA.START_DATE, CKA.END_DATE, CKA.APPLICATION,
  CKA.OBJECT_ID, CKA.ISSUER, CKA.SERIAL_NUMBER, CKA.ENCRYPT, CKA.DECRYPT, CKA.SIGN, CKA.VERIFY, CKA.WRAP, CKA.UNWRAP,
  CKA.DERIVE, CKA.SIGN_RECOVER, CKA.VERIFY_RECOVER, CKA.SENSITIVE, CKA.EXTRACTABLE, CKA.WRAP_WITH_TRUSTED,
  CKA.TRUSTED, CKA.URL, CKA.CERTIFICATE_CATEGORY, CKA.HASH_OF_SUBJECT_PUBLIC_KEY, CKA.HASH_OF_ISSUER_PUBLIC_KEY]);

const EMPTY = Buffer.alloc(0);
const NONE: readonly number[] = [];
const NO_TEMPLATE: readonly [] = [];
/** CK_UNAVAILABLE_INFORMATION as a CK_ULONG attribute value (the codec writes ~0UL). */
export const UNAVAILABLE = -1;

/**
 * What an attribute the spec says every key of a class has reads as when the object does not
 * hold it: a key made before this token recorded it, restored from such a backup, or one whose
 * value is "none" (CKA_KEY_GEN_MECHANISM of a key that was not generated here reads
 * CK_UNAVAILABLE_INFORMATION, as PKCS#11 says). undefined: the class does not have it.
 */
const ALWAYS_PRESENT: Record<number, ReadonlyMap<number, AttributeValue>> = (() => {
  const key: Array<[number, AttributeValue]> = [
    [CKA.ID, EMPTY], [CKA.START_DATE, EMPTY], [CKA.END_DATE, EMPTY], [CKA.DERIVE, false], [CKA.LOCAL, false],
    [CKA.KEY_GEN_MECHANISM, UNAVAILABLE], [CKA.ALLOWED_MECHANISMS, NONE], [CKA.DERIVE_TEMPLATE, NO_TEMPLATE],
    [CKA.LABEL, EMPTY], [CKA.MODIFIABLE, true], [CKA.COPYABLE, true], [CKA.DESTROYABLE, true],
  ];
  return {
    [CKO.PUBLIC_KEY]: new Map([...key, [CKA.SUBJECT, EMPTY], [CKA.VERIFY_RECOVER, false], [CKA.TRUSTED, false], [CKA.WRAP_TEMPLATE, NO_TEMPLATE]]),
    [CKO.PRIVATE_KEY]: new Map([...key, [CKA.SUBJECT, EMPTY], [CKA.SIGN_RECOVER, false], [CKA.ALWAYS_SENSITIVE, false],
      [CKA.NEVER_EXTRACTABLE, false], [CKA.WRAP_WITH_TRUSTED, false], [CKA.UNWRAP_TEMPLATE, NO_TEMPLATE], [CKA.ALWAYS_AUTHENTICATE, false]]),
    [CKO.SECRET_KEY]: new Map([...key, [CKA.ALWAYS_SENSITIVE, false], [CKA.NEVER_EXTRACTABLE, false], [CKA.WRAP_WITH_TRUSTED, false],
      [CKA.TRUSTED, false], [CKA.WRAP_TEMPLATE, NO_TEMPLATE], [CKA.UNWRAP_TEMPLATE, NO_TEMPLATE]]),
  };
})();

/** The value an always-present attribute of a key reads as when the key does not hold it; undefined when there is none. */
export function alwaysPresentDefault(objectClass: number, type: number): AttributeValue | undefined {
  return ALWAYS_PRESENT[objectClass]?.get(type);
}

/** True when the object's secret part is this attribute's value (CKA_VALUE of secret keys and private values). */
export function valueIsSecret(objectClass: number, isPrivate: boolean): boolean {
  return objectClass === CKO.SECRET_KEY || ((objectClass === CKO.DATA || objectClass === CKO.CERTIFICATE) && isPrivate);
}

/** Private components are sensitive: never in the clear attributes of a private key. */
export function isPrivateComponent(objectClass: number, type: number): boolean {
  return objectClass === CKO.PRIVATE_KEY && PRIVATE_COMPONENTS.includes(type);
}

function defaults(map: AttributeMap, type: number, value: AttributeValue): void {
  if (!map.has(type)) map.set(type, value);
}

/** Rejects attributes the class does not have and attributes only the token sets. */
function checkTemplate(map: AttributeMap, objectClass: number, keyType: number | undefined, isSO: boolean): void {
  const valid = validAttributes(objectClass, keyType);
  for (const [type, value] of map) {
    if (!valid.has(type)) throw new Pkcs11Error(CKR.ATTRIBUTE_TYPE_INVALID, `0x${type.toString(16)} for class ${objectClass}`);
    if (TOKEN_SET.includes(type)) throw new Pkcs11Error(CKR.ATTRIBUTE_READ_ONLY, `0x${type.toString(16)}`);
    // Only the SO may mark a certificate or a wrapping key trusted.
    if (type === CKA.TRUSTED && value === true && !isSO) throw new Pkcs11Error(CKR.ATTRIBUTE_READ_ONLY, 'CKA_TRUSTED');
  }
}

function storageDefaults(map: AttributeMap, privateByDefault: boolean): void {
  defaults(map, CKA.TOKEN, false);
  defaults(map, CKA.PRIVATE, privateByDefault);
  defaults(map, CKA.MODIFIABLE, true);
  defaults(map, CKA.COPYABLE, true);
  defaults(map, CKA.DESTROYABLE, true);
  defaults(map, CKA.LABEL, Buffer.alloc(0));
}

function keyDefaults(map: AttributeMap, objectClass: number): void {
  storageDefaults(map, objectClass !== CKO.PUBLIC_KEY);
  defaults(map, CKA.ID, Buffer.alloc(0));
  defaults(map, CKA.START_DATE, Buffer.alloc(0));
  defaults(map, CKA.END_DATE, Buffer.alloc(0));
  defaults(map, CKA.DERIVE, false);
  defaults(map, CKA.LOCAL, false);
  // Usage defaults follow SoftHSM: every use the class allows, except derive and recover.
  if (objectClass === CKO.PUBLIC_KEY) {
    defaults(map, CKA.SUBJECT, Buffer.alloc(0));
    for (const t of [CKA.ENCRYPT, CKA.VERIFY, CKA.WRAP]) defaults(map, t, true);
    defaults(map, CKA.VERIFY_RECOVER, false);
    defaults(map, CKA.TRUSTED, false);
  } else {
    // Sensitive and not extractable unless asked: key material does not leave by default.
    defaults(map, CKA.SENSITIVE, true);
    defaults(map, CKA.EXTRACTABLE, false);
    defaults(map, CKA.WRAP_WITH_TRUSTED, false);
    if (objectClass === CKO.PRIVATE_KEY) {
      defaults(map, CKA.SUBJECT, Buffer.alloc(0));
      for (const t of [CKA.DECRYPT, CKA.SIGN, CKA.UNWRAP]) defaults(map, t, true);
      defaults(map, CKA.SIGN_RECOVER, false);
      defaults(map, CKA.ALWAYS_AUTHENTICATE, false);
    } else {
      for (const t of [CKA.ENCRYPT, CKA.DECRYPT, CKA.SIGN, CKA.VERIFY, CKA.WRAP, CKA.UNWRAP]) defaults(map, t, true);
      defaults(map, CKA.TRUSTED, false);
    }
  }
}

/** CKA_ALWAYS_SENSITIVE and CKA_NEVER_EXTRACTABLE of a key whose value was born in the token or not. */
function provenance(map: AttributeMap, bornInside: boolean): void {
  if (map.get(CKA.CLASS) === CKO.PUBLIC_KEY) return;
  map.set(CKA.ALWAYS_SENSITIVE, bornInside && map.get(CKA.SENSITIVE) === true);
  map.set(CKA.NEVER_EXTRACTABLE, bornInside && map.get(CKA.EXTRACTABLE) === false);
}

function merge(map: AttributeMap, derived: DerivedAttributes, skip: readonly number[] = []): void {
  for (const [type, value] of derived) if (!skip.includes(type)) map.set(type, value);
}

export interface NewObject {
  attributes: AttributeMap;
  /** PKCS#8 (private key), key bytes (secret key) or the private CKA_VALUE; null when none. */
  secret: Buffer | null;
  /** Material to hand to the mechanisms, for keys. */
  material: KeyMaterial | null;
}

function classOf(map: AttributeMap): number {
  const objectClass = map.get(CKA.CLASS);
  if (objectClass === undefined) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_CLASS');
  return objectClass as number;
}

function keyTypeOf(map: AttributeMap): number {
  const keyType = map.get(CKA.KEY_TYPE);
  if (keyType === undefined) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_KEY_TYPE');
  if (!KEY_TYPES.has(keyType as number)) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'CKA_KEY_TYPE');
  return keyType as number;
}

/** The certificate's SubjectPublicKeyInfo, or empty when node:crypto cannot read its key (PKCS#11's default). */
function spkiOfCertificate(certificate: X509Certificate): Buffer {
  try {
    return certificate.publicKey.export({ type: 'spki', format: 'der' });
  } catch {
    return Buffer.alloc(0);
  }
}

/** C_CreateObject: a data object, a certificate or an imported key. */
export function objectFromTemplate(map: AttributeMap, isSO: boolean, describe: (key: KeyMaterial) => DerivedAttributes): NewObject {
  const objectClass = classOf(map);
  switch (objectClass) {
    case CKO.DATA: {
      checkTemplate(map, objectClass, undefined, isSO);
      storageDefaults(map, false);
      defaults(map, CKA.APPLICATION, Buffer.alloc(0));
      defaults(map, CKA.OBJECT_ID, Buffer.alloc(0));
      defaults(map, CKA.VALUE, Buffer.alloc(0));
      return splitValue(map, objectClass);
    }
    case CKO.CERTIFICATE: {
      const type = map.get(CKA.CERTIFICATE_TYPE);
      if (type === undefined) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_CERTIFICATE_TYPE');
      if (type !== CKC.X_509) throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'only X.509 certificates');
      checkTemplate(map, objectClass, undefined, isSO);
      for (const required of [CKA.SUBJECT, CKA.VALUE]) {
        if (!map.has(required)) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, `0x${required.toString(16)}`);
      }
      const value = map.get(CKA.VALUE) as Buffer;
      let certificate: X509Certificate;
      try {
        certificate = new X509Certificate(value);
      } catch {
        throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'CKA_VALUE is not a DER X.509 certificate');
      }
      storageDefaults(map, false);
      // PKCS#11 2.40 4.6.3: the first three bytes of the SHA-1 of CKA_VALUE; the certificate's SPKI.
      defaults(map, CKA.CHECK_VALUE, createHash('sha1').update(value).digest().subarray(0, 3));
      defaults(map, CKA.PUBLIC_KEY_INFO, spkiOfCertificate(certificate));
      for (const t of [CKA.ID, CKA.ISSUER, CKA.SERIAL_NUMBER, CKA.START_DATE, CKA.END_DATE, CKA.URL,
        CKA.HASH_OF_SUBJECT_PUBLIC_KEY, CKA.HASH_OF_ISSUER_PUBLIC_KEY]) defaults(map, t, Buffer.alloc(0));
      defaults(map, CKA.TRUSTED, false);
      defaults(map, CKA.CERTIFICATE_CATEGORY, 0);
      defaults(map, CKA.JAVA_MIDP_SECURITY_DOMAIN, 0);
      return splitValue(map, objectClass);
    }
    case CKO.PUBLIC_KEY:
    case CKO.PRIVATE_KEY:
    case CKO.SECRET_KEY: {
      const keyType = keyTypeOf(map);
      if (objectClass === CKO.SECRET_KEY ? !SECRET_KEY_TYPES.has(keyType) : !PAIR_KEY_TYPES.has(keyType)) {
        throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, 'key type does not fit the class');
      }
      checkTemplate(map, objectClass, keyType, isSO);
      // Lengths and sizes are the token's to compute from the value.
      for (const t of [CKA.VALUE_LEN, CKA.MODULUS_BITS]) {
        if (map.has(t)) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, `0x${t.toString(16)} is computed`);
      }
      let der: Buffer;
      if (objectClass === CKO.SECRET_KEY) {
        const value = map.get(CKA.VALUE);
        if (!Buffer.isBuffer(value)) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_VALUE');
        der = value;
      } else if (objectClass === CKO.PUBLIC_KEY) {
        // From the components, or from CKA_PUBLIC_KEY_INFO alone (an SPKI); describeKey checks it.
        const info = map.get(CKA.PUBLIC_KEY_INFO);
        const components = map.has(CKA.MODULUS) || map.has(CKA.EC_POINT);
        der = !components && Buffer.isBuffer(info) && info.length > 0 ? info : publicKeyDer(keyType, map);
      } else {
        der = privateKeyDer(keyType, map);
      }
      const material: KeyMaterial = { objectClass, keyType, der };
      let derived: DerivedAttributes;
      try {
        derived = describe(material);
      } catch (error) {
        if (error instanceof Pkcs11Error) throw error;
        throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, (error as Error).message);
      }
      // A check value the caller gives must be the key's (PKCS#11: the token checks it).
      const givenCheck = map.get(CKA.CHECK_VALUE);
      const check = derived.get(CKA.CHECK_VALUE);
      if (givenCheck !== undefined && check !== undefined && !(Buffer.isBuffer(givenCheck) && (givenCheck.length === 0 || (Buffer.isBuffer(check) && check.equals(givenCheck))))) {
        throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'CKA_CHECK_VALUE does not match the key');
      }
      keyDefaults(map, objectClass);
      merge(map, derived, objectClass === CKO.PRIVATE_KEY ? PRIVATE_COMPONENTS : [CKA.VALUE]);
      if (objectClass === CKO.PUBLIC_KEY) map.set(CKA.PUBLIC_KEY_INFO, der);
      if (objectClass === CKO.PRIVATE_KEY) map.set(CKA.PUBLIC_KEY_INFO, publicKeyInfoOf(der));
      provenance(map, false);
      for (const t of PRIVATE_COMPONENTS) if (objectClass === CKO.PRIVATE_KEY) map.delete(t);
      if (objectClass === CKO.SECRET_KEY) map.delete(CKA.VALUE);
      return { attributes: map, secret: objectClass === CKO.PUBLIC_KEY ? null : der, material };
    }
    default:
      throw new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, 'CKA_CLASS not supported');
  }
}

/** For data objects and certificates: the CKA_VALUE of a private one is its secret part. */
function splitValue(map: AttributeMap, objectClass: number): NewObject {
  if (!valueIsSecret(objectClass, map.get(CKA.PRIVATE) === true)) return { attributes: map, secret: null, material: null };
  const value = map.get(CKA.VALUE) as Buffer;
  map.delete(CKA.VALUE);
  return { attributes: map, secret: value, material: null };
}

/** The key type a generation mechanism makes. */
export function generatedKeyType(mechanism: number, template: AttributeMap): number {
  switch (mechanism) {
    case CKM.RSA_PKCS_KEY_PAIR_GEN: return CKK.RSA;
    case CKM.EC_KEY_PAIR_GEN: return CKK.EC;
    case CKM.EC_EDWARDS_KEY_PAIR_GEN: return CKK.EC_EDWARDS;
    case CKM.AES_KEY_GEN: return CKK.AES;
    case CKM.DES3_KEY_GEN: return CKK.DES3;
    case CKM.GENERIC_SECRET_KEY_GEN: return (template.get(CKA.KEY_TYPE) as number | undefined) ?? CKK.GENERIC_SECRET;
    default: throw new Pkcs11Error(CKR.MECHANISM_INVALID);
  }
}

/** Checks a generation template: class and key type consistent, no value-bearing attributes. */
export function checkGenerationTemplate(map: AttributeMap, objectClass: number, keyType: number, isSO: boolean): void {
  const givenClass = map.get(CKA.CLASS);
  if (givenClass !== undefined && givenClass !== objectClass) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, 'CKA_CLASS');
  const givenType = map.get(CKA.KEY_TYPE);
  if (givenType !== undefined && givenType !== keyType) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, 'CKA_KEY_TYPE');
  checkTemplate(map, objectClass, keyType, isSO);
  const computed = [CKA.VALUE, CKA.MODULUS, CKA.EC_POINT, CKA.PUBLIC_KEY_INFO, ...PRIVATE_COMPONENTS];
  for (const t of computed) {
    if (map.has(t)) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, `0x${t.toString(16)} is generated`);
  }
  map.set(CKA.CLASS, objectClass);
  map.set(CKA.KEY_TYPE, keyType);
}

/** C_GenerateKey and C_GenerateKeyPair: a key born in the token. */
export function generatedKey(map: AttributeMap, material: KeyMaterial, derived: DerivedAttributes, mechanism: number, publicInfo?: Buffer): NewObject {
  const objectClass = map.get(CKA.CLASS) as number;
  keyDefaults(map, objectClass);
  merge(map, derived, [CKA.VALUE, ...(objectClass === CKO.PRIVATE_KEY ? PRIVATE_COMPONENTS : [])]);
  map.set(CKA.LOCAL, true);
  map.set(CKA.KEY_GEN_MECHANISM, mechanism);
  if (objectClass === CKO.PUBLIC_KEY) map.set(CKA.PUBLIC_KEY_INFO, material.der);
  if (objectClass === CKO.PRIVATE_KEY) map.set(CKA.PUBLIC_KEY_INFO, publicInfo ?? publicKeyInfoOf(material.der));
  provenance(map, true);
  return { attributes: map, secret: objectClass === CKO.PUBLIC_KEY ? null : material.der, material };
}

/** C_UnwrapKey and C_DeriveKey: a key whose class and type the template names. */
export function keyTemplateClass(map: AttributeMap, fallbackClass: number | null): { objectClass: number; keyType: number } {
  const objectClass = (map.get(CKA.CLASS) as number | undefined) ?? fallbackClass;
  if (objectClass === null) throw new Pkcs11Error(CKR.TEMPLATE_INCOMPLETE, 'CKA_CLASS');
  if (objectClass !== CKO.SECRET_KEY && objectClass !== CKO.PRIVATE_KEY) {
    throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, 'only secret and private keys can be unwrapped or derived');
  }
  const keyType = keyTypeOf(map);
  if (objectClass === CKO.SECRET_KEY ? !SECRET_KEY_TYPES.has(keyType) : !PAIR_KEY_TYPES.has(keyType)) {
    throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, 'key type does not fit the class');
  }
  return { objectClass, keyType };
}

/** Checks an unwrap/derive template before the crypto runs; returns CKA_VALUE_LEN if given. */
export function checkImportTemplate(map: AttributeMap, objectClass: number, keyType: number, isSO: boolean): number {
  map.set(CKA.CLASS, objectClass);
  checkTemplate(map, objectClass, keyType, isSO);
  for (const t of [CKA.VALUE, CKA.MODULUS, CKA.EC_POINT, ...PRIVATE_COMPONENTS]) {
    if (map.has(t)) throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, `0x${t.toString(16)} comes from the key`);
  }
  const valueLen = map.get(CKA.VALUE_LEN) as number | undefined;
  map.delete(CKA.VALUE_LEN);
  return valueLen ?? 0;
}

/**
 * C_UnwrapKey (base = null) and C_DeriveKey (base = the base key): the new key's attributes.
 * Unwrapped keys were outside the token: not local, never always-sensitive. A derived key
 * inherits ALWAYS_SENSITIVE / NEVER_EXTRACTABLE from its base.
 */
export function importedKey(map: AttributeMap, material: KeyMaterial, derived: DerivedAttributes, base: AttributeMap | null): NewObject {
  const objectClass = map.get(CKA.CLASS) as number;
  keyDefaults(map, objectClass);
  merge(map, derived, [CKA.VALUE, ...(objectClass === CKO.PRIVATE_KEY ? PRIVATE_COMPONENTS : [])]);
  if (objectClass === CKO.PRIVATE_KEY) map.set(CKA.PUBLIC_KEY_INFO, publicKeyInfoOf(material.der));
  if (base === null) {
    provenance(map, false);
  } else {
    map.set(CKA.ALWAYS_SENSITIVE, base.get(CKA.ALWAYS_SENSITIVE) === true && map.get(CKA.SENSITIVE) === true);
    map.set(CKA.NEVER_EXTRACTABLE, base.get(CKA.NEVER_EXTRACTABLE) === true && map.get(CKA.EXTRACTABLE) === false);
  }
  return { attributes: map, secret: material.der, material };
}

/**
 * C_SetAttributeValue checks for one attribute: ATTRIBUTE_TYPE_INVALID when the object does not
 * have it, ATTRIBUTE_READ_ONLY when it cannot change or is a one-way attribute already set
 * (sensitive true, extractable false, wrap-with-trusted true: read-only from then on), and for
 * anyone but the SO on a CKA_TRUSTED object.
 */
export function checkChange(attrs: AttributeMap, type: number, isSO: boolean): void {
  const objectClass = attrs.get(CKA.CLASS) as number;
  const valid = validAttributes(objectClass, attrs.get(CKA.KEY_TYPE) as number | undefined);
  if (!valid.has(type)) throw new Pkcs11Error(CKR.ATTRIBUTE_TYPE_INVALID);
  const dataValue = type === CKA.VALUE && objectClass === CKO.DATA;
  if (!CHANGEABLE.has(type) && !dataValue) throw new Pkcs11Error(CKR.ATTRIBUTE_READ_ONLY);
  const current = attrs.get(type);
  // PKCS#11's footnotes 11 and 12: once set that way the attribute "becomes a read only
  // attribute", so giving it again, even with the value it has, is refused.
  if (type === CKA.SENSITIVE && current === true) throw new Pkcs11Error(CKR.ATTRIBUTE_READ_ONLY);
  if (type === CKA.EXTRACTABLE && current === false) throw new Pkcs11Error(CKR.ATTRIBUTE_READ_ONLY);
  if (type === CKA.WRAP_WITH_TRUSTED && current === true) throw new Pkcs11Error(CKR.ATTRIBUTE_READ_ONLY);
  if (type === CKA.TRUSTED && !isSO) throw new Pkcs11Error(CKR.ATTRIBUTE_READ_ONLY);
  // What the SO designated for CKA_WRAP_WITH_TRUSTED keys stays as the SO made it: a user turning
  // on CKA_DECRYPT of a trusted wrapping key would unwrap such keys by decrypting their blob.
  if (attrs.get(CKA.TRUSTED) === true && !isSO) throw new Pkcs11Error(CKR.ATTRIBUTE_READ_ONLY);
}
