// Test-only byte builder for p11-kit RPC fixtures. It knows nothing of the codec under test:
// every byte is spelled out from p11-kit's rpc-message.c rules, so a codec bug cannot hide
// behind the same bug in the fixture.

export class Bytes {
  private parts: Buffer[] = [];

  u8(v: number): this {
    this.parts.push(Buffer.from([v & 0xff]));
    return this;
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v >>> 0);
    this.parts.push(b);
    return this;
  }

  /** CK_ULONG: uint64 big-endian. */
  u64(v: number | bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(v));
    this.parts.push(b);
    return this;
  }

  raw(v: Buffer | number[] | string): this {
    this.parts.push(typeof v === 'string' ? Buffer.from(v, 'latin1') : Buffer.from(v));
    return this;
  }

  /** Byte array: uint32 length then bytes. */
  arr(v: Buffer | string): this {
    const b = typeof v === 'string' ? Buffer.from(v, 'latin1') : v;
    return this.u32(b.length).raw(b);
  }

  /** NULL byte array marker. */
  nullArr(): this {
    return this.u32(0xffffffff);
  }

  /** `ay` with data. */
  ay(v: Buffer | string): this {
    return this.u8(1).arr(v);
  }

  /** `ay` without data (NULL), carrying a length. */
  ayNull(length = 0): this {
    return this.u8(0).u32(length);
  }

  /** Space-padded string of a fixed size. */
  padded(s: string, size: number): this {
    const b = Buffer.alloc(size, 0x20);
    b.write(s, 'latin1');
    return this.arr(b);
  }

  /** Message head: call id and signature. */
  head(callId: number, signature: string): this {
    return this.u32(callId).arr(signature);
  }

  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export function bytes(): Bytes {
  return new Bytes();
}

/** A frame: 12-byte header (code, options length, body length), options, body. */
export function frameBytes(code: number, body: Buffer, options: Buffer = Buffer.alloc(0)): Buffer {
  return new Bytes().u32(code).u32(options.length).u32(body.length).raw(options).raw(body).build();
}

/** Attribute with validity 1, declared length and raw value bytes already encoded. */
export function attrBytes(type: number, length: number, value: Buffer): Buffer {
  return new Bytes().u32(type).u8(1).u32(length).raw(value).build();
}
