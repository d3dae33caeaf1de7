import { FrameParser } from '../../support/frame-parser.js';
import { describe, expect, it } from 'vitest';
import { P11KitErrorCode, checkResponseFrame, serializeFrame, type Frame } from '../../../src/protocol/p11kit/index.js';
import { bytes, frameBytes } from './fixture-writer.js';

const bodyA = bytes().head(11, 'u').u64(7).build();
const bodyB = bytes().head(3, '').build();
const options = Buffer.from('client');

function collect(parser: FrameParser, chunks: Buffer[]): Frame[] {
  const frames: Frame[] = [];
  for (const c of chunks) {
    const r = parser.push(c);
    expect(r.error).toBeNull();
    frames.push(...r.frames);
  }
  return frames;
}

describe('serializeFrame', () => {
  it('writes the 12-byte header, options, body', () => {
    expect(serializeFrame({ callCode: 16, options, body: bodyA })).toEqual(frameBytes(16, bodyA, options));
    expect(serializeFrame({ callCode: 17, options: Buffer.alloc(0), body: bodyB })).toEqual(frameBytes(17, bodyB));
    expect(serializeFrame({ callCode: 1, options: Buffer.alloc(0), body: Buffer.alloc(0) }).toString('hex')).toBe('000000010000000000000000');
  });
});

describe('FrameParser', () => {
  const stream = Buffer.concat([frameBytes(16, bodyA, options), frameBytes(17, bodyB), frameBytes(18, Buffer.alloc(0))]);
  const expected: Frame[] = [
    { callCode: 16, options, body: bodyA },
    { callCode: 17, options: Buffer.alloc(0), body: bodyB },
    { callCode: 18, options: Buffer.alloc(0), body: Buffer.alloc(0) },
  ];

  it('parses frames given whole', () => {
    expect(collect(new FrameParser(), [stream])).toEqual(expected);
  });

  it('parses frames split at every point into two chunks', () => {
    for (let i = 0; i <= stream.length; i++) {
      const p = new FrameParser();
      expect(collect(p, [stream.subarray(0, i), stream.subarray(i)])).toEqual(expected);
      expect(p.pendingBytes).toBe(0);
    }
  });

  it('parses frames split at every pair of points into three chunks', () => {
    for (let i = 0; i <= stream.length; i++) {
      for (let j = i; j <= stream.length; j++) {
        const p = new FrameParser();
        expect(collect(p, [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)])).toEqual(expected);
      }
    }
  });

  it('parses frames fed one byte at a time, keeping the partial tail', () => {
    const p = new FrameParser();
    const frames: Frame[] = [];
    for (let i = 0; i < stream.length; i++) {
      const r = p.push(stream.subarray(i, i + 1));
      frames.push(...r.frames);
    }
    expect(frames).toEqual(expected);
    const partial = new FrameParser();
    expect(partial.push(stream.subarray(0, 20)).frames).toEqual([]);
    expect(partial.pendingBytes).toBe(8);
  });

  it('refuses an oversized body as soon as the header is in, before any payload is kept', () => {
    const p = new FrameParser({ maxBodyLength: 1024 });
    const header = bytes().u32(16).u32(0).u32(1025).build();
    const r = p.push(header);
    expect(r.error?.code).toBe(P11KitErrorCode.FrameTooLarge);
    expect(r.error?.fatal).toBe(true);
    expect(p.pendingBytes).toBe(0);
    // Poisoned: later input is not buffered.
    expect(p.push(Buffer.alloc(4096)).error?.code).toBe(P11KitErrorCode.FrameTooLarge);
    expect(p.pendingBytes).toBe(0);
  });

  it('refuses oversized options, and a 4 GiB declaration with the default limits', () => {
    expect(new FrameParser({ maxOptionsLength: 8 }).push(bytes().u32(1).u32(9).u32(0).build()).error?.code).toBe(P11KitErrorCode.FrameTooLarge);
    expect(new FrameParser().push(bytes().u32(1).u32(0).u32(0xffffffff).build()).error?.code).toBe(P11KitErrorCode.FrameTooLarge);
  });

  it('accepts a body of exactly the maximum', () => {
    const body = Buffer.alloc(64, 7);
    const frames = collect(new FrameParser({ maxBodyLength: 64 }), [frameBytes(5, body)]);
    expect(frames).toEqual([{ callCode: 5, options: Buffer.alloc(0), body }]);
  });
});

describe('checkResponseFrame', () => {
  const frame = (callCode: number): Frame => ({ callCode, options: Buffer.alloc(0), body: Buffer.alloc(0) });
  it('accepts the echoed code, refuses 0 and another code', () => {
    expect(checkResponseFrame(frame(16), 16)).toBeNull();
    expect(checkResponseFrame(frame(0), 16)?.code).toBe(P11KitErrorCode.BadHeader);
    expect(checkResponseFrame(frame(17), 16)?.code).toBe(P11KitErrorCode.CallMismatch);
  });
});
