// p11-kit RPC framing (p11-kit/rpc-transport.c: p11_rpc_transport_read / _write, rpc_socket_read):
// a 12-byte header of three big-endian uint32 — the call code (a per-connection sequence number
// chosen by the client and echoed back by the server), the options length, the body length —
// then the options bytes, then the body. p11-kit's client puts its module name in the options
// of each request; servers answer with empty options and ignore the client's.
//
// Before all frames the client sends one version byte and the server answers one
// (negotiateVersion in calls.ts); that exchange is not framed and is left to the transport.

import { FrameError, FrameReader, serializeFrame as serializeTransportFrame } from '../frame.js';
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
  return serializeTransportFrame({ callCode, options, body });
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
 * its 12 bytes are in — its payload is never kept. The transport's FrameReader does the work.
 */
export class FrameParser {
  private readonly reader: FrameReader;
  private failure: P11KitCodecError | null = null;
  private consumed = 0;

  constructor(limits: FrameLimits = {}) {
    const maxBody = limits.maxBodyLength ?? DEFAULT_MAX_BODY_LENGTH;
    const maxOptions = limits.maxOptionsLength ?? DEFAULT_MAX_OPTIONS_LENGTH;
    this.reader = new FrameReader(maxBody + maxOptions, undefined, { maxOptions, maxBody });
  }

  /** Bytes held for a frame not yet complete. */
  get pendingBytes(): number {
    return this.reader.pendingBytes;
  }

  push(chunk: Buffer): FrameParseResult {
    const frames: Frame[] = [];
    if (this.failure) return { frames, error: this.failure };
    this.reader.push(chunk);
    try {
      for (let frame = this.reader.next(); frame; frame = this.reader.next()) {
        this.consumed += FRAME_HEADER_LENGTH + frame.options.length + frame.body.length;
        frames.push({ callCode: frame.callCode, options: frame.options, body: frame.body });
      }
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      this.failure = new P11KitCodecError(P11KitErrorCode.FrameTooLarge, error.message, { fatal: true, offset: this.consumed });
      return { frames, error: this.failure };
    }
    return { frames, error: null };
  }
}
