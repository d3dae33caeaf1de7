// The request/response frame of the command layer, as p11-kit's RPC transport frames it:
// a 12-byte header of three big-endian uint32 — call code (echoed back in the response),
// options length, body length — then the options, then the body. The datapath frames; it
// never looks inside the body.

export const FRAME_HEADER_BYTES = 12;

export interface Frame {
  callCode: number;
  options: Buffer;
  body: Buffer;
  /** Set on a request whose payload was not kept (no memory for it): its bytes were skipped. */
  refused?: { declaredBytes: number };
}

export class FrameError extends Error {
  constructor(readonly code: 'NTLS_ERR_FRAME_TOO_LARGE', detail: string) {
    super(detail);
    this.name = 'FrameError';
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
