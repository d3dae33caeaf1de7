// Attributes between the wire (p11-kit's typed values) and the HSM (natural values).
import type { Attribute as HsmAttribute, AttributeValue as HsmValue } from '../../hsm/index.js';
import type { AttributeResult } from '../../hsm/object-calls.js';
import { attributeKind, type Attribute as WireAttribute, type AttributeValue as WireValue } from '../../protocol/p11kit/index.js';

export function toHsmValue(value: WireValue): HsmValue {
  switch (value.kind) {
    case 'byte': return value.value !== 0;
    case 'ulong': return value.value;
    case 'bytes':
    case 'date': return value.value;
    case 'attributes': return value.value.map(toHsmAttribute);
    case 'mechanisms': return value.value;
  }
}

export function toHsmAttribute(attribute: WireAttribute): HsmAttribute {
  // A value-less attribute in a template is an empty byte string to the token.
  return { type: attribute.type, value: attribute.value === null ? Buffer.alloc(0) : toHsmValue(attribute.value) };
}

export function toHsmTemplate(template: readonly WireAttribute[]): HsmAttribute[] {
  return template.map(toHsmAttribute);
}

export function toWireValue(type: number, value: HsmValue): WireValue {
  if (typeof value === 'boolean') return { kind: 'byte', value: value ? 1 : 0 };
  if (typeof value === 'number') return { kind: 'ulong', value };
  if (Buffer.isBuffer(value)) return { kind: attributeKind(type) === 'date' ? 'date' : 'bytes', value };
  if (value.length > 0 && typeof value[0] === 'object') {
    return { kind: 'attributes', value: (value as readonly HsmAttribute[]).map((a) => ({ type: a.type, value: toWireValue(a.type, a.value) })) };
  }
  return attributeKind(type) === 'attributes' ? { kind: 'attributes', value: [] } : { kind: 'mechanisms', value: [...(value as readonly number[])] };
}

/** C_GetAttributeValue's per-attribute results as p11-kit's server writes them. */
export function toWireResults(results: readonly AttributeResult[]): WireAttribute[] {
  return results.map((r) => {
    if (r.length === null) return { type: r.type, value: null, length: -1 };
    if (r.value === null) return { type: r.type, value: null, length: r.length };
    return { type: r.type, value: toWireValue(r.type, r.value), length: r.length };
  });
}
