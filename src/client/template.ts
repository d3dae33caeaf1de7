// Attribute templates as plain values ({ type: CKA.TOKEN, value: true }) and back: the p11-kit
// codec wants each value typed the way p11-kit types the attribute (attributeKind), callers
// should not have to know that.
import { CKR, Pkcs11Error, ckaName } from '../pkcs11/constants.js';
import { attributeKind, tokenValue, wireValue, type Attribute } from '../protocol/p11kit/index.js';

/** boolean: CK_BBOOL; number: CK_ULONG; string: UTF-8 bytes (or YYYYMMDD for dates). */
export type TemplateValue = boolean | number | string | Buffer | number[] | TemplateEntry[];

export interface TemplateEntry {
  /** CKA_ value */
  type: number;
  value: TemplateValue;
}

/** A value read back; null when the attribute is unavailable (sensitive, or not of this object). */
export type AttributeReadValue = boolean | number | Buffer | number[] | AttributeRead[] | null;

export interface AttributeRead {
  type: number;
  value: AttributeReadValue;
}

export function toWireAttribute(entry: TemplateEntry, nested = false): Attribute {
  const { type, value } = entry;
  const wrong = () => new Pkcs11Error(CKR.ATTRIBUTE_VALUE_INVALID, `${ckaName(type)}: a ${attributeKind(type)} value is expected`);
  switch (attributeKind(type)) {
    case 'byte':
      if (typeof value === 'boolean') return { type, value: { kind: 'byte', value: value ? 1 : 0 } };
      if (typeof value === 'number') return { type, value: { kind: 'byte', value } };
      throw wrong();
    case 'ulong':
      if (typeof value === 'number') return { type, value: { kind: 'ulong', value } };
      throw wrong();
    case 'date':
      if (typeof value === 'string' || Buffer.isBuffer(value)) return { type, value: { kind: 'date', value: Buffer.from(value) } };
      throw wrong();
    case 'mechanisms':
      if (Array.isArray(value) && value.every((v) => typeof v === 'number')) return { type, value: { kind: 'mechanisms', value } };
      throw wrong();
    case 'attributes':
      if (!nested && Array.isArray(value) && value.every((v) => typeof v === 'object')) {
        return { type, value: { kind: 'attributes', value: value.map((e) => toWireAttribute(e, true)) } };
      }
      throw wrong();
    case 'bytes':
      if (typeof value === 'string') return { type, value: { kind: 'bytes', value: Buffer.from(value, 'utf8') } };
      if (Buffer.isBuffer(value)) return { type, value: { kind: 'bytes', value } };
      // CKA_DESTROYABLE, CKA_NAME_HASH_ALGORITHM...: a CK_BBOOL or CK_ULONG that p11-kit carries as its bytes.
      if (typeof value === 'boolean' || typeof value === 'number') return { type, value: wireValue(type, value) };
      throw wrong();
  }
}

export function toWireTemplate(entries: readonly TemplateEntry[]): Attribute[] {
  return entries.map((e) => toWireAttribute(e));
}

export function fromWireAttribute(a: Attribute): AttributeRead {
  return { type: a.type, value: a.value === null ? null : tokenValue(a.value) as AttributeReadValue };
}
