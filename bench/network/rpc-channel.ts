// The client path both network benchmarks share: p11-kit RPC requests encoded by our codec,
// sent as frames over a socket, answered in order. One channel rides an NTLS link (mutual TLS,
// identity exchange, version byte); the other a plain unix socket to `p11-kit server` (version
// byte, then the same frames). Above the channel everything is identical.
import net from 'node:net';
import type { Link } from '../../src/client/link.js';
import { CKR } from '../../src/pkcs11/constants.js';
import { FrameReader, serializeFrame } from '../../src/protocol/frame.js';
import {
  decodeResponse, encodeRequest, responseRv,
  type P11KitRequest, type RequestCallName, type ResponseArgs,
} from '../../src/protocol/p11kit/index.js';

/** Request bodies in, answer bodies out, in order; requests may be pipelined. */
export interface RpcChannel {
  send(body: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

export function linkChannel(link: Link): RpcChannel {
  return {
    send: (body) => link.request(body).then((frame) => frame.body),
    close: () => link.close(),
  };
}

/** `p11-kit server`'s unix socket: our version byte (0, as bookworm's client), its answer, then frames. */
export async function unixSocketChannel(path: string, timeoutMs = 10_000): Promise<RpcChannel> {
  const socket = net.createConnection(path);
  const frames = new FrameReader(64 * 1024 * 1024);
  const waiting: Array<{ resolve(body: Buffer): void; reject(error: Error): void }> = [];
  let version: number | null = null;
  let nextCallCode = 1;
  let closed: Error | null = null;
  const fail = (error: Error) => {
    closed ??= error;
    for (const waiter of waiting.splice(0)) waiter.reject(error);
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${path}: no version byte within ${timeoutMs} ms`)), timeoutMs);
    socket.once('error', (error) => { clearTimeout(timer); reject(error); });
    socket.on('close', () => { clearTimeout(timer); fail(new Error(`${path}: closed by the server`)); reject(closed ?? new Error(`${path}: closed`)); });
    socket.on('data', (chunk: Buffer) => {
      frames.push(chunk);
      if (version === null) {
        version = frames.takeByte();
        if (version === null) return;
        clearTimeout(timer);
        resolve();
      }
      let frame;
      while ((frame = frames.next())) waiting.shift()?.resolve(frame.body);
    });
    socket.once('connect', () => socket.write(Buffer.from([0])));
  });
  socket.on('error', () => { /* close follows */ });
  return {
    send(body) {
      if (closed) return Promise.reject(closed);
      return new Promise((resolve, reject) => {
        waiting.push({ resolve, reject });
        socket.write(serializeFrame({ callCode: nextCallCode++, options: Buffer.alloc(0), body }));
      });
    },
    close: () => new Promise<void>((resolve) => {
      if (socket.destroyed) return resolve();
      socket.once('close', () => resolve());
      socket.end();
      setTimeout(() => socket.destroy(), 2000).unref();
    }),
  };
}

export class Pkcs11CallError extends Error {
  constructor(readonly call: string, readonly rv: number) {
    super(`${call} answered CKR 0x${rv.toString(16)}`);
    this.name = 'Pkcs11CallError';
  }
}

export function encoded(req: P11KitRequest): Buffer {
  const body = encodeRequest(req);
  if (!body.ok) throw body.error;
  return body.value;
}

/** Decodes an answer; a CKR other than OK (or one of `accepted`) throws. */
export function answerOf<N extends RequestCallName>(call: N, body: Buffer, accepted: readonly number[] = []): ResponseArgs<N> | null {
  const decoded = decodeResponse(body, call);
  if (!decoded.ok) throw decoded.error;
  const rv = responseRv(decoded.value);
  if (rv === CKR.OK) return decoded.value.args as ResponseArgs<N>;
  if (accepted.includes(rv)) return null;
  throw new Pkcs11CallError(call, rv);
}

/** One request, awaited. */
export async function call<N extends RequestCallName>(channel: RpcChannel, req: Extract<P11KitRequest, { call: N }>, accepted: readonly number[] = []): Promise<ResponseArgs<N> | null> {
  return answerOf(req.call, await channel.send(encoded(req)), accepted);
}

/** One request that must answer CKR_OK. */
export async function ok<N extends RequestCallName>(channel: RpcChannel, req: Extract<P11KitRequest, { call: N }>): Promise<ResponseArgs<N>> {
  return (await call(channel, req))!;
}
