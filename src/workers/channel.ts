// The channel between the daemon's main process (the command processor, the HSM) and a datapath
// worker (TLS and framing): the worker's connections' requests go in, the answers come back.
// One byte stream per worker; each message is a 9-byte header — u8 kind, u32 connection id,
// u32 payload length (big-endian) — then the payload. Pure: bytes in, messages out.

export const ChannelKind = {
  /** worker → main: a connection passed its identity exchange; payload JSON (ConnectionOpen). */
  Open: 1,
  /** worker → main: the client's p11-kit version byte; payload one byte. */
  Version: 2,
  /** worker → main: a request frame; payload u32 call code, then the body. */
  Request: 3,
  /** main → worker: the answer frame; payload u32 call code, then the body. */
  Answer: 4,
  /** worker → main: a request the worker could not hold, answered there; payload u32 call code. */
  Refused: 5,
  /** worker → main: the connection is gone. */
  Close: 6,
  /** main → worker: end the connection (revocation, keepalive). */
  Terminate: 7,
  /**
   * worker → main: a log line (payload JSON: catalogue id and values). On this channel, not the
   * IPC one, so that lunalogs keeps the order of what happened: a connection's lines and its
   * requests' lines come in the order the worker sent them.
   */
  Log: 8,
} as const;
export type ChannelKind = (typeof ChannelKind)[keyof typeof ChannelKind];

export const CHANNEL_HEADER_BYTES = 9;

export interface ChannelMessage {
  kind: ChannelKind;
  connection: number;
  payload: Buffer;
}

/** What the main process learns of a connection the worker opened. */
export interface ConnectionOpen {
  client: string;
  peer: string;
  fingerprint: string;
  local: boolean;
}

export function encodeMessage(kind: ChannelKind, connection: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(CHANNEL_HEADER_BYTES + payload.length);
  out.writeUInt8(kind, 0);
  out.writeUInt32BE(connection >>> 0, 1);
  out.writeUInt32BE(payload.length, 5);
  payload.copy(out, CHANNEL_HEADER_BYTES);
  return out;
}

/** A frame's call code and body as a Request or Answer payload. */
export function framePayload(callCode: number, body: Buffer): Buffer {
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(callCode >>> 0, 0);
  body.copy(out, 4);
  return out;
}

export function readFramePayload(payload: Buffer): { callCode: number; body: Buffer } {
  return { callCode: payload.readUInt32BE(0), body: payload.subarray(4) };
}

/** Turns the byte stream into messages; a partial tail waits for the next chunk. */
export class ChannelReader {
  private buffered: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): ChannelMessage[] {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    const out: ChannelMessage[] = [];
    let at = 0;
    while (this.buffered.length - at >= CHANNEL_HEADER_BYTES) {
      const length = this.buffered.readUInt32BE(at + 5);
      if (this.buffered.length - at < CHANNEL_HEADER_BYTES + length) break;
      out.push({
        kind: this.buffered.readUInt8(at) as ChannelKind,
        connection: this.buffered.readUInt32BE(at + 1),
        payload: this.buffered.subarray(at + CHANNEL_HEADER_BYTES, at + CHANNEL_HEADER_BYTES + length),
      });
      at += CHANNEL_HEADER_BYTES + length;
    }
    this.buffered = at === this.buffered.length ? Buffer.alloc(0) : this.buffered.subarray(at);
    return out;
  }
}

/**
 * Writes messages to a stream, several in one write when they come in the same turn of the
 * event loop: the write waits for the end of the loop's poll phase (setImmediate), so answers
 * to requests read from several sockets, or finished on several threads, in that phase leave in
 * one system call. A write to the other process is its wake-up, the dearest part of the hop.
 */
export class ChannelWriter {
  private queued: Buffer[] = [];
  private scheduled = false;

  constructor(private readonly stream: { write(bytes: Buffer): boolean; destroyed: boolean }) {}

  send(kind: ChannelKind, connection: number, payload: Buffer = Buffer.alloc(0)): void {
    this.queued.push(encodeMessage(kind, connection, payload));
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queued.length === 1 ? this.queued[0]! : Buffer.concat(this.queued);
    this.queued = [];
    if (!this.stream.destroyed) this.stream.write(batch);
  }
}
