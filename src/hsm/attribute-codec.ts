// The storage encoding of attributes: the clear attribute blob of a stored object and, sealed,
// its secret part. Records: u32 type, u8 kind, u32 length, payload. Independent of SQLite.

import { attributeKind, type Attribute, type AttributeKind, type AttributeValue } from '../pkcs11/attributes.js';

const KIND_CODE: Record<AttributeKind, number> = { bool: 1, ulong: 2, bytes: 3, date: 4, template: 5, mechanisms: 6 };
const CODE_KIND = new Map(Object.entries(KIND_CODE).map(([k, v]) => [v, k as AttributeKind]));

function encodeValue(kind: AttributeKind, value: AttributeValue): Buffer {
  switch (kind) {
    case 'bool':
      return Buffer.from([value ? 1 : 0]);
    case 'ulong': {
      const b = Buffer.alloc(8);
      // -1 is CK_UNAVAILABLE_INFORMATION (~0UL).
      b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(value as number)));
      return b;
    }
    case 'bytes':
    case 'date':
      return value as Buffer;
    case 'template':
      return encodeAttributes(new Map((value as readonly Attribute[]).map((a) => [a.type, a.value])));
    case 'mechanisms': {
      const list = value as readonly number[];
      const b = Buffer.alloc(8 * list.length);
      list.forEach((m, i) => b.writeBigUInt64LE(BigInt(m), i * 8));
      return b;
    }
  }
}

export function encodeAttributes(attributes: ReadonlyMap<number, AttributeValue>): Buffer {
  const parts: Buffer[] = [];
  for (const [type, value] of attributes) {
    const kind = attributeKind(type);
    if (kind === undefined) throw new Error(`cannot encode unknown attribute 0x${type.toString(16)}`);
    const payload = encodeValue(kind, value);
    const head = Buffer.alloc(9);
    head.writeUInt32BE(type >>> 0, 0);
    head.writeUInt8(KIND_CODE[kind], 4);
    head.writeUInt32BE(payload.length, 5);
    parts.push(head, payload);
  }
  return Buffer.concat(parts);
}

/** Throws a plain Error on malformed input: the caller (store load) reports it as a device error. */
export function decodeAttributes(blob: Buffer): Map<number, AttributeValue> {
  const out = new Map<number, AttributeValue>();
  let at = 0;
  while (at < blob.length) {
    if (at + 9 > blob.length) throw new Error('truncated attribute record');
    const type = blob.readUInt32BE(at);
    const kind = CODE_KIND.get(blob.readUInt8(at + 4));
    const length = blob.readUInt32BE(at + 5);
    at += 9;
    if (kind === undefined || at + length > blob.length) throw new Error('malformed attribute record');
    const payload = Buffer.from(blob.subarray(at, at + length));
    at += length;
    let value: AttributeValue;
    switch (kind) {
      case 'bool': value = payload[0] === 1; break;
      case 'ulong': { const n = payload.readBigUInt64LE(); value = n === 0xffffffffffffffffn ? -1 : Number(n); break; }
      case 'bytes': case 'date': value = payload; break;
      case 'template': value = [...decodeAttributes(payload)].map(([t, v]) => ({ type: t, value: v })); break;
      case 'mechanisms': {
        const list: number[] = [];
        for (let i = 0; i + 8 <= payload.length; i += 8) list.push(Number(payload.readBigUInt64LE(i)));
        value = list;
        break;
      }
    }
    out.set(type, value);
  }
  return out;
}
