// PKCS#11 attribute values as the devices, the token model and the client hold them: each CKA_ has one kind (CK_BBOOL,
// CK_ULONG, bytes, CK_DATE, attribute array, mechanism array). Values from callers are
// normalised to that kind once, on the way in; everything after works on typed values.

import { CKA, CKR, Pkcs11Error } from './constants.js';

export interface Attribute {
  type: number;
  value: AttributeValue;
}

/** boolean (CK_BBOOL), number (CK_ULONG), Buffer (bytes, CK_DATE, UTF-8 text), Attribute[] (templates), number[] (mechanism lists). */
export type AttributeValue = boolean | number | Buffer | readonly Attribute[] | readonly number[];

export type Template = readonly Attribute[];

/** One attribute asked for in C_GetAttributeValue. */
export interface AttributeRequest {
  type: number;
  /** Caller's buffer size: undefined = any (in-process), null = length query (pValue NULL). */
  length?: number | null;
}

/** One attribute of C_GetAttributeValue's answer. */
export interface AttributeResult {
  type: number;
  /** The value, when asked for and available. */
  value: AttributeValue | null;
  /** ulValueLen; null = CK_UNAVAILABLE_INFORMATION. */
  length: number | null;
}

/** C_GetAttributeValue's answer: per-attribute results and the call's return value. */
export interface AttributeReadout {
  rv: number;
  attributes: AttributeResult[];
}

export type AttributeKind = 'bool' | 'ulong' | 'bytes' | 'date' | 'template' | 'mechanisms';

/** sizeof(CK_ULONG) on the hosts p11-kit serves (LP64); lengths reported to callers use it. */
export const ULONG_SIZE = 8;
/** sizeof(CK_ATTRIBUTE) on LP64: type, pointer, length. */
const ATTRIBUTE_STRUCT_SIZE = 24;

const bool = (...types: number[]) => types.map((t) => [t, 'bool'] as const);
const ulong = (...types: number[]) => types.map((t) => [t, 'ulong'] as const);
const bytes = (...types: number[]) => types.map((t) => [t, 'bytes'] as const);

const kinds: ReadonlyMap<number, AttributeKind> = new Map<number, AttributeKind>([
  ...ulong(CKA.CLASS, CKA.CERTIFICATE_TYPE, CKA.CERTIFICATE_CATEGORY, CKA.JAVA_MIDP_SECURITY_DOMAIN,
    CKA.NAME_HASH_ALGORITHM, CKA.KEY_TYPE, CKA.MODULUS_BITS, CKA.VALUE_LEN, CKA.KEY_GEN_MECHANISM,
    CKA.PRIME_BITS, CKA.SUBPRIME_BITS, CKA.VALUE_BITS, CKA.HW_FEATURE_TYPE),
  ...bool(CKA.TOKEN, CKA.PRIVATE, CKA.TRUSTED, CKA.SENSITIVE, CKA.ENCRYPT, CKA.DECRYPT, CKA.WRAP,
    CKA.UNWRAP, CKA.SIGN, CKA.SIGN_RECOVER, CKA.VERIFY, CKA.VERIFY_RECOVER, CKA.DERIVE,
    CKA.EXTRACTABLE, CKA.LOCAL, CKA.NEVER_EXTRACTABLE, CKA.ALWAYS_SENSITIVE, CKA.MODIFIABLE,
    CKA.COPYABLE, CKA.DESTROYABLE, CKA.ALWAYS_AUTHENTICATE, CKA.WRAP_WITH_TRUSTED,
    CKA.RESET_ON_INIT, CKA.HAS_RESET),
  ...bytes(CKA.LABEL, CKA.UNIQUE_ID, CKA.APPLICATION, CKA.VALUE, CKA.OBJECT_ID, CKA.ISSUER,
    CKA.SERIAL_NUMBER, CKA.AC_ISSUER, CKA.OWNER, CKA.ATTR_TYPES, CKA.URL,
    CKA.HASH_OF_SUBJECT_PUBLIC_KEY, CKA.HASH_OF_ISSUER_PUBLIC_KEY, CKA.CHECK_VALUE, CKA.SUBJECT,
    CKA.ID, CKA.MODULUS, CKA.PUBLIC_EXPONENT, CKA.PRIVATE_EXPONENT, CKA.PRIME_1, CKA.PRIME_2,
    CKA.EXPONENT_1, CKA.EXPONENT_2, CKA.COEFFICIENT, CKA.PUBLIC_KEY_INFO, CKA.PRIME, CKA.SUBPRIME,
    CKA.BASE, CKA.EC_PARAMS, CKA.EC_POINT),
  [CKA.START_DATE, 'date'], [CKA.END_DATE, 'date'],
  [CKA.WRAP_TEMPLATE, 'template'], [CKA.UNWRAP_TEMPLATE, 'template'], [CKA.DERIVE_TEMPLATE, 'template'],
  [CKA.ALLOWED_MECHANISMS, 'mechanisms'],
]);

/** The kind of a known attribute; undefined for one this token does not know. */
export function attributeKind(type: number): AttributeKind | undefined {
  return kinds.get(type);
}

/** Array.isArray for readonly arrays, without widening to any[]. */
function isList(value: unknown): value is readonly unknown[] {
  return Array.isArray(value);
}

function isAttributeArray(value: AttributeValue): value is readonly Attribute[] {
  return Array.isArray(value) && (value.length === 0 || typeof value[0] === 'object');
}

/**
 * Brings a caller's value to the attribute's kind. Accepts the natural JavaScript value, or the
 * raw bytes a C caller would pass (1-byte CK_BBOOL, 4- or 8-byte little-endian CK_ULONG).
 * Throws CKR_ATTRIBUTE_TYPE_INVALID for an unknown type, CKR_ATTRIBUTE_VALUE_INVALID otherwise.
 */
export function normaliseAttribute(attribute: Attribute): Attribute {
  const kind = kinds.get(attribute.type);
  if (kind === undefined) throw new Pkcs11Error(CKR.ATTRIBUTE_TYPE_INVALID, `0x${attribute.type.toString(16)}`);
  const value = attribute.value;
  const invalid = () => new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, `0x${attribute.type.toString(16)}`);
  switch (kind) {
    case 'bool':
      if (typeof value === 'boolean') return attribute;
      if (Buffer.isBuffer(value) && value.length === 1 && value[0]! <= 1) return { type: attribute.type, value: value[0] === 1 };
      throw invalid();
    case 'ulong':
      if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return attribute;
      // CKA_KEY_GEN_MECHANISM of a key not generated in the token is CK_UNAVAILABLE_INFORMATION (~0UL), -1 as the codec reads it.
      if (attribute.type === CKA.KEY_GEN_MECHANISM && (value === -1 || (Buffer.isBuffer(value) && value.length === 8 && value.readBigUInt64LE() === 0xffffffffffffffffn))) {
        return { type: attribute.type, value: -1 };
      }
      if (Buffer.isBuffer(value) && value.length === 8) {
        const n = value.readBigUInt64LE();
        if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid();
        return { type: attribute.type, value: Number(n) };
      }
      if (Buffer.isBuffer(value) && value.length === 4) return { type: attribute.type, value: value.readUInt32LE() };
      throw invalid();
    case 'bytes':
      // Copied: the caller's Buffer stays the caller's.
      if (Buffer.isBuffer(value)) return { type: attribute.type, value: Buffer.from(value) };
      throw invalid();
    case 'date':
      // CK_DATE is 8 ASCII digits YYYYMMDD, or empty.
      if (Buffer.isBuffer(value) && (value.length === 0 || (value.length === 8 && /^\d{8}$/.test(value.toString('latin1'))))) {
        return { type: attribute.type, value: Buffer.from(value) };
      }
      throw invalid();
    case 'template':
      // Each type once, as in a template: 400,000 copies of one attribute were kept whole (the
      // partition's room counts each type once), a heap a request could grow without bound.
      if (Array.isArray(value) && isAttributeArray(value)) return { type: attribute.type, value: [...templateMap(value)].map(([type, v]) => ({ type, value: v })) };
      throw invalid();
    case 'mechanisms':
      if (isList(value) && value.every((m) => typeof m === 'number' && Number.isSafeInteger(m) && m >= 0)) return { type: attribute.type, value: [...value] as number[] };
      throw invalid();
  }
}

/** The length a C caller sees for the value (ulValueLen). */
export function attributeLength(value: AttributeValue): number {
  if (typeof value === 'boolean') return 1;
  if (typeof value === 'number') return ULONG_SIZE;
  if (Buffer.isBuffer(value)) return value.length;
  if (isAttributeArray(value)) return value.length * ATTRIBUTE_STRUCT_SIZE;
  return value.length * ULONG_SIZE;
}

export function attributeEquals(a: AttributeValue, b: AttributeValue): boolean {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (isList(a) || isList(b)) {
    if (!isList(a) || !isList(b) || a.length !== b.length) return false;
    if (isAttributeArray(a)) {
      const bb = b as readonly Attribute[];
      return a.every((x, i) => { const y = bb[i]; return typeof y === 'object' && x.type === y.type && attributeEquals(x.value, y.value); });
    }
    return a.every((x, i) => x === (b as readonly number[])[i]);
  }
  return a === b;
}

/**
 * A template as a map, normalised. The same type given twice with different values is
 * CKR_TEMPLATE_INCONSISTENT.
 */
export function templateMap(template: Template): Map<number, AttributeValue> {
  const out = new Map<number, AttributeValue>();
  for (const raw of template) {
    const attribute = normaliseAttribute(raw);
    const previous = out.get(attribute.type);
    if (previous !== undefined && !attributeEquals(previous, attribute.value)) {
      throw new Pkcs11Error(CKR.TEMPLATE_INCONSISTENT, `0x${attribute.type.toString(16)} given twice`);
    }
    out.set(attribute.type, attribute.value);
  }
  return out;
}

/** UTF-8 text helper for labels and the like. */
export function text(value: string): Buffer {
  return Buffer.from(value, 'utf8');
}
