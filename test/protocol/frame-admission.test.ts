// FrameReader admission: memory is held for a request's payload as its bytes arrive, never for
// what its header declares; a request refused part way gives back what it held and is skipped.
import { describe, expect, it } from 'vitest';
import { FrameReader, type FrameAdmission } from '../../src/protocol/frame.js';

/** Test-only encoder, independent of serializeFrame. */
function header(callCode: number, bodyLength: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(callCode, 0);
  b.writeUInt32BE(bodyLength, 8);
  return b;
}

/** An admission with a fixed amount of memory, recording what is held. */
function budget(limit: number): FrameAdmission & { held: number; log: string[] } {
  const a = {
    held: 0,
    log: [] as string[],
    admit: (length: number) => { a.log.push(`admit ${length}`); return true; },
    hold: (bytes: number) => {
      if (a.held + bytes > limit) { a.log.push(`refuse ${bytes}`); return false; }
      a.held += bytes;
      a.log.push(`hold ${bytes}`);
      return true;
    },
    release: (bytes: number) => { a.held -= bytes; a.log.push(`release ${bytes}`); },
  };
  return a;
}

describe('FrameReader holding memory as bytes arrive', () => {
  it('a header declaring 1 MiB holds nothing until the bytes come, then exactly what came', () => {
    const a = budget(10 * 1024 * 1024);
    const reader = new FrameReader(4 * 1024 * 1024, a);
    reader.push(header(1, 1024 * 1024));
    expect(reader.next()).toBeNull();
    expect(a.held).toBe(0);
    reader.push(Buffer.alloc(1000));
    expect(a.held).toBe(1000);
    reader.push(Buffer.alloc(1024 * 1024 - 1000));
    const frame = reader.next();
    expect(frame?.body.length).toBe(1024 * 1024);
    expect(frame?.refused).toBeUndefined();
    // A delivered frame's bytes are the caller's to give back.
    expect(a.held).toBe(1024 * 1024);
  });

  it('bytes already buffered with the header are held when the header is read', () => {
    const a = budget(1 << 20);
    const reader = new FrameReader(1 << 20, a);
    reader.push(Buffer.concat([header(2, 100), Buffer.alloc(40)]));
    expect(reader.next()).toBeNull();
    expect(a.log).toEqual(['admit 100', 'hold 40']);
    reader.push(Buffer.concat([Buffer.alloc(60), header(3, 0)]));
    expect(reader.next()?.callCode).toBe(2);
    expect(a.held).toBe(100);
    expect(reader.next()?.callCode).toBe(3);
  });

  it('refused part way: what was held goes back, the rest is skipped, the frame comes out refused, the next one is read', () => {
    const a = budget(500);
    const reader = new FrameReader(1 << 20, a);
    reader.push(header(4, 1000));
    expect(reader.next()).toBeNull();
    reader.push(Buffer.alloc(300));
    expect(a.held).toBe(300);
    reader.push(Buffer.alloc(300));
    expect(a.held).toBe(0);
    reader.push(Buffer.concat([Buffer.alloc(400), header(5, 2), Buffer.from([7, 8])]));
    expect(reader.next()).toEqual({ callCode: 4, options: Buffer.alloc(0), body: Buffer.alloc(0), refused: { declaredBytes: 1000, head: Buffer.alloc(64) } });
    expect(reader.next()).toEqual({ callCode: 5, options: Buffer.alloc(0), body: Buffer.from([7, 8]) });
    expect(a.log).toEqual(['admit 1000', 'hold 300', 'refuse 300', 'release 300', 'admit 2', 'hold 2']);
  });

  it('admit refusing the declared length skips the payload without holding any of it', () => {
    const a = budget(1 << 20);
    a.admit = (length: number) => length <= 10;
    const reader = new FrameReader(1 << 20, a);
    reader.push(Buffer.concat([header(6, 50), Buffer.alloc(50), header(7, 1), Buffer.from([1])]));
    expect(reader.next()?.refused).toEqual({ declaredBytes: 50, head: Buffer.alloc(50) });
    expect(reader.next()?.body).toEqual(Buffer.from([1]));
    expect(a.held).toBe(1);
  });

  it('byte by byte, every split point: the same frames and the same memory held', () => {
    const stream = Buffer.concat([header(8, 5), Buffer.from([1, 2, 3, 4, 5]), header(9, 3), Buffer.from([6, 7, 8])]);
    const a = budget(1 << 20);
    const reader = new FrameReader(1 << 20, a);
    const out: number[] = [];
    for (const byte of stream) {
      reader.push(Buffer.from([byte]));
      for (let f = reader.next(); f; f = reader.next()) out.push(f.callCode);
    }
    expect(out).toEqual([8, 9]);
    expect(a.held).toBe(8);
  });
});
