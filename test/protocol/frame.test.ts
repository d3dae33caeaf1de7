import { describe, expect, it } from 'vitest';
import { FrameError, FrameReader, serializeFrame } from '../../src/protocol/frame.js';

/** Test-only encoder, independent of serializeFrame. */
function frameBytes(callCode: number, options: number[], body: number[]): Buffer {
  const head = [callCode, options.length, body.length].flatMap((n) => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255]);
  return Buffer.from([...head, ...options, ...body]);
}

describe('FrameReader', () => {
  const bytes = frameBytes(7, [1, 2], [9, 8, 7, 6, 5]);

  it('reads a frame whole', () => {
    const reader = new FrameReader(1024);
    reader.push(bytes);
    expect(reader.next()).toEqual({ callCode: 7, options: Buffer.from([1, 2]), body: Buffer.from([9, 8, 7, 6, 5]) });
    expect(reader.next()).toBeNull();
  });

  it('reads a frame split at every point', () => {
    for (let cut = 0; cut <= bytes.length; cut++) {
      const reader = new FrameReader(1024);
      reader.push(bytes.subarray(0, cut));
      if (cut < bytes.length) expect(reader.next()).toBeNull();
      reader.push(bytes.subarray(cut));
      expect(reader.next()?.body).toEqual(Buffer.from([9, 8, 7, 6, 5]));
    }
  });

  it('reads frames byte by byte and back to back', () => {
    const reader = new FrameReader(1024);
    const two = Buffer.concat([bytes, frameBytes(8, [], [])]);
    const out = [];
    for (const byte of two) {
      reader.push(Buffer.from([byte]));
      for (let f = reader.next(); f; f = reader.next()) out.push(f.callCode);
    }
    expect(out).toEqual([7, 8]);
  });

  it('refuses a declared length over the maximum as soon as the header arrives', () => {
    const reader = new FrameReader(100);
    reader.push(frameBytes(1, [], []).fill(0xff, 8, 12));
    expect(() => reader.next()).toThrow(FrameError);
    try {
      reader.next();
    } catch (error) {
      expect((error as FrameError).code).toBe('NTLS_ERR_FRAME_TOO_LARGE');
    }
  });

  it('counts options and body together against the maximum', () => {
    const reader = new FrameReader(10);
    reader.push(frameBytes(1, [0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0]));
    expect(() => reader.next()).toThrow(FrameError);
  });

  it('takes the version byte ahead of the first frame', () => {
    const reader = new FrameReader(1024);
    reader.push(Buffer.concat([Buffer.from([1]), bytes]));
    expect(reader.takeByte()).toBe(1);
    expect(reader.next()?.callCode).toBe(7);
  });

  it('serializeFrame produces what the independent encoder does', () => {
    expect(serializeFrame({ callCode: 7, options: Buffer.from([1, 2]), body: Buffer.from([9, 8, 7, 6, 5]) })).toEqual(bytes);
  });
});

describe('FrameReader with an admission check', () => {
  it('skips the payload of a refused frame without keeping it, then reads the next frame', () => {
    const admitted: number[] = [];
    const reader = new FrameReader(1 << 20, (length) => {
      admitted.push(length);
      return length < 100;
    });
    const big = frameBytes(5, [], Array.from({ length: 500 }, () => 7));
    const small = frameBytes(6, [], [1, 2, 3]);
    const stream = Buffer.concat([big, small]);
    const out = [];
    for (let i = 0; i < stream.length; i += 37) {
      reader.push(stream.subarray(i, i + 37));
      expect(reader.pendingBytes).toBeLessThan(100);
      for (let f = reader.next(); f; f = reader.next()) out.push(f);
    }
    expect(out).toEqual([
      // The body's first 64 bytes are kept across the chunks: they name the call and its session.
      { callCode: 5, options: Buffer.alloc(0), body: Buffer.alloc(0), refused: { declaredBytes: 500, head: Buffer.alloc(64, 7) } },
      { callCode: 6, options: Buffer.alloc(0), body: Buffer.from([1, 2, 3]) },
    ]);
    expect(admitted).toEqual([500, 3]);
  });
});
