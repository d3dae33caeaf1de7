// The bridge for stock PKCS#11 programs: p11-kit's client module speaks the p11-kit RPC
// protocol to its "remote" (a command on stdin/stdout, or a unix socket); the relay opens the
// mutual-TLS link to ntls, performs the identity exchange, then passes bytes both ways. Requests
// go to the server a whole frame per write (one TLS record), answers come back as they arrive.
import { existsSync, rmSync } from 'node:fs';
import { listenOwnerOnly } from '../local-socket/listen-owner-only.js';
import { createServer, type Server, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Readable, Writable } from 'node:stream';
import { FrameBatcher } from '../protocol/frame.js';
import { openIdentifiedLink, type LinkOptions } from './link.js';

/** p11-kit's client sends one version byte before its first frame. */
const P11KIT_VERSION_BYTES = 1;

export interface RelayHooks {
  /** Called with each link's TLS socket once it is open (tests read its socket options). */
  onLink?(socket: TLSSocket): void;
}

/** Joins a local stream pair to a fresh link; resolves when either side ends. */
export async function relayStreams(input: Readable, output: Writable, options: LinkOptions, hooks: RelayHooks = {}): Promise<void> {
  const { socket, initial } = await openIdentifiedLink(options);
  hooks.onLink?.(socket);
  if (initial.length) output.write(initial);
  forwardFrames(input, socket);
  socket.pipe(output, { end: false });
  socket.resume();
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    input.once('end', () => socket.end());
  });
}

/**
 * Serves a unix socket (owner-only); each connection on it gets its own link to ntls, so each
 * PKCS#11 program using P11_KIT_SERVER_ADDRESS=unix:path=... has its own sessions and login.
 */
export async function serveRelay(path: string, options: LinkOptions, onError: (error: Error) => void, hooks: RelayHooks = {}): Promise<Server> {
  if (existsSync(path)) rmSync(path, { force: true });
  const server = createServer((local: Socket) => {
    local.pause();
    openIdentifiedLink(options).then(({ socket, initial }) => {
      hooks.onLink?.(socket);
      if (initial.length) local.write(initial);
      forwardFrames(local, socket);
      socket.pipe(local);
      const end = () => {
        local.destroy();
        socket.destroy();
      };
      for (const side of [local, socket]) {
        side.once('close', end);
        side.on('error', end);
      }
      local.resume();
      socket.resume();
    }, (error: Error) => {
      onError(error);
      local.destroy();
    });
  });
  await listenOwnerOnly(server, path);
  return server;
}

/** Local bytes to the link, cut at frame ends; waits for `drain` when the link is full. */
function forwardFrames(local: Readable, link: Writable): void {
  const batcher = new FrameBatcher(P11KIT_VERSION_BYTES);
  local.on('data', (chunk: Buffer) => {
    const unit = batcher.push(chunk);
    if (unit && !link.write(unit)) {
      local.pause();
      link.once('drain', () => local.resume());
    }
  });
}
