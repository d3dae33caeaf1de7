// p11-kit RPC framing (p11-kit/rpc-transport.c: p11_rpc_transport_read / _write, rpc_socket_read):
// a 12-byte header of three big-endian uint32 — the call code (a per-connection sequence number
// chosen by the client and echoed back by the server), the options length, the body length —
// then the options bytes, then the body. p11-kit's client puts its module name in the options
// of each request; servers answer with empty options and ignore the client's.
//
// Before all frames the client sends one version byte and the server answers one
// (negotiateVersion in calls.ts); that exchange is not framed and is left to the transport.

import { P11KitCodecError, P11KitErrorCode } from './errors.js';

export const FRAME_HEADER_LENGTH = 12;

export interface Frame {
  callCode: number;
  options: Buffer;
  body: Buffer;
}

export interface FrameLimits {
  /** Largest body accepted (default 16 MiB). */
  maxBodyLength?: number;
  /** Largest options accepted (default 4 KiB: p11-kit sends a module name there). */
  maxOptionsLength?: number;
}

export const DEFAULT_MAX_BODY_LENGTH = 16 * 1024 * 1024;
export const DEFAULT_MAX_OPTIONS_LENGTH = 4096;

const EMPTY = Buffer.alloc(0);

export function serializeFrame(callCode: number, body: Buffer, options: Buffer = EMPTY): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_LENGTH + options.length + body.length);
  out.writeUInt32BE(callCode >>> 0, 0);
  out.writeUInt32BE(options.length, 4);
  out.writeUInt32BE(body.length, 8);
  options.copy(out, FRAME_HEADER_LENGTH);
  body.copy(out, FRAME_HEADER_LENGTH + options.length);
  return out;
}

/**
 * Client side: an answer frame must echo the call code of the request it answers; p11-kit's
 * client takes code 0 for another protocol ("received invalid rpc header values").
 */
export function checkResponseFrame(frame: Frame, sentCallCode: number): P11KitCodecError | null {
  if (frame.callCode === 0) {
    return new P11KitCodecError(P11KitErrorCode.BadHeader, 'answer frame with call code 0: not a p11-kit peer?', { fatal: true });
  }
  if (frame.callCode !== sentCallCode >>> 0) {
    return new P11KitCodecError(P11KitErrorCode.CallMismatch, `answer frame for call code ${frame.callCode}, ${sentCallCode} was sent`, { fatal: true });
  }
  return null;
}

export interface FrameParseResult {
  frames: Frame[];
  /** Set once the stream is unusable; the parser then refuses further input. */
  error: P11KitCodecError | null;
}

/**
 * Streaming parser: push chunks as they arrive, get the complete frames; a partial frame stays
 * buffered for the next push. A header declaring more than the limits is refused as soon as
 * its 12 bytes are in — its payload is never kept.
 */
export class FrameParser {
  private readonly maxBody: number;
  private readonly maxOptions: number;
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Header of the frame being assembled, once its 12 bytes are in. */
  private callCode = 0;
  private optionsLength = -1;
  private bodyLength = 0;
  private failure: P11KitCodecError | null = null;
  private consumed = 0;

  constructor(limits: FrameLimits = {}) {
    this.maxBody = limits.maxBodyLength ?? DEFAULT_MAX_BODY_LENGTH;
    this.maxOptions = limits.maxOptionsLength ?? DEFAULT_MAX_OPTIONS_LENGTH;
  }

  /** Bytes held for a frame not yet complete. */
  get pendingBytes(): number {
    return this.buffered;
  }

  push(chunk: Buffer): FrameParseResult {
    const frames: Frame[] = [];
    if (this.failure) return { frames, error: this.failure };
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.optionsLength < 0) {
        if (this.buffered < FRAME_HEADER_LENGTH) break;
        const header = this.take(FRAME_HEADER_LENGTH);
        const optionsLength = header.readUInt32BE(4);
        const bodyLength = header.readUInt32BE(8);
        if (optionsLength > this.maxOptions || bodyLength > this.maxBody) {
          this.failure = new P11KitCodecError(
            P11KitErrorCode.FrameTooLarge,
            `frame declares ${optionsLength} option and ${bodyLength} body bytes (limits ${this.maxOptions} and ${this.maxBody})`,
            { fatal: true, offset: this.consumed - FRAME_HEADER_LENGTH },
          );
          this.chunks = [];
          this.buffered = 0;
          return { frames, error: this.failure };
        }
        this.callCode = header.readUInt32BE(0);
        this.optionsLength = optionsLength;
        this.bodyLength = bodyLength;
      }
      if (this.buffered < this.optionsLength + this.bodyLength) break;
      const options = this.optionsLength === 0 ? EMPTY : this.take(this.optionsLength);
      const body = this.bodyLength === 0 ? EMPTY : this.take(this.bodyLength);
      frames.push({ callCode: this.callCode, options, body });
      this.optionsLength = -1;
    }
    return { frames, error: null };
  }

  /** Removes n buffered bytes (n <= buffered): a view when one chunk holds them, else a copy. */
  private take(n: number): Buffer {
    this.buffered -= n;
    this.consumed += n;
    const first = this.chunks[0]!;
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, filled, 0, want);
        this.chunks[0] = c.subarray(want);
        filled += want;
      }
    }
    return out;
  }
}
