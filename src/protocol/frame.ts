// The request/response frame of the command layer, as p11-kit's RPC transport frames it:
// a 12-byte header of three big-endian uint32 — call code (echoed back in the response),
// options length, body length — then the options, then the body. The datapath frames; it
// never looks inside the body.

import { NtlsError } from '../errors/ntls-error.js';

export const FRAME_HEADER_BYTES = 12;
/**
 * A declared length (options + body) above this, 2 GiB, is a malformed header: no client sends
 * that much in one call. Readers refuse smaller requests over their own limit through admission,
 * skipping their bytes, so that the call alone fails and the link goes on.
 */
export const MALFORMED_FRAME_BYTES = 0x7fffffff;

export interface Frame {
  callCode: number;
  options: Buffer;
  body: Buffer;
  /**
   * Set on a request whose payload was not kept (no memory for it): its bytes were skipped, but
   * for `head`, the body's first REFUSED_HEAD_BYTES, enough to name the call and its session.
   */
  refused?: { declaredBytes: number; head: Buffer };
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
 * What a reader may keep. `admit` is asked once a header has arrived whether its payload may be
 * read at all; `hold` as the payload's bytes arrive, before they are kept, so memory is
 * accounted for what is really held, never for what a peer merely declares; `release` gives back
 * what was held of a frame refused part way. A frame delivered whole hands its held bytes to the
 * caller, who gives them back once done with it.
 */
/** What a refused frame keeps of its body: the call id, the signature and the first argument. */
export const REFUSED_HEAD_BYTES = 64;

export interface FrameAdmission {
  admit(length: number): boolean;
  hold?(bytes: number): boolean;
  release?(bytes: number): void;
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
  /** The body's first bytes of a frame being skipped. */
  private head: Buffer[] = [];
  /** Payload bytes of the current frame accounted through `hold`. */
  private held = 0;
  private readonly admission: FrameAdmission;

  /**
   * `admit`, a function or a FrameAdmission: when it says no (at the header, or as bytes arrive),
   * the payload's bytes are skipped as they come and the frame is delivered empty with `refused`
   * set, so the caller can answer it without ever holding it.
   */
  constructor(
    private readonly maxFrameBytes: number,
    admit: ((length: number) => boolean) | FrameAdmission = () => true,
    /** Optional separate bounds on the options and the body. */
    private readonly parts: { maxOptions?: number; maxBody?: number } = {},
  ) {
    this.admission = typeof admit === 'function' ? { admit } : admit;
  }

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
      this.keepHead(chunk.subarray(0, dropped));
      this.skipped += dropped;
      chunk = chunk.subarray(dropped);
      if (chunk.length === 0) return;
    } else if (this.header) {
      const payload = this.header.optionsLength + this.header.bodyLength;
      const more = Math.min(chunk.length, payload - this.held);
      if (more > 0 && !this.hold(more)) {
        this.refuseCurrent([...this.chunks.splice(0), chunk]);
        return;
      }
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
      const payload = optionsLength + bodyLength;
      this.header = { callCode: head.readUInt32BE(0), optionsLength, bodyLength, skip: false };
      this.held = 0;
      const already = Math.min(this.buffered, payload);
      if (!this.admission.admit(payload) || (already > 0 && !this.hold(already))) this.refuseCurrent(this.chunks.splice(0));
    }
    const { callCode, optionsLength, bodyLength, skip } = this.header;
    if (skip) {
      if (this.skipped < optionsLength + bodyLength) return null;
      this.header = null;
      const head = Buffer.concat(this.head.splice(0));
      return { callCode, options: Buffer.alloc(0), body: Buffer.alloc(0), refused: { declaredBytes: optionsLength + bodyLength, head } };
    }
    if (this.buffered < optionsLength + bodyLength) return null;
    const options = this.take(optionsLength);
    const body = this.take(bodyLength);
    this.header = null;
    this.held = 0;
    return { callCode, options, body };
  }

  private hold(bytes: number): boolean {
    if (!this.admission.hold) {
      this.held += bytes;
      return true;
    }
    if (!this.admission.hold(bytes)) return false;
    this.held += bytes;
    return true;
  }

  /** Of `bytes`, skipped from payload offset `this.skipped` on, those within the body's first REFUSED_HEAD_BYTES. */
  private keepHead(bytes: Buffer): void {
    const start = this.header!.optionsLength;
    const from = Math.max(start, this.skipped);
    const to = Math.min(start + REFUSED_HEAD_BYTES, this.skipped + bytes.length);
    if (to > from) this.head.push(Buffer.from(bytes.subarray(from - this.skipped, to - this.skipped)));
  }

  /** The current frame is refused: what was held of it goes back, and `pending` is re-read as skipped bytes first. */
  private refuseCurrent(pending: Buffer[]): void {
    if (this.held > 0) this.admission.release?.(this.held);
    this.held = 0;
    this.header!.skip = true;
    this.skipped = 0;
    this.head = [];
    this.buffered = 0;
    for (const chunk of pending) this.push(chunk);
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
