// The request/response frame of the command layer, as p11-kit's RPC transport frames it:
// a 12-byte header of three big-endian uint32 — call code (echoed back in the response),
// options length, body length — then the options, then the body. The datapath frames; it
// never looks inside the body.

import { NtlsError } from '../errors/ntls-error.js';

export const FRAME_HEADER_BYTES = 12;

export interface Frame {
  callCode: number;
  options: Buffer;
  body: Buffer;
  /** Set on a request whose payload was not kept (no memory for it): its bytes were skipped. */
  refused?: { declaredBytes: number };
}

export class FrameError extends NtlsError {
  declare readonly code: 'NTLS_ERR_FRAME_TOO_LARGE';
  constructor(code: 'NTLS_ERR_FRAME_TOO_LARGE', detail: string) {
    super(code, detail);
  }
}

export function serializeFrame(frame: Frame): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + frame.options.length + frame.body.length);
  out.writeUInt32BE(frame.callCode >>> 0, 0);
  out.writeUInt32BE(frame.options.length, 4);
  out.writeUInt32BE(frame.body.length, 8);
  frame.options.copy(out, FRAME_HEADER_BYTES);
  frame.body.copy(out, FRAME_HEADER_BYTES + frame.options.length);
  return out;
}

/**
 * Turns a byte stream into frames. The declared lengths are checked against `maxFrameBytes`
 * when the header arrives, before any payload is kept; a partial tail waits for more chunks.
 */
export class FrameReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private header: { callCode: number; optionsLength: number; bodyLength: number; skip: boolean } | null = null;
  private skipped = 0;

  /**
   * `admit(length)` is asked, once a header has arrived, whether the payload may be kept; when
   * it says no, the payload's bytes are skipped as they come and the frame is delivered empty
   * with `refused` set, so the caller can answer it without ever holding it.
   */
  constructor(
    private readonly maxFrameBytes: number,
    private readonly admit: (length: number) => boolean = () => true,
    /** Optional separate bounds on the options and the body. */
    private readonly parts: { maxOptions?: number; maxBody?: number } = {},
  ) {}

  /** Bytes held waiting for the rest of a frame. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /** True once a header has been read and its payload is awaited. */
  get inCommand(): boolean {
    return this.header !== null;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.header?.skip) {
      const wanted = this.header.optionsLength + this.header.bodyLength - this.skipped;
      const dropped = Math.min(wanted, chunk.length);
      this.skipped += dropped;
      chunk = chunk.subarray(dropped);
      if (chunk.length === 0) return;
    }
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /** Takes one byte ahead of the frames (p11-kit's version byte), or null if none is buffered. */
  takeByte(): number | null {
    if (this.header || this.buffered === 0) return null;
    return this.take(1)[0]!;
  }

  /** The next complete frame, or null when more bytes are needed. Throws FrameError on a bad header. */
  next(): Frame | null {
    if (!this.header) {
      if (this.buffered < FRAME_HEADER_BYTES) return null;
      const head = this.take(FRAME_HEADER_BYTES);
      const optionsLength = head.readUInt32BE(4);
      const bodyLength = head.readUInt32BE(8);
      if (optionsLength + bodyLength > this.maxFrameBytes
        || optionsLength > (this.parts.maxOptions ?? Infinity) || bodyLength > (this.parts.maxBody ?? Infinity)) {
        throw new FrameError('NTLS_ERR_FRAME_TOO_LARGE', `frame of ${optionsLength + bodyLength} bytes exceeds ${this.maxFrameBytes}`);
      }
      const skip = !this.admit(optionsLength + bodyLength);
      this.header = { callCode: head.readUInt32BE(0), optionsLength, bodyLength, skip };
      if (skip) {
        this.skipped = 0;
        // Bytes already buffered beyond the header count against the skip.
        const buffered = this.chunks.splice(0);
        this.buffered = 0;
        for (const chunk of buffered) this.push(chunk);
      }
    }
    const { callCode, optionsLength, bodyLength, skip } = this.header;
    if (skip) {
      if (this.skipped < optionsLength + bodyLength) return null;
      this.header = null;
      return { callCode, options: Buffer.alloc(0), body: Buffer.alloc(0), refused: { declaredBytes: optionsLength + bodyLength } };
    }
    if (this.buffered < optionsLength + bodyLength) return null;
    const options = this.take(optionsLength);
    const body = this.take(bodyLength);
    this.header = null;
    return { callCode, options, body };
  }

  private take(length: number): Buffer {
    if (length === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    if (first.length >= length) {
      const out = first.subarray(0, length);
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
      this.buffered -= length;
      return out;
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[0]!;
      const part = Math.min(chunk.length, length - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      if (part === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(part);
    }
    this.buffered -= length;
    return out;
  }
}

/**
 * Cuts a p11-kit byte stream into write units that end at frame ends, for a relay: p11-kit's
 * client writes a request's header and body separately, and each local read forwarded as it came
 * would be a TLS record of its own (and, with delayed ACKs, a stall). The leading bytes (the
 * version byte) are a unit of their own. A frame larger than `maxHeldBytes` is passed on as it
 * arrives, so the relay never holds more than that.
 */
export class FrameBatcher {
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  /** Bytes of `held` that end on a unit boundary. */
  private completeBytes = 0;
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerFilled = 0;
  /** Bytes left in the current unit's payload (or in the leading bytes). */
  private remaining: number;
  private inPayload: boolean;

  constructor(leadingBytes: number, private readonly maxHeldBytes = 256 * 1024) {
    this.remaining = leadingBytes;
    this.inPayload = leadingBytes > 0;
  }

  /** Takes a chunk; returns the bytes ready to go out in one write, or null. */
  push(chunk: Buffer): Buffer | null {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.inPayload) {
        const part = Math.min(this.remaining, chunk.length - offset);
        this.remaining -= part;
        offset += part;
        if (this.remaining === 0) {
          this.inPayload = false;
          this.completeBytes = this.heldBytes + offset;
        }
        continue;
      }
      const part = Math.min(FRAME_HEADER_BYTES - this.headerFilled, chunk.length - offset);
      chunk.copy(this.header, this.headerFilled, offset, offset + part);
      this.headerFilled += part;
      offset += part;
      if (this.headerFilled < FRAME_HEADER_BYTES) continue;
      this.headerFilled = 0;
      this.remaining = this.header.readUInt32BE(4) + this.header.readUInt32BE(8);
      this.inPayload = this.remaining > 0;
      if (!this.inPayload) this.completeBytes = this.heldBytes + offset;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    return this.release();
  }

  private release(): Buffer | null {
    const cut = this.heldBytes > this.maxHeldBytes ? this.heldBytes : this.completeBytes;
    if (cut === 0) return null;
    const all = this.held.length === 1 ? this.held[0]! : Buffer.concat(this.held, this.heldBytes);
    this.held.length = 0;
    const rest = all.subarray(cut);
    if (rest.length) this.held.push(rest);
    this.heldBytes = rest.length;
    this.completeBytes = 0;
    return all.subarray(0, cut);
  }
}
