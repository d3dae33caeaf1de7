// The little DER PKCS#11 needs around EC keys, on both sides (the HSM, and the client building a
// public key from its attributes): CKA_EC_PARAMS (an OID or a PrintableString)
// and CKA_EC_POINT (an OCTET STRING). Anything larger goes through node:crypto's own parsers.

const TAG_OCTET_STRING = 0x04;

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One TLV; returns null unless `der` is exactly one well-formed element (definite length). */
export function readElement(der: Buffer): { tag: number; value: Buffer } | null {
  if (der.length < 2) return null;
  const tag = der[0]!;
  let length = der[1]!;
  let offset = 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    if (count === 0 || count > 4 || der.length < 2 + count) return null;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + der[2 + i]!;
    if (length < 0x80) return null; // not minimal: DER forbids it
    offset += count;
  }
  if (offset + length !== der.length) return null;
  return { tag, value: der.subarray(offset) };
}

/** The elements `content` (a SEQUENCE's content, say) is made of; null unless it is exactly such a run. */
export function readElements(content: Buffer): Array<{ tag: number; value: Buffer }> | null {
  const elements: Array<{ tag: number; value: Buffer }> = [];
  for (let offset = 0; offset < content.length;) {
    if (content.length - offset < 2) return null;
    const first = content[offset + 1]!;
    const count = first & 0x80 ? first & 0x7f : 0;
    if (count > 4 || content.length - offset < 2 + count) return null;
    let length = first & 0x80 ? 0 : first;
    for (let i = 0; i < count; i++) length = length * 256 + content[offset + 2 + i]!;
    const element = readElement(content.subarray(offset, offset + 2 + count + length));
    if (!element || offset + 2 + count + length > content.length) return null;
    elements.push(element);
    offset += 2 + count + length;
  }
  return elements;
}

export function encodeElement(tag: number, value: Buffer): Buffer {
  return Buffer.concat([Buffer.from([tag]), encodeLength(value.length), value]);
}

export function octetString(value: Buffer): Buffer {
  return encodeElement(TAG_OCTET_STRING, value);
}

/** The content of a DER OCTET STRING, or null when `der` is not one. */
export function readOctetString(der: Buffer): Buffer | null {
  const element = readElement(der);
  return element && element.tag === TAG_OCTET_STRING ? element.value : null;
}

const OID_EC_PUBLIC_KEY = Buffer.from('06072a8648ce3d0201', 'hex');

/** SubjectPublicKeyInfo of an EC point on the named curve `params` (its DER OID), unchecked. */
export function ecSubjectPublicKeyInfo(params: Buffer, point: Buffer): Buffer {
  return encodeElement(0x30, Buffer.concat([
    encodeElement(0x30, Buffer.concat([OID_EC_PUBLIC_KEY, params])),
    encodeElement(0x03, Buffer.concat([Buffer.from([0]), point])),
  ]));
}
