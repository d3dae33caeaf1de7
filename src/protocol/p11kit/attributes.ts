// CK_ATTRIBUTE on the p11-kit wire (p11-kit 0.24.1, rpc-message.c: p11_rpc_buffer_add_attribute,
// p11_rpc_buffer_get_attribute and the value serializers chosen by map_attribute_to_value_type).
//
// One attribute: uint32 type, one validity byte (0: the attribute is unavailable, ulValueLen ==
// (CK_ULONG)-1, nothing follows), uint32 declared length (ulValueLen), then the value serialized
// by the kind its type maps to:
//   byte        one byte (CK_BBOOL attributes)
//   ulong       uint64
//   bytes       byte array (uint32 length + bytes; 0xffffffff: no data, only a length)
//   date        byte array of 0 or 8 bytes (CK_DATE: YYYYMMDD)
//   attributes  uint32 count + that many attributes (CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE)
//   mechanisms  uint32 count + that many uint64 (CKA_ALLOWED_MECHANISMS)
// Types p11-kit does not know are byte arrays.

import type { Attribute as TokenAttribute, AttributeResult, AttributeValue as TokenValue } from '../../pkcs11/attributes.js';
import { CKA, CKR } from '../../pkcs11/constants.js';
import { P11KitCodecError, P11KitErrorCode } from './errors.js';
import { ULONG_MINUS_ONE, WireReader, WireWriter } from './wire.js';

export type AttributeKind = 'byte' | 'ulong' | 'bytes' | 'date' | 'attributes' | 'mechanisms';

export type AttributeValue =
  | { kind: 'byte'; value: number }
  | { kind: 'ulong'; value: number }
  | { kind: 'bytes'; value: Buffer }
  /** 8 ASCII digits YYYYMMDD, or empty. */
  | { kind: 'date'; value: Buffer }
  | { kind: 'attributes'; value: Attribute[] }
  | { kind: 'mechanisms'; value: number[] };

export interface Attribute {
  type: number;
  /**
   * The value, or null when none travels: the attribute is unavailable (length -1), or only
   * its length is known (the answer to a size query: C_GetAttributeValue with pValue NULL).
   */
  value: AttributeValue | null;
  /**
   * ulValueLen as declared on the wire; -1 for an unavailable attribute. Always set by the
   * decoder. When encoding it may be left out: it is derived from the value (CK_ULONG and
   * CK_ATTRIBUTE sized as on LP64 hosts, 8 and 24 bytes), and a null value without a length
   * is an unavailable attribute.
   */
  length?: number;
}

/** One entry of an `fA` argument: the attribute asked for and the room the caller has (0: size query). */
export interface AttributeRequest {
  type: number;
  length: number;
}

/** sizeof (CK_ATTRIBUTE) and sizeof (CK_ULONG) on the LP64 hosts p11-kit runs on. */
export const SIZEOF_CK_ATTRIBUTE = 24;
export const SIZEOF_CK_ULONG = 8;

// Attribute types p11-kit 0.24.1 names that constants.ts does not.
const CKA_SECONDARY_AUTH = 0x200;
const CKA_AUTH_PIN_FLAGS = 0x201;
const CKA_PIXEL_X = 0x400;
const CKA_PIXEL_Y = 0x401;
const CKA_RESOLUTION = 0x402;
const CKA_CHAR_ROWS = 0x403;
const CKA_CHAR_COLUMNS = 0x404;
const CKA_COLOR = 0x405;
const CKA_BITS_PER_PIXEL = 0x406;
const CKA_MECHANISM_TYPE = 0x500;

const BYTE_TYPES = [
  CKA.TOKEN, CKA.PRIVATE, CKA.TRUSTED, CKA.SENSITIVE, CKA.ENCRYPT, CKA.DECRYPT, CKA.WRAP, CKA.UNWRAP,
  CKA.SIGN, CKA.SIGN_RECOVER, CKA.VERIFY, CKA.VERIFY_RECOVER, CKA.DERIVE, CKA.EXTRACTABLE, CKA.LOCAL,
  CKA.NEVER_EXTRACTABLE, CKA.ALWAYS_SENSITIVE, CKA.MODIFIABLE, CKA.COPYABLE, CKA_SECONDARY_AUTH,
  CKA.ALWAYS_AUTHENTICATE, CKA.WRAP_WITH_TRUSTED, CKA.RESET_ON_INIT, CKA.HAS_RESET, CKA_COLOR,
];
const ULONG_TYPES = [
  CKA.CLASS, CKA.CERTIFICATE_TYPE, CKA.CERTIFICATE_CATEGORY, CKA.JAVA_MIDP_SECURITY_DOMAIN, CKA.KEY_TYPE,
  CKA.MODULUS_BITS, CKA.PRIME_BITS, CKA.SUBPRIME_BITS, CKA.VALUE_BITS, CKA.VALUE_LEN, CKA.KEY_GEN_MECHANISM,
  CKA_AUTH_PIN_FLAGS, CKA.HW_FEATURE_TYPE, CKA_PIXEL_X, CKA_PIXEL_Y, CKA_RESOLUTION, CKA_CHAR_ROWS,
  CKA_CHAR_COLUMNS, CKA_BITS_PER_PIXEL, CKA_MECHANISM_TYPE,
];

// Built once at load: the per-attribute lookup on the hot path is one Map get.
const KIND_BY_TYPE = new Map<number, AttributeKind>([
  ...BYTE_TYPES.map((t): [number, AttributeKind] => [t, 'byte']),
  ...ULONG_TYPES.map((t): [number, AttributeKind] => [t, 'ulong']),
  [CKA.WRAP_TEMPLATE, 'attributes'],
  [CKA.UNWRAP_TEMPLATE, 'attributes'],
  [CKA.ALLOWED_MECHANISMS, 'mechanisms'],
  [CKA.START_DATE, 'date'],
  [CKA.END_DATE, 'date'],
]);

/**
 * How p11-kit 0.24.1 serializes the value of an attribute type. Note what it leaves as byte
 * arrays: CKA_DESTROYABLE, CKA_DERIVE_TEMPLATE (typed as a template only from 0.25.0) and every
 * vendor attribute.
 */
export function attributeKind(type: number): AttributeKind {
  return KIND_BY_TYPE.get(type) ?? 'bytes';
}

/** ulValueLen for a value, as a 64-bit p11-kit peer computes it. */
export function canonicalLength(value: AttributeValue): number {
  switch (value.kind) {
    case 'byte': return 1;
    case 'ulong': return SIZEOF_CK_ULONG;
    case 'bytes':
    case 'date': return value.value.length;
    case 'attributes': return value.value.length * SIZEOF_CK_ATTRIBUTE;
    case 'mechanisms': return value.value.length * SIZEOF_CK_ULONG;
  }
}

/** Builders for templates, each typed as p11-kit types the attribute. */
export const attr = {
  bool(type: number, v: boolean): Attribute {
    return { type, value: { kind: 'byte', value: v ? 1 : 0 } };
  },
  ulong(type: number, v: number): Attribute {
    return { type, value: { kind: 'ulong', value: v } };
  },
  bytes(type: number, v: Buffer | string): Attribute {
    return { type, value: { kind: 'bytes', value: typeof v === 'string' ? Buffer.from(v, 'utf8') : v } };
  },
  date(type: number, yyyymmdd: string): Attribute {
    return { type, value: { kind: 'date', value: Buffer.from(yyyymmdd, 'ascii') } };
  },
  template(type: number, attrs: Attribute[]): Attribute {
    return { type, value: { kind: 'attributes', value: attrs } };
  },
  mechanisms(type: number, mechs: number[]): Attribute {
    return { type, value: { kind: 'mechanisms', value: mechs } };
  },
  unavailable(type: number): Attribute {
    return { type, value: null, length: ULONG_MINUS_ONE };
  },
  /** The answer to a size query: only the length travels. */
  sizeOnly(type: number, length: number): Attribute {
    return { type, value: null, length };
  },
} as const;

const MIN_ATTRIBUTE_BYTES = 5; // type + validity byte

/**
 * Decodes one attribute. `nested` is true inside an attribute-array value, where another
 * array is refused: PKCS#11 templates nest once, and recursion must stay bounded (p11-kit
 * 0.26.3 added a depth limit to its recursive parsing for CVE-2026-13757).
 */
export function readAttribute(r: WireReader, nested: boolean): Attribute {
  const type = r.uint32();
  const validity = r.byte();
  if (validity === 0) return { type, value: null, length: ULONG_MINUS_ONE };
  const at = r.offset;
  const length = r.uint32();
  const kind = attributeKind(type);
  let value: AttributeValue | null;
  let decoded: number;
  switch (kind) {
    case 'byte':
      value = { kind, value: r.byte() };
      decoded = 1;
      break;
    case 'ulong':
      value = { kind, value: r.ulong() };
      decoded = SIZEOF_CK_ULONG;
      break;
    case 'bytes': {
      const b = r.byteArray();
      value = b === null ? null : { kind, value: b };
      decoded = b === null ? 0 : b.length;
      break;
    }
    case 'date': {
      const b = r.byteArray();
      if (b !== null && b.length !== 0 && b.length !== 8) {
        throw new P11KitCodecError(P11KitErrorCode.BadValue, `date attribute of ${b.length} bytes`, { offset: at });
      }
      value = b === null ? null : { kind, value: b };
      decoded = b === null ? 0 : b.length;
      break;
    }
    case 'attributes': {
      if (nested) {
        throw new P11KitCodecError(P11KitErrorCode.NestingTooDeep, `attribute array 0x${type.toString(16)} inside an attribute array`, { offset: at });
      }
      const n = templateCount(r, MIN_ATTRIBUTE_BYTES, 'attribute array value');
      const list: Attribute[] = [];
      for (let i = 0; i < n; i++) list.push(readAttribute(r, true));
      value = { kind, value: list };
      decoded = n * SIZEOF_CK_ATTRIBUTE;
      break;
    }
    case 'mechanisms': {
      const n = r.count(8, 'mechanism array value');
      const list: number[] = [];
      for (let i = 0; i < n; i++) list.push(r.ulong());
      value = { kind, value: list };
      decoded = n * SIZEOF_CK_ULONG;
      break;
    }
  }
  // p11_rpc_buffer_get_attribute refuses a value longer than its declared length.
  if (decoded > length) {
    throw new P11KitCodecError(P11KitErrorCode.BadValue, `attribute 0x${type.toString(16)} value of ${decoded} bytes over its declared ${length}`, { offset: at });
  }
  return { type, value, length };
}

/**
 * The most attributes one template, a template inside one, or one C_GetAttributeValue request
 * may hold: far more than any object has (PKCS#11 defines about 150 types), and few enough that a
 * request's decoded form stays near its size on the wire (a 4 MiB frame of 10-byte attributes was
 * 400,000 objects, 16 MB of heap, kept as long as the object). Past it: CKR_HOST_MEMORY.
 */
export const MAX_TEMPLATE_ATTRIBUTES = 4096;

function templateCount(r: WireReader, minItemSize: number, what: string): number {
  const at = r.offset;
  const n = r.count(minItemSize, what);
  if (n > MAX_TEMPLATE_ATTRIBUTES) {
    throw new P11KitCodecError(P11KitErrorCode.TooManyAttributes, `${what} of ${n} attributes, over ${MAX_TEMPLATE_ATTRIBUTES}`, { offset: at, rv: CKR.HOST_MEMORY });
  }
  return n;
}

export function readAttributeArray(r: WireReader): Attribute[] {
  const n = templateCount(r, MIN_ATTRIBUTE_BYTES, 'attribute array');
  const out: Attribute[] = [];
  for (let i = 0; i < n; i++) out.push(readAttribute(r, false));
  return out;
}

export function readAttributeRequests(r: WireReader): AttributeRequest[] {
  const n = templateCount(r, 8, 'attribute buffer');
  const out: AttributeRequest[] = [];
  for (let i = 0; i < n; i++) out.push({ type: r.uint32(), length: r.uint32() });
  return out;
}

export function writeAttribute(w: WireWriter, a: Attribute, nested: boolean): void {
  w.uint32(a.type);
  const value = a.value;
  const length = a.length ?? (value === null ? ULONG_MINUS_ONE : canonicalLength(value));
  if (length === ULONG_MINUS_ONE) {
    w.byte(0);
    return;
  }
  w.byte(1);
  w.uint32(length);
  const kind = attributeKind(a.type);
  if (value === null) {
    // Only the length travels. p11-kit writes a zero byte / zero ulong / NULL array here; for
    // the two counted kinds it would write a count with no items, which its own reader
    // cannot parse, so an empty count goes instead.
    switch (kind) {
      case 'byte': w.byte(0); break;
      case 'ulong': w.ulong(0); break;
      case 'bytes':
      case 'date': w.byteArray(null); break;
      case 'attributes':
      case 'mechanisms': w.uint32(0); break;
    }
    return;
  }
  if (value.kind !== kind) {
    throw new P11KitCodecError(P11KitErrorCode.Unencodable, `attribute 0x${a.type.toString(16)} travels as ${kind}, got ${value.kind}`);
  }
  switch (value.kind) {
    case 'byte': w.byte(value.value); break;
    case 'ulong': w.ulong(value.value); break;
    case 'bytes': w.byteArray(value.value); break;
    case 'date':
      if (value.value.length !== 0 && value.value.length !== 8) {
        throw new P11KitCodecError(P11KitErrorCode.Unencodable, `date of ${value.value.length} bytes`);
      }
      w.byteArray(value.value);
      break;
    case 'attributes':
      if (nested) throw new P11KitCodecError(P11KitErrorCode.Unencodable, 'attribute array nested twice');
      w.uint32(value.value.length);
      for (const inner of value.value) writeAttribute(w, inner, true);
      break;
    case 'mechanisms':
      w.uint32(value.value.length);
      for (const m of value.value) w.ulong(m);
      break;
  }
}

export function writeAttributeArray(w: WireWriter, attrs: readonly Attribute[]): void {
  w.uint32(attrs.length);
  for (const a of attrs) writeAttribute(w, a, false);
}

export function writeAttributeRequests(w: WireWriter, reqs: readonly AttributeRequest[]): void {
  w.uint32(reqs.length);
  for (const q of reqs) {
    w.uint32(q.type);
    w.uint32(q.length);
  }
}

// ---------------------------------------------------------------------------------------------
// Between the wire's typed values and the plain values of src/pkcs11/attributes.ts, which the
// token model, the devices and the client hold: one conversion, used by both ends.

/** A wire value as a plain value: CK_BBOOL as boolean, CK_ULONG as number, bytes as Buffer. */
export function tokenValue(value: AttributeValue): TokenValue {
  switch (value.kind) {
    case 'byte': return value.value !== 0;
    case 'ulong': return value.value;
    case 'bytes':
    case 'date': return value.value;
    case 'attributes': return value.value.map(tokenAttribute);
    case 'mechanisms': return value.value;
  }
}

/** A template attribute as the token takes it; a value-less one is an empty byte string. */
export function tokenAttribute(attribute: Attribute): TokenAttribute {
  return { type: attribute.type, value: attribute.value === null ? Buffer.alloc(0) : tokenValue(attribute.value) };
}

export function tokenTemplate(template: readonly Attribute[]): TokenAttribute[] {
  return template.map(tokenAttribute);
}

/**
 * A plain value typed for the wire, by how p11-kit types the attribute. A CK_BBOOL or CK_ULONG
 * attribute that p11-kit 0.24.1 leaves as a byte array (CKA_DESTROYABLE, CKA_NAME_HASH_ALGORITHM)
 * travels as its bytes in memory: one byte, or eight little-endian (an LP64 CK_ULONG).
 */
export function wireValue(type: number, value: TokenValue): AttributeValue {
  const asBytes = attributeKind(type) === 'bytes';
  if (typeof value === 'boolean') return asBytes ? { kind: 'bytes', value: Buffer.from([value ? 1 : 0]) } : { kind: 'byte', value: value ? 1 : 0 };
  if (typeof value === 'number') return asBytes ? { kind: 'bytes', value: ulongBytes(value) } : { kind: 'ulong', value };
  if (Buffer.isBuffer(value)) return { kind: attributeKind(type) === 'date' ? 'date' : 'bytes', value };
  if (value.length > 0 && typeof value[0] === 'object') {
    return { kind: 'attributes', value: (value as readonly TokenAttribute[]).map((a) => ({ type: a.type, value: wireValue(a.type, a.value) })) };
  }
  return attributeKind(type) === 'attributes' ? { kind: 'attributes', value: [] } : { kind: 'mechanisms', value: [...(value as readonly number[])] };
}

function ulongBytes(value: number): Buffer {
  const out = Buffer.alloc(SIZEOF_CK_ULONG);
  out.writeBigUInt64LE(value < 0 ? 0xffffffffffffffffn : BigInt(value));
  return out;
}

/** C_GetAttributeValue's per-attribute results as p11-kit's server writes them. */
export function wireResults(results: readonly AttributeResult[]): Attribute[] {
  return results.map((r) => {
    if (r.length === null) return { type: r.type, value: null, length: -1 };
    if (r.value === null) return { type: r.type, value: null, length: r.length };
    return { type: r.type, value: wireValue(r.type, r.value), length: r.length };
  });
}
