// `p11-relay --listen` when its link cannot be made, and when its path is taken. A relay whose
// daemon refuses connections answers the program in p11-kit RPC (version byte, then
// CKR_DEVICE_ERROR for each call), as `p11-kit server` does for a module whose C_Initialize
// fails: a socket closed unread kills p11-kit-client.so's program with SIGPIPE. A second relay on
// a live relay's path is refused; a stale socket file is replaced; a relay that stops removes
// only its own socket file.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LinkOptions } from '../../src/client/link.js';
import { serveRelay } from '../../src/client/relay.js';
import { CKR } from '../../src/pkcs11/constants.js';
import { FrameReader, type Frame } from '../../src/protocol/frame.js';
import { P11KitClientCodec, P11KIT_HANDSHAKE, request, responseRv } from '../../src/protocol/p11kit/index.js';
import { makeClient } from '../support/daemon.js';

let folder: string;
let options: LinkOptions;
const servers: Server[] = [];

/** A loopback port nothing listens on: taken from the kernel, then freed. */
async function refusingPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

beforeAll(async () => {
  folder = mkdtempSync(join(tmpdir(), 'ntls-relay-listen-'));
  const client = await makeClient('relay-listen');
  options = {
    host: '127.0.0.1', port: await refusingPort(), clientName: client.name,
    certificatePem: client.certificatePem, keyPem: client.keyPem, serverCertificatePem: client.certificatePem, timeoutMs: 2000,
  };
});
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});
afterAll(() => {
  rmSync(folder, { recursive: true, force: true });
});

async function listen(path: string, errors: Error[] = []): Promise<Server> {
  const server = await serveRelay(path, options, (error) => errors.push(error));
  servers.push(server);
  return server;
}

/** Reads the version byte and frames a relay sends back on `socket`. */
function answers(socket: Socket): { version: () => Promise<number>; frame: () => Promise<Frame> } {
  const reader = new FrameReader(1 << 20);
  let version: number | null = null;
  let wake: (() => void) | null = null;
  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    version ??= reader.takeByte();
    wake?.();
  });
  const until = async <T>(take: () => T | null): Promise<T> => {
    for (;;) {
      const value = take();
      if (value !== null) return value;
      if (socket.destroyed || socket.readableEnded) throw new Error('the relay closed the socket');
      await Promise.race([new Promise<void>((resolve) => (wake = resolve)), once(socket, 'close')]);
    }
  };
  return { version: () => until(() => version), frame: () => until(() => reader.next()) };
}

async function openLocal(path: string): Promise<Socket> {
  const socket = connect(path);
  await once(socket, 'connect');
  return socket;
}

describe('p11-relay --listen, daemon unreachable', () => {
  it('answers the version byte and C_Initialize with CKR_DEVICE_ERROR instead of closing the socket', async () => {
    const path = join(folder, 'down.sock');
    const errors: Error[] = [];
    await listen(path, errors);
    const socket = await openLocal(path);
    try {
      const from = answers(socket);
      socket.write(Buffer.from([0]));
      expect(await from.version()).toBe(0);
      const codec = new P11KitClientCodec({ version: 0, options: Buffer.from('client') });
      const init = codec.request(request('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }));
      if (!init.ok) throw init.error;
      socket.write(init.value.bytes);
      const decoded = codec.response(await from.frame());
      if (!decoded.ok) throw decoded.error;
      expect(responseRv(decoded.value)).toBe(CKR.DEVICE_ERROR);
      // A second call on the same socket is answered alike.
      const again = codec.request(request('C_Finalize', { reservedPresent: 0, reserved: null }));
      if (!again.ok) throw again.error;
      socket.write(again.value.bytes);
      const second = codec.response(await from.frame());
      if (!second.ok) throw second.error;
      expect(responseRv(second.value)).toBe(CKR.DEVICE_ERROR);
      // The relay's error line stays.
      expect(errors.length).toBeGreaterThan(0);
    } finally {
      socket.destroy();
    }
  });
});

/** Whether a relay answers the version byte on `path`. */
async function serves(path: string): Promise<boolean> {
  const socket = await openLocal(path);
  try {
    const from = answers(socket);
    socket.write(Buffer.from([0]));
    return (await from.version()) === 0;
  } finally {
    socket.destroy();
  }
}

describe('p11-relay --listen on a path already in use', () => {
  it('refuses a second relay on a live relay\'s path, and the first still serves', async () => {
    const path = join(folder, 'live.sock');
    const errors: Error[] = [];
    await listen(path, errors);
    await expect(serveRelay(path, options, () => undefined)).rejects.toMatchObject({ code: 'NTLS_ERR_FILE' });
    // The probe sent no byte: the first relay did not try to link for it (no "cannot link" line).
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(errors).toEqual([]);
    expect(existsSync(path)).toBe(true);
    expect(await serves(path)).toBe(true);
  });

  it('replaces a stale socket file (its server killed)', async () => {
    const path = join(folder, 'stale.sock');
    const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await once(child, 'exit');
    expect(existsSync(path)).toBe(true);
    await listen(path);
    expect(await serves(path)).toBe(true);
  });

  it('a relay that stops leaves another relay\'s socket file at its path', async () => {
    const path = join(folder, 'replaced.sock');
    const first = await listen(path);
    rmSync(path);
    await listen(path);
    await new Promise<void>((resolve) => first.close(() => resolve()));
    expect(existsSync(path)).toBe(true);
    expect(await serves(path)).toBe(true);
  });
});
