// No delayed-ACK stall on a request path. p11-kit's client writes a request's header and body
// separately; a relay that forwards each as its own record on a socket with Nagle's algorithm on
// holds the second until the daemon's delayed ACK of the first: up to 40 ms a call. Every socket
// that carries frames must have TCP_NODELAY (read back with getsockopt), and calls through the
// relay must not be paced by the network stack (a ratio against the daemon's local socket in
// the same run, with a wide margin: no wall-clock limit).
import { once } from 'node:events';
import { connect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openLink, type LinkOptions } from '../../src/client/link.js';
import { relayStreams, serveRelay } from '../../src/client/relay.js';
import { runDaemon, type RunningDaemon } from '../../src/daemon/run.js';
import { readTcpNoDelay } from '../../src/datapath/tcp-keepalive.js';
import { encodeRequest, request, P11KIT_HANDSHAKE } from '../../src/protocol/p11kit/index.js';
import { FRAME_HEADER_BYTES } from '../../src/protocol/frame.js';
import { makeClient, makeHome, registerClient, removeHome, serverCertificate, sleep, type TestClient } from '../support/daemon.js';
import { E2E_CONFIG } from '../support/e2e.js';

const CALLS = 200;

/** A p11-kit client over a byte stream that writes each request as p11-kit does: header, then body. */
class SplitWriteClient {
  private received = Buffer.alloc(0);
  private waiting: ((frame: Buffer) => void) | null = null;
  private nextCallCode = 1;

  constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      this.deliver();
    });
  }

  async version(): Promise<number> {
    this.socket.write(Buffer.from([0]));
    while (this.received.length < 1) await once(this.socket, 'data');
    const version = this.received[0]!;
    this.received = this.received.subarray(1);
    return version;
  }

  async call(body: Buffer): Promise<Buffer> {
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32BE(this.nextCallCode++, 0);
    header.writeUInt32BE(0, 4);
    header.writeUInt32BE(body.length, 8);
    const answer = new Promise<Buffer>((resolve) => { this.waiting = resolve; });
    this.socket.write(header);
    // A separate write a moment later, so that the relay has read the header as a chunk of its own.
    await sleep(1);
    this.socket.write(body);
    return answer;
  }

  private deliver(): void {
    if (!this.waiting || this.received.length < FRAME_HEADER_BYTES) return;
    const length = FRAME_HEADER_BYTES + this.received.readUInt32BE(4) + this.received.readUInt32BE(8);
    if (this.received.length < length) return;
    const frame = this.received.subarray(0, length);
    this.received = this.received.subarray(length);
    const waiting = this.waiting;
    this.waiting = null;
    waiting(frame);
  }
}

function body(call: Parameters<typeof request>[0], args: Record<string, unknown>): Buffer {
  const encoded = encodeRequest(request(call, args as never), { version: 0 });
  if (!encoded.ok) throw encoded.error;
  return encoded.value;
}

async function connectUnix(path: string): Promise<Socket> {
  const socket = connect(path);
  await once(socket, 'connect');
  return socket;
}

/** A client with C_Initialize made, ready for C_GetInfo calls. */
async function initialised(socket: Socket): Promise<SplitWriteClient> {
  const client = new SplitWriteClient(socket);
  expect(await client.version()).toBe(0);
  await client.call(body('C_Initialize', { handshake: P11KIT_HANDSHAKE, reservedPresent: 0, reserved: null }));
  return client;
}

/** Milliseconds for one C_GetInfo call, header and body written apart. */
async function timeCall(client: SplitWriteClient, getInfo: Buffer): Promise<number> {
  const started = process.hrtime.bigint();
  const answer = await client.call(getInfo);
  expect(answer.length).toBeGreaterThan(FRAME_HEADER_BYTES);
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

describe.runIf(process.platform === 'linux')('no delayed-ACK stall on the request path', () => {
  let home: string;
  let daemon: RunningDaemon;
  let client: TestClient;
  let options: LinkOptions;
  let relayServer: Server;
  const relaySockets: TLSSocket[] = [];
  const relaySocketPath = () => join(home, 'relay.sock');

  beforeAll(async () => {
    home = makeHome(E2E_CONFIG);
    // In-process (no workers): the test reads the accepted sockets' options from the engine itself.
    daemon = await runDaemon({ home, workers: 0 });
    client = await makeClient('nodelay');
    registerClient(home, client);
    options = {
      host: '127.0.0.1', port: daemon.address.port, clientName: client.name,
      certificatePem: client.certificatePem, keyPem: client.keyPem,
      serverCertificatePem: serverCertificate(home), timeoutMs: 8000,
    };
    // The verify-location monitor picks the new certificate up within its interval.
    for (let attempt = 0; ; attempt++) {
      try {
        await (await openLink(options)).close();
        break;
      } catch (error) {
        if (attempt > 50) throw error;
        await sleep(100);
      }
    }
    relayServer = await serveRelay(relaySocketPath(), options, () => undefined, { onLink: (s) => relaySockets.push(s) });
  });

  afterAll(async () => {
    relayServer?.close();
    await daemon?.stop();
    removeHome(home);
  });

  it('the relay (socket mode), the daemon side and the TypeScript client have TCP_NODELAY on', async () => {
    const local = await connectUnix(relaySocketPath());
    const tsClient = await openLink(options);
    try {
      const c = new SplitWriteClient(local);
      await c.version();
      const relayed = relaySockets.at(-1)!;
      expect(readTcpNoDelay(relayed)).toBe(true);
      expect(readTcpNoDelay(tsClient.socket)).toBe(true);
      const accepted = daemon.engine.liveConnections().filter((c) => !c.local);
      expect(accepted.length).toBeGreaterThanOrEqual(2);
      for (const connection of accepted) expect(readTcpNoDelay(connection.raw)).toBe(true);
    } finally {
      local.destroy();
      await tsClient.close();
    }
  });

  it('the relay in stdin/stdout mode has TCP_NODELAY on its link', async () => {
    const input = new PassThrough();
    const output = new PassThrough();
    const before = relaySockets.length;
    const relaying = relayStreams(input, output, options, { onLink: (s) => relaySockets.push(s) });
    for (let i = 0; relaySockets.length === before && i < 100; i++) await sleep(20);
    expect(readTcpNoDelay(relaySockets.at(-1)!)).toBe(true);
    input.end();
    await relaying;
  });

  it(`${CALLS} sequential calls through the relay are not paced by the network stack`, async () => {
    const viaLocal = await connectUnix(join(home, 'p11kit.sock'));
    const viaRelay = await connectUnix(relaySocketPath());
    try {
      const local = await initialised(viaLocal);
      const relay = await initialised(viaRelay);
      const getInfo = body('C_GetInfo', {});
      // The two paths in turn, call by call, and the median call of each: a busy moment of the
      // machine falls on both alike and on a few calls only, where one path timed after the
      // other could take it all. A stall the network stack makes is on every relayed call.
      const localCalls: number[] = [];
      const relayCalls: number[] = [];
      for (let i = 0; i < CALLS; i++) {
        localCalls.push(await timeCall(local, getInfo));
        relayCalls.push(await timeCall(relay, getInfo));
      }
      const localMs = median(localCalls);
      const relayMs = median(relayCalls);
      // Both paths wait 1 ms a call between header and body; the relay adds a TLS hop (here in
      // the same event loop): about 1.1× measured. A delayed ACK a call is 40 ms more: about 34×.
      expect(relayMs / localMs, `median call: relay ${relayMs.toFixed(2)} ms, local socket ${localMs.toFixed(2)} ms`).toBeLessThan(5);
    } finally {
      viaLocal.destroy();
      viaRelay.destroy();
    }
  });
});
