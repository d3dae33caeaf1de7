// A test's view of a p11-kit byte stream: push chunks, get the complete frames or the codec's
// error value. It is the transport's FrameReader (src/protocol/frame.ts) with p11-kit's limits.
import { FrameError, FrameReader, type Frame } from '../../src/protocol/frame.js';
import { P11KitCodecError, P11KitErrorCode } from '../../src/protocol/p11kit/index.js';

const FRAME_HEADER_LENGTH = 12;

export interface FrameLimits {
  /** Largest body accepted (default 16 MiB). */
  maxBodyLength?: number;
  /** Largest options accepted (default 4 KiB: p11-kit sends a module name there). */
  maxOptionsLength?: number;
}

const DEFAULT_MAX_BODY_LENGTH = 16 * 1024 * 1024;
const DEFAULT_MAX_OPTIONS_LENGTH = 4096;

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
