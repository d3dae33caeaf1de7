// ECDSA signatures in the two encodings users meet: PKCS#11's r‖s (each half the size of the
// curve order, "raw") and the DER SEQUENCE { INTEGER r, INTEGER s } that OpenSSL, X.509 and
// most libraries read ("der": `openssl dgst -verify` takes it).
import { ClientError } from './errors.js';

export const SIGNATURE_FORMATS = ['raw', 'der'] as const;
export type SignatureFormat = (typeof SIGNATURE_FORMATS)[number];

export function isSignatureFormat(value: string): value is SignatureFormat {
  return (SIGNATURE_FORMATS as readonly string[]).includes(value);
}

function derLength(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes: number[] = [];
  for (let n = length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function derInteger(magnitude: Buffer): Buffer {
  let start = 0;
  while (start < magnitude.length - 1 && magnitude[start] === 0) start++;
  let value = magnitude.subarray(start);
  if (value.length === 0) value = Buffer.from([0]);
  if (value[0]! & 0x80) value = Buffer.concat([Buffer.from([0]), value]);
  return Buffer.concat([Buffer.from([0x02]), derLength(value.length), value]);
}

/** r‖s (PKCS#11) to DER. */
export function ecdsaRawToDer(raw: Buffer): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) {
    throw new ClientError('NTLS_ERR_ARGUMENT', `a ${raw.length}-byte signature is not an ECDSA r‖s pair`, 'give --format der only for ECDSA signatures');
  }
  const half = raw.length / 2;
  const body = Buffer.concat([derInteger(raw.subarray(0, half)), derInteger(raw.subarray(half))]);
  return Buffer.concat([Buffer.from([0x30]), derLength(body.length), body]);
}

/** DER to r‖s with halves of `half` bytes (the curve order's size). */
export function ecdsaDerToRaw(der: Buffer, half: number): Buffer {
  const fail = () => new ClientError('NTLS_ERR_ARGUMENT', 'the signature is not a DER ECDSA signature', 'give --format raw for an r‖s signature');
  let at = 0;
  const readLength = (): number => {
    const first = der[at++];
    if (first === undefined) throw fail();
    if (first < 0x80) return first;
    const count = first & 0x7f;
    if (count === 0 || count > 2) throw fail();
    let length = 0;
    for (let i = 0; i < count; i++) length = (length << 8) | (der[at++] ?? 0);
    return length;
  };
  if (der[at++] !== 0x30) throw fail();
  if (readLength() !== der.length - at) throw fail();
  const halves: Buffer[] = [];
  for (let i = 0; i < 2; i++) {
    if (der[at++] !== 0x02) throw fail();
    const length = readLength();
    let value = der.subarray(at, at + length);
    at += length;
    if (value.length !== length) throw fail();
    while (value.length > half && value[0] === 0) value = value.subarray(1);
    if (value.length > half) throw fail();
    halves.push(Buffer.concat([Buffer.alloc(half - value.length), value]));
  }
  if (at !== der.length) throw fail();
  return Buffer.concat(halves);
}
