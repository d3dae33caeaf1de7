// Mutation fuzzing of the decoder with the captured real messages as seeds (seeded PRNG, so a
// failure replays). Properties: nothing throws, every failure is a coded value, decoding is
// bounded by its input (decoded byte strings are views into the input, item counts never exceed
// the input length), and whatever decodes re-encodes to something that decodes the same.

import { FrameParser } from '../../support/frame-parser.js';
import { describe, expect, it } from 'vitest';
import {
  P11KitErrorCode, decodeRequest, decodeResponse, encodeRequest, encodeResponse,
  type CallName, type Result,
} from '../../../src/protocol/p11kit/index.js';
import { loadCaptures } from './captured.js';
import { bytes, frameBytes } from './fixture-writer.js';

const ITERATIONS = Number(process.env.FUZZ_N ?? 10_000);
const CODES = new Set<string>(Object.values(P11KitErrorCode));

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Seed {
  body: Buffer;
  call: CallName;
  request: boolean;
  mechanismType?: number;
}

function seeds(): Seed[] {
  const out: Seed[] = [];
  for (const c of loadCaptures()) {
    for (const s of c.sessions) {
      for (const ex of s.exchanges) {
        const req = Buffer.from(ex.request.body, 'hex');
        const decoded = decodeRequest(req);
        if (!decoded.ok) continue;
        const mech = (decoded.value.args as { mechanism?: { type: number } | null }).mechanism;
        out.push({ body: req, call: decoded.value.call, request: true });
        if (ex.response) out.push({ body: Buffer.from(ex.response.body, 'hex'), call: decoded.value.call, request: false, mechanismType: mech?.type });
      }
    }
  }
  // Hand-made seeds for shapes the real client never sends (v2 mechanisms, nested templates).
  out.push({ body: bytes().head(42, 'uMu').u64(1).u32(0x1087).u8(1).arr(Buffer.alloc(12)).u64(96).arr('aad').u64(128).u64(2).build(), call: 'C_SignInit', request: true });
  out.push({ body: bytes().head(62, 'uMuaA').u64(1).u32(0x1050).u64(1).nullArr().arr(Buffer.alloc(65, 4)).u64(3).u32(1).u32(0x40000211).u8(1).u32(24).u32(1).u32(0x100).u8(1).u32(8).u64(0x1f).build(), call: 'C_DeriveKey', request: true });
  out.push({ body: bytes().head(89, 'uPu').u64(0).u8(1).u64(42).build(), call: 'C_DeriveKey2', request: false, mechanismType: 0x1050 });
  return out;
}

function mutate(src: Buffer, rnd: () => number): Buffer {
  let b = Buffer.from(src);
  const n = 1 + Math.floor(rnd() * 4);
  for (let k = 0; k < n; k++) {
    const pos = Math.floor(rnd() * Math.max(1, b.length));
    switch (Math.floor(rnd() * 7)) {
      case 0: if (b.length) b[pos] = b[pos]! ^ (1 << Math.floor(rnd() * 8)); break;
      case 1: if (b.length) b[pos] = Math.floor(rnd() * 256); break;
      case 2: b = b.subarray(0, pos); break;
      case 3: b = Buffer.concat([b, Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 16) }, () => Math.floor(rnd() * 256)))]); break;
      case 4: if (b.length >= pos + 4) b.writeUInt32BE([0xffffffff, 0x7fffffff, 0x7ffffffe, 0x10000000, 0xffff, 0][Math.floor(rnd() * 6)]!, pos); break;
      case 5: { const end = Math.min(b.length, pos + 1 + Math.floor(rnd() * 8)); b = Buffer.concat([b.subarray(0, pos), b.subarray(end)]); break; }
      case 6: { const end = Math.min(b.length, pos + 1 + Math.floor(rnd() * 16)); b = Buffer.concat([b.subarray(0, end), b.subarray(pos, end), b.subarray(end)]); break; }
    }
  }
  return b;
}

/** Sums decoded bytes and item counts, and checks byte strings are views into `input`. */
function measure(v: unknown, input: Buffer): number {
  if (Buffer.isBuffer(v)) {
    expect(v.buffer === input.buffer || v.length === 0, 'decoded bytes are views into the input').toBe(true);
    return v.length;
  }
  if (Array.isArray(v)) return v.length + v.reduce((a: number, x) => a + measure(x, input), 0);
  if (typeof v === 'object' && v !== null) return Object.values(v).reduce((a: number, x) => a + measure(x, input), 0);
  return 0;
}

function checkResult(r: Result<unknown>, input: Buffer): r is { ok: true; value: unknown } {
  if (!r.ok) {
    expect(CODES.has(r.error.code), r.error.code).toBe(true);
    expect(typeof r.error.rv).toBe('number');
    return false;
  }
  expect(measure(r.value, input)).toBeLessThanOrEqual(2 * input.length);
  return true;
}

describe('fuzz: mutated captured messages', () => {
  it(`${ITERATIONS} mutations never throw, hang or over-allocate`, () => {
    const corpus = seeds();
    expect(corpus.length).toBeGreaterThan(500);
    const rnd = mulberry32(Number(process.env.FUZZ_SEED ?? 0x11c0de));
    const started = Date.now();
    let slowest = 0;
    let decodedOk = 0;
    for (let i = 0; i < ITERATIONS; i++) {
      const seed = corpus[Math.floor(rnd() * corpus.length)]!;
      const input = mutate(seed.body, rnd);
      const version = Math.floor(rnd() * 3);
      const decode = () => (seed.request ? decodeRequest(input, { version }) : decodeResponse(input, seed.call, { version, mechanismType: seed.mechanismType }));
      let t0 = performance.now();
      let r: Result<unknown>;
      try {
        r = decode();
      } catch (e) {
        throw new Error(`iteration ${i}: decoder threw ${String(e)} on ${input.toString('hex')}`, { cause: e });
      }
      let took = performance.now() - t0;
      // A slow decode is timed again (at most twice more, the fastest counts): an input that makes
      // the decoder slow is slow each time, a busy machine or a garbage collection only once.
      for (let again = 0; again < 2 && took >= 250; again++) {
        t0 = performance.now();
        decode();
        took = Math.min(took, performance.now() - t0);
      }
      slowest = Math.max(slowest, took);
      if (!checkResult(r, input)) continue;
      decodedOk++;
      // Whatever decodes re-encodes (or refuses with a code) and decodes back the same.
      const enc = seed.request ? encodeRequest(r.value as never, { version }) : encodeResponse(r.value as never);
      if (!enc.ok) {
        expect(CODES.has(enc.error.code)).toBe(true);
        continue;
      }
      const again = seed.request ? decodeRequest(enc.value, { version }) : decodeResponse(enc.value, seed.call, { version, mechanismType: seed.mechanismType });
      expect(again.ok && again.value, `iteration ${i}: re-decoding ${input.toString('hex')}`).toEqual(r.value);
    }
    if (process.env.FUZZ_STATS) console.log({ decodedOk, slowest });
    expect(decodedOk).toBeGreaterThan(100);
    expect(slowest).toBeLessThan(250);
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('random bytes into the frame parser never buffer past one frame\'s limit', () => {
    const rnd = mulberry32(0xf4a3e);
    const limits = { maxBodyLength: 4096, maxOptionsLength: 64 };
    for (let i = 0; i < 2_000; i++) {
      const p = new FrameParser(limits);
      const parts: Buffer[] = [];
      for (let k = 0; k < 4; k++) {
        if (rnd() < 0.7) {
          parts.push(frameBytes(Math.floor(rnd() * 1000), Buffer.alloc(Math.floor(rnd() * 200), 1), Buffer.alloc(Math.floor(rnd() * 10), 2)));
        } else {
          parts.push(Buffer.from(Array.from({ length: Math.floor(rnd() * 40) }, () => Math.floor(rnd() * 256))));
        }
      }
      const stream = Buffer.concat(parts);
      let pos = 0;
      while (pos < stream.length) {
        const len = 1 + Math.floor(rnd() * 64);
        const r = p.push(stream.subarray(pos, pos + len));
        pos += len;
        for (const f of r.frames) {
          expect(f.body.length).toBeLessThanOrEqual(limits.maxBodyLength);
          expect(f.options.length).toBeLessThanOrEqual(limits.maxOptionsLength);
        }
        expect(p.pendingBytes).toBeLessThanOrEqual(12 + limits.maxBodyLength + limits.maxOptionsLength + 64);
        if (r.error) {
          expect(r.error.code).toBe(P11KitErrorCode.FrameTooLarge);
          break;
        }
      }
    }
  });
});
