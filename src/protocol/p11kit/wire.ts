// The primitive encodings of p11-kit's RPC buffers (p11-kit/rpc-message.c, p11_rpc_buffer_*):
// big-endian uint32, CK_ULONG as big-endian uint64, byte arrays as a uint32 length followed by
// the bytes, with length 0xffffffff meaning a NULL pointer and lengths of 0x7fffffff and more
// refused. The reader never allocates for a declared length before checking that the bytes are
// really there; decoded byte arrays are views into the input, not copies.

import { P11KitCodecError, P11KitErrorCode } from './errors.js';

/** Length marker of a NULL byte array (p11_rpc_buffer_add_byte_array with data == NULL). */
export const NULL_ARRAY_LENGTH = 0xffffffff;
/** p11-kit refuses byte arrays of this length or more, in both directions. */
export const MAX_ARRAY_LENGTH = 0x7ffffffe;

/**
 * CK_ULONG values are plain numbers. (CK_ULONG)-1 — CK_UNAVAILABLE_INFORMATION, the "invalid
 * attribute" length — travels as 0xffffffffffffffff and is represented by -1; any other value
 * above Number.MAX_SAFE_INTEGER is refused rather than silently rounded.
 */
export const ULONG_MINUS_ONE = -1;

const TWO_32 = 0x1_0000_0000;

export class WireReader {
  private readonly data: Buffer;
  private pos: number;
  private readonly end: number;

  constructor(data: Buffer, start = 0, end = data.length) {
    this.data = data;
    this.pos = start;
    this.end = end;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  private need(n: number, what: string): void {
    if (this.end - this.pos < n) {
      throw new P11KitCodecError(P11KitErrorCode.Truncated, `${what} needs ${n} bytes, ${this.end - this.pos} left`, { offset: this.pos });
    }
  }

  byte(): number {
    this.need(1, 'byte');
    return this.data[this.pos++]!;
  }

  uint32(): number {
    this.need(4, 'uint32');
    const v = this.data.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  /** A CK_ULONG (uint64 on the wire). */
  ulong(): number {
    this.need(8, 'uint64');
    const hi = this.data.readUInt32BE(this.pos);
    const lo = this.data.readUInt32BE(this.pos + 4);
    if (hi === 0xffffffff && lo === 0xffffffff) {
      this.pos += 8;
      return ULONG_MINUS_ONE;
    }
    if (hi > 0x1fffff) {
      throw new P11KitCodecError(P11KitErrorCode.UlongRange, `CK_ULONG 0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')} out of range`, { offset: this.pos });
    }
    this.pos += 8;
    return hi * TWO_32 + lo;
  }

  /** A length-prefixed byte array; null for the NULL marker. */
  byteArray(): Buffer | null {
    const at = this.pos;
    const len = this.uint32();
    if (len === NULL_ARRAY_LENGTH) return null;
    if (len > MAX_ARRAY_LENGTH) {
      throw new P11KitCodecError(P11KitErrorCode.BadLength, `byte array length ${len} at or over p11-kit's limit`, { offset: at });
    }
    if (len > this.end - this.pos) {
      throw new P11KitCodecError(P11KitErrorCode.BadLength, `byte array declares ${len} bytes, ${this.end - this.pos} left`, { offset: at });
    }
    const out = this.data.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }

  /**
   * A count of items each at least `minItemSize` bytes long: refused before anything is
   * allocated when the items cannot possibly fit in what remains.
   */
  count(minItemSize: number, what: string): number {
    const at = this.pos;
    const n = this.uint32();
    if (n * minItemSize > this.end - this.pos) {
      throw new P11KitCodecError(P11KitErrorCode.BadLength, `${what} declares ${n} items, only ${this.end - this.pos} bytes left`, { offset: at });
    }
    return n;
  }
}

export class WireWriter {
  private buf: Buffer;
  private len = 0;

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial);
  }

  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }

  get length(): number {
    return this.len;
  }

  byte(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xff) {
      throw new P11KitCodecError(P11KitErrorCode.Unencodable, `byte ${v} out of range`);
    }
    this.reserve(1);
    this.buf[this.len++] = v;
  }

  uint32(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new P11KitCodecError(P11KitErrorCode.Unencodable, `uint32 ${v} out of range`);
    }
    this.reserve(4);
    this.buf.writeUInt32BE(v, this.len);
    this.len += 4;
  }

  ulong(v: number): void {
    this.reserve(8);
    if (v === ULONG_MINUS_ONE) {
      this.buf.writeUInt32BE(0xffffffff, this.len);
      this.buf.writeUInt32BE(0xffffffff, this.len + 4);
    } else {
      if (!Number.isSafeInteger(v) || v < 0) {
        throw new P11KitCodecError(P11KitErrorCode.Unencodable, `CK_ULONG ${v} out of range`);
      }
      this.buf.writeUInt32BE(Math.floor(v / TWO_32), this.len);
      this.buf.writeUInt32BE(v % TWO_32, this.len + 4);
    }
    this.len += 8;
  }

  byteArray(data: Uint8Array | null): void {
    if (data === null) {
      this.uint32(NULL_ARRAY_LENGTH);
      return;
    }
    if (data.length > MAX_ARRAY_LENGTH) {
      throw new P11KitCodecError(P11KitErrorCode.Unencodable, `byte array of ${data.length} bytes over p11-kit's limit`);
    }
    this.uint32(data.length);
    this.raw(data);
  }

  raw(data: Uint8Array): void {
    this.reserve(data.length);
    this.buf.set(data, this.len);
    this.len += data.length;
  }

  /** The bytes written so far (a view; the writer must not be used afterwards). */
  finish(): Buffer {
    return this.buf.subarray(0, this.len);
  }
}
