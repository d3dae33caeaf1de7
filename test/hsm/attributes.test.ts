// Attribute values: normalisation of caller values to each attribute's kind, lengths as a C
// caller sees them, and the storage codec.

import { describe, expect, it } from 'vitest';
import { CKA, CKM, CKR, Pkcs11Error } from '../../src/pkcs11/constants.js';
import { attributeLength, normaliseAttribute, templateMap, type AttributeValue } from '../../src/pkcs11/attributes.js';
import { decodeAttributes, encodeAttributes } from '../../src/hsm/attribute-codec.js';

const code = (f: () => unknown) => {
  try { f(); return 0; } catch (e) { return (e as Pkcs11Error).rv; }
};

describe('normaliseAttribute', () => {
  it('accepts natural values and C-shaped bytes', () => {
    expect(normaliseAttribute({ type: CKA.TOKEN, value: Buffer.from([1]) }).value).toBe(true);
    const eight = Buffer.alloc(8);
    eight.writeBigUInt64LE(0x1234n);
    expect(normaliseAttribute({ type: CKA.VALUE_LEN, value: eight }).value).toBe(0x1234);
    const four = Buffer.alloc(4);
    four.writeUInt32LE(16);
    expect(normaliseAttribute({ type: CKA.VALUE_LEN, value: four }).value).toBe(16);
    expect(normaliseAttribute({ type: CKA.START_DATE, value: Buffer.from('20260101') }).value).toEqual(Buffer.from('20260101'));
  });

  it('refuses wrong shapes with CKR_ATTRIBUTE_VALUE_INVALID and unknown types with CKR_ATTRIBUTE_TYPE_INVALID', () => {
    expect(code(() => normaliseAttribute({ type: CKA.TOKEN, value: 1 }))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(code(() => normaliseAttribute({ type: CKA.TOKEN, value: Buffer.from([2]) }))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(code(() => normaliseAttribute({ type: CKA.VALUE_LEN, value: -1 }))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(code(() => normaliseAttribute({ type: CKA.VALUE_LEN, value: Buffer.alloc(3) }))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(code(() => normaliseAttribute({ type: CKA.LABEL, value: true }))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(code(() => normaliseAttribute({ type: CKA.START_DATE, value: Buffer.from('2026-1-1') }))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(code(() => normaliseAttribute({ type: CKA.ALLOWED_MECHANISMS, value: [Buffer.alloc(1)] as never }))).toBe(CKR.ATTRIBUTE_VALUE_INVALID);
    expect(code(() => normaliseAttribute({ type: 0x7ffffff0, value: true }))).toBe(CKR.ATTRIBUTE_TYPE_INVALID);
  });

  it('copies bytes: the caller\'s buffer stays the caller\'s', () => {
    const label = Buffer.from('abc');
    const out = normaliseAttribute({ type: CKA.LABEL, value: label });
    label[0] = 0x7a;
    expect(out.value).toEqual(Buffer.from('abc'));
  });
});

describe('templateMap', () => {
  it('the same attribute twice: equal is fine, different is CKR_TEMPLATE_INCONSISTENT', () => {
    expect(templateMap([{ type: CKA.TOKEN, value: true }, { type: CKA.TOKEN, value: Buffer.from([1]) }]).get(CKA.TOKEN)).toBe(true);
    expect(code(() => templateMap([{ type: CKA.TOKEN, value: true }, { type: CKA.TOKEN, value: false }]))).toBe(CKR.TEMPLATE_INCONSISTENT);
  });

  it('a template inside one (CKA_WRAP_TEMPLATE) keeps each type once: 1,000 copies are one, different values are CKR_TEMPLATE_INCONSISTENT', () => {
    const copies = Array.from({ length: 1000 }, () => ({ type: CKA.TOKEN, value: true }));
    const map = templateMap([{ type: CKA.WRAP_TEMPLATE, value: [...copies, { type: CKA.EXTRACTABLE, value: false }] }]);
    expect(map.get(CKA.WRAP_TEMPLATE)).toEqual([{ type: CKA.TOKEN, value: true }, { type: CKA.EXTRACTABLE, value: false }]);
    expect(code(() => templateMap([{ type: CKA.UNWRAP_TEMPLATE, value: [{ type: CKA.TOKEN, value: true }, { type: CKA.TOKEN, value: false }] }]))).toBe(CKR.TEMPLATE_INCONSISTENT);
  });
});

describe('lengths', () => {
  it('are those a 64-bit C caller sees', () => {
    expect(attributeLength(true)).toBe(1);
    expect(attributeLength(5)).toBe(8);
    expect(attributeLength(Buffer.alloc(13))).toBe(13);
    expect(attributeLength([{ type: CKA.SIGN, value: true }, { type: CKA.TOKEN, value: false }])).toBe(48);
    expect(attributeLength([CKM.AES_GCM, CKM.SHA256])).toBe(16);
  });
});

describe('storage codec', () => {
  it('round-trips every kind', () => {
    const attributes = new Map<number, AttributeValue>([
      [CKA.CLASS, 4], [CKA.TOKEN, true], [CKA.PRIVATE, false], [CKA.LABEL, Buffer.from('k')], [CKA.ID, Buffer.alloc(0)],
      [CKA.START_DATE, Buffer.from('20260102')], [CKA.ALLOWED_MECHANISMS, [CKM.AES_GCM, CKM.AES_CBC]],
      [CKA.WRAP_TEMPLATE, [{ type: CKA.EXTRACTABLE, value: true }, { type: CKA.LABEL, value: Buffer.from('x') }]],
      [CKA.MODULUS_BITS, 2 ** 40],
    ]);
    expect(decodeAttributes(encodeAttributes(attributes))).toEqual(attributes);
  });

  it('refuses a truncated or malformed blob', () => {
    const blob = encodeAttributes(new Map([[CKA.LABEL, Buffer.from('label')]]));
    expect(() => decodeAttributes(blob.subarray(0, blob.length - 1))).toThrow();
    const bad = Buffer.from(blob);
    bad[4] = 99;
    expect(() => decodeAttributes(bad)).toThrow();
  });
});
