// The bridge for stock PKCS#11 programs: p11-kit's client module speaks the p11-kit RPC
// protocol to its "remote" (a command on stdin/stdout, or a unix socket); the relay opens the
// mutual-TLS link to ntls, performs the identity exchange, then passes bytes both ways.
import { existsSync, rmSync } from 'node:fs';
import { listenOwnerOnly } from '../local-socket/listen-owner-only.js';
import { createServer, type Server, type Socket } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import { openIdentifiedLink, type LinkOptions } from './link.js';

/** Joins a local stream pair to a fresh link; resolves when either side ends. */
export async function relayStreams(input: Readable, output: Writable, options: LinkOptions): Promise<void> {
  const { socket, initial } = await openIdentifiedLink(options);
  if (initial.length) output.write(initial);
  input.pipe(socket);
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
export async function serveRelay(path: string, options: LinkOptions, onError: (error: Error) => void): Promise<Server> {
  if (existsSync(path)) rmSync(path, { force: true });
  const server = createServer((local: Socket) => {
    local.pause();
    openIdentifiedLink(options).then(({ socket, initial }) => {
      if (initial.length) local.write(initial);
      pipeBoth(local, socket);
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

function pipeBoth(a: Duplex, b: Duplex): void {
  a.pipe(b);
  b.pipe(a);
  const end = () => {
    a.destroy();
    b.destroy();
  };
  a.once('close', end);
  b.once('close', end);
  a.on('error', end);
  b.on('error', end);
}
