// Client connections against the real daemon over real TLS: the guide's lines for each outcome.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { LinkError } from '../../src/client/link.js';
import { serializeFrame } from '../../src/protocol/frame.js';
import { encodeIdentity } from '../../src/protocol/identity.js';
import {
  Daemon, keepaliveBody, link, linkWhenRegistered, makeClient, makeHome, registerClient, removeHome,
  serverCertificate, sleep, startDaemon, unregisterClient, type TestClient,
} from '../support/daemon.js';

let home: string;
let daemon: Daemon;
let alice: TestClient;
let expired: TestClient;

beforeAll(async () => {
  home = makeHome({ datapath: { handshakeTimeout: 1500, receiveTimeout: 0 }, log: { debug: true } });
  alice = await makeClient('alice');
  expired = await makeClient('expired', { notBefore: new Date(Date.now() - 3 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
  registerClient(home, alice);
  registerClient(home, expired);
  daemon = await startDaemon(home);
});

afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});

/** Log bodies (after "NTLS [pid]: ") written from `from` on that mention `peer`, or all if no peer. */
function bodiesSince(from: number): string[] {
  return daemon.bodies().slice(from);
}

/** Waits until the connection from local port `port` has written its disconnect line. */
async function settled(port: number, from: number): Promise<string[]> {
  await daemon.waitForLog(new RegExp(`has disconnected: 127\\.0\\.0\\.1/${port}$`), 10_000, from);
  await sleep(50);
  return bodiesSince(from).filter((b) => b.includes(`127.0.0.1/${port}`) || !/127\.0\.0\.1\/\d+/.test(b));
}

function rawConnect(send: Buffer | string | null): Promise<{ port: number; closedWithinMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = netConnect({ host: '127.0.0.1', port: daemon.port }, () => {
      if (send !== null) socket.write(send);
    });
    let port = 0;
    socket.on('connect', () => (port = socket.localPort!));
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => resolve({ port, closedWithinMs: Date.now() - started }));
    setTimeout(() => reject(new Error('raw connection not closed by the daemon within 10 s')), 10_000);
  });
}

/** Alice over raw TLS with `session` offered for resumption: whether it was resumed, and any session the daemon issued. */
function tlsSession(session?: Buffer, maxVersion: 'TLSv1.2' | 'TLSv1.3' = 'TLSv1.3'): Promise<{ reused: boolean; issued: Buffer | null }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({
      host: '127.0.0.1', port: daemon.port, cert: alice.certificatePem, key: alice.keyPem,
      ca: [serverCertificate(home)], checkServerIdentity: () => undefined, session, maxVersion,
    });
    let issued: Buffer | null = null;
    let reused = false;
    socket.on('session', (s: Buffer) => (issued = s));
    socket.on('secureConnect', () => {
      reused = socket.isSessionReused();
      // TLS 1.3 tickets come after the handshake: give them time to arrive, then leave.
      setTimeout(() => socket.end(), 300);
    });
    socket.on('data', () => {});
    socket.on('error', reject);
    socket.on('close', () => resolve({ reused, issued }));
  });
}

/** The first bytes of a TLS ClientHello (record header and handshake type), not the whole of it. */
const PARTIAL_CLIENT_HELLO = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);

/** Connects, sends `send` (or nothing), then closes with a FIN (end) or a reset; resolves with its local port once closed. */
function abortingPeer(send: Buffer | null, close: 'fin' | 'reset'): Promise<number> {
  return new Promise((resolve, reject) => {
    let port = 0;
    const socket = netConnect({ host: '127.0.0.1', port: daemon.port }, () => {
      port = socket.localPort!;
      if (send !== null) socket.write(send);
      if (close === 'fin') socket.end();
      // Give the bytes time to leave before the reset discards them.
      else setTimeout(() => socket.resetAndDestroy(), send === null ? 0 : 30);
    });
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => resolve(port));
    setTimeout(() => reject(new Error('aborting peer not closed within 5 s')), 5000);
  });
}

/**
 * Alice's certificate over raw TLS, sending `first` instead of an identity line (or nothing), and
 * with `thenClose` closing its side after it; resolves with its port once closed.
 */
function registeredTlsPeer(first: string | Buffer | null, thenClose = false): Promise<number> {
  return new Promise<number>((resolve) => {
    const socket = tlsConnect({
      host: '127.0.0.1', port: daemon.port, cert: alice.certificatePem, key: alice.keyPem,
      ca: [serverCertificate(home)], checkServerIdentity: () => undefined,
    });
    let local = 0;
    socket.on('secureConnect', () => {
      local = socket.localPort!;
      if (first !== null) socket.write(first);
      if (thenClose) socket.end();
    });
    socket.on('data', () => {});
    socket.on('error', () => {});
    socket.on('close', () => resolve(local));
  });
}

describe('connections', () => {
  it('a registered client connects, is served and disconnects with the guide\'s lines in order', async () => {
    const from = daemon.log().length;
    const l = await link(daemon, alice);
    const port = l.socket.localPort!;
    const answer = await l.request(keepaliveBody());
    expect(answer.body.equals(keepaliveBody())).toBe(true);
    await l.close();
    const lines = await settled(port, from);
    const peer = `127.0.0.1/${port}`;
    expect(lines).toEqual([
      `info : 0 : Incoming connection request... : ${peer}`,
      `info : 0xc0000002 : Connection accepted from: ${peer}`,
      `info : 0xc0000002 : Handshake result from: ${peer}, result: Success`,
      `info : 0xc0000002 : NTLS Client "alice" connected and authenticated : ${peer}.`,
      `info : 0 : NTLA Client "alice" connected and authenticated : ${peer}`,
      `info : 0 : Client alice requested termination : ${peer}`,
      `info : 0xc0000002 : Connection terminating:  ${peer}`,
      `info : 0 : NTLA client "alice" has disconnected: ${peer}`,
      `Command processor instance for client alice removed : ${peer}`,
      `info : 0 : NTLA Client "alice" Connection instance removed : ${peer}`,
    ]);
  });

  it('a client that closes in the middle of a request: "Failed reading command buffer", not a termination it asked for', async () => {
    const from = daemon.log().length;
    const l = await link(daemon, alice);
    const port = l.socket.localPort!;
    const whole = serializeFrame({ callCode: 7, options: Buffer.alloc(0), body: Buffer.alloc(100) });
    l.socket.end(whole.subarray(0, 12 + 50));
    const lines = await settled(port, from);
    const peer = `127.0.0.1/${port}`;
    expect(lines).toContain('info : 0xc0000002 : Failed reading command buffer. Reason: RC_GENERAL_ERROR');
    expect(lines).not.toContain(`info : 0 : Client alice requested termination : ${peer}`);
    expect(lines).toContain(`info : 0 : NTLA client "alice" has disconnected: ${peer}`);
  });

  it('an unregistered certificate is refused: "Client credentials cannot be verified"', async () => {
    const stranger = await makeClient('stranger');
    const from = daemon.log().length;
    const error = await link(daemon, stranger).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LinkError);
    const line = await daemon.waitForLog('Client credentials cannot be verified', 5000, from);
    expect(line).toMatch(/info  NTLS \[\d+\]: info : 0xc0000002 : Client credentials cannot be verified\. Connection terminated : 127\.0\.0\.1\/\d+$/);
  });

  it('an expired registered certificate is refused', async () => {
    const from = daemon.log().length;
    const error = await link(daemon, expired).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LinkError);
    await daemon.waitForLog(/0xc0000002 : Client credentials cannot be verified\. Connection terminated/, 5000, from);
    expect(bodiesSince(from).some((b) => b.includes('connected and authenticated'))).toBe(false);
  });

  it('a TLS client without a certificate: "Expecting client certificate. None received."', async () => {
    const from = daemon.log().length;
    await new Promise<void>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: daemon.port, ca: [serverCertificate(home)], checkServerIdentity: () => undefined });
      socket.on('error', () => resolve());
      socket.on('close', () => resolve());
      socket.on('data', () => {});
    });
    await daemon.waitForLog(/error : 0xc0000002 : Expecting client certificate\. None received\.$/, 5000, from);
    await daemon.waitForLog(/info : 0 : Client credentials cannot be verified\. Connection terminated : 127\.0\.0\.1\/\d+$/, 5000, from);
  });

  it('a weak cipher offer fails the handshake: RC_SSL_FAILED_HANDSHAKE', async () => {
    const from = daemon.log().length;
    const error = await link(daemon, alice, { ciphers: 'AES128-SHA', maxVersion: 'TLSv1.2' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LinkError);
    const line = await daemon.waitForLog('Fail to establish a secure channel', 5000, from);
    expect(line).toMatch(/info : 0xc0000711 : Fail to establish a secure channel with client : 127\.0\.0\.1\/\d+ : RC_SSL_FAILED_HANDSHAKE$/);
  });

  it('a TLS handshake the client abandons (FIN or reset after part of a ClientHello): one "Failed handshake" line', async () => {
    for (const close of ['fin', 'reset'] as const) {
      const from = daemon.log().length;
      const port = await abortingPeer(PARTIAL_CLIENT_HELLO, close);
      const lines = await settled(port, from);
      expect(lines.filter((b) => b === 'info : 0xc0000002 : Failed handshake. Reason: RC_GENERAL_ERROR'), close).toHaveLength(1);
      expect(lines.filter((b) => /Fail to establish|non-Luna|Handshake result/.test(b)), close).toEqual([]);
    }
  });

  it('a TLS client that sends its whole ClientHello and closes before the handshake ends: "Failed handshake"', async () => {
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const from = daemon.log().length;
      const port = await new Promise<number>((resolve) => {
        const socket = netConnect({ host: '127.0.0.1', port: daemon.port }, () => {
          const tls = tlsConnect({ socket, rejectUnauthorized: false, maxVersion });
          tls.on('error', () => {});
          socket.end();
        });
        let local = 0;
        socket.on('connect', () => (local = socket.localPort!));
        socket.on('error', () => {});
        socket.on('close', () => resolve(local));
      });
      const lines = await settled(port, from);
      expect(lines.filter((b) => b.includes('Failed handshake')), maxVersion).toHaveLength(1);
    }
  });

  it('a peer that connects and closes without sending a byte (port scan, health check) gets no reason line', async () => {
    for (const close of ['fin', 'reset'] as const) {
      let from = daemon.log().length;
      let port = await abortingPeer(null, close);
      // A reset that reaches the kernel before the daemon accepts leaves no peer address to read
      // (getpeername: ENOTCONN), so the lines say unknown/0: on a loaded machine, try again.
      for (let attempt = 1; attempt < 5 && close === 'reset'; attempt++) {
        await daemon.waitForLog(/has disconnected: /, 10_000, from);
        await sleep(50);
        if (!bodiesSince(from).some((b) => b.includes('unknown/0'))) break;
        from = daemon.log().length;
        port = await abortingPeer(null, close);
      }
      const peer = `127.0.0.1/${port}`;
      const lines = (await settled(port, from)).filter((b) => b.includes(peer) || / : 0xc0000(002|004|711) : /.test(b));
      expect(lines.filter((b) => !/Connection terminating/.test(b)), close).toEqual([
        `info : 0 : Incoming connection request... : ${peer}`,
        `info : 0xc0000002 : Connection accepted from: ${peer}`,
        `info : 0 : NTLA client "127.0.0.1" has disconnected: ${peer}`,
      ]);
    }
  });

  it('plain TCP bytes: "Connection attempt from non-Luna client", closed promptly', async () => {
    const from = daemon.log().length;
    const { port, closedWithinMs } = await rawConnect('hello ntls\r\n');
    expect(closedWithinMs).toBeLessThan(5000);
    const lines = await settled(port, from);
    expect(lines).toContain(`info : 0xc0000004 : Connection attempt from non-Luna client : 127.0.0.1/${port} : RC_UNEXPECTED`);
  });

  it('an HTTP request: non-Luna client', async () => {
    const from = daemon.log().length;
    const { port } = await rawConnect('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const lines = await settled(port, from);
    expect(lines).toContain(`info : 0xc0000004 : Connection attempt from non-Luna client : 127.0.0.1/${port} : RC_UNEXPECTED`);
  });

  it('a silent TCP peer is closed by the handshake timeout as a non-Luna client', async () => {
    const from = daemon.log().length;
    const { port, closedWithinMs } = await rawConnect(null);
    expect(closedWithinMs).toBeGreaterThanOrEqual(1000);
    const lines = await settled(port, from);
    expect(lines).toContain(`info : 0xc0000004 : Connection attempt from non-Luna client : 127.0.0.1/${port} : RC_UNEXPECTED`);
    // As every failure before the handshake: no `Connection terminating:` (it came for this one alone).
    expect(lines).not.toContain(`info : 0xc0000002 : Connection terminating:  127.0.0.1/${port}`);
  });

  it('a registered TLS client that never sends its identity is a non-Luna client after the timeout', async () => {
    const from = daemon.log().length;
    const port = await registeredTlsPeer(null);
    const lines = await settled(port, from);
    expect(lines).toContain(`info : 0xc0000004 : Connection attempt from non-Luna client : 127.0.0.1/${port} : RC_UNEXPECTED`);
  });

  it('a TLS client sending something other than an identity line: "Failed reading identity string"', async () => {
    const from = daemon.log().length;
    const port = await registeredTlsPeer('GET / HTTP/1.1\r\n\r\n');
    const lines = await settled(port, from);
    expect(lines).toContain('info : 0xc0000002 : Failed reading identity string. Reason: RC_GENERAL_ERROR');
    expect(lines).toContain(`info : 0xc0000004 : Connection attempt from non-Luna client : 127.0.0.1/${port} : RC_UNEXPECTED`);
  });

  it('a header declaring 2 GiB or more: "Client request header malformed", that connection only is closed', async () => {
    const bystander = await link(daemon, alice);
    const from = daemon.log().length;
    const l = await link(daemon, alice);
    const port = l.socket.localPort!;
    const header = Buffer.alloc(12);
    header.writeUInt32BE(1, 0);
    header.writeUInt32BE(0, 4);
    header.writeUInt32BE(0xfffffff0, 8);
    l.writeRaw(header);
    const lines = await settled(port, from);
    expect(lines).toContain(`critical : 0xc0000102 : Client request header malformed : 127.0.0.1/${port} : RC_DATA_INVALID`);
    expect(daemon.log().find((x) => x.includes('Client request header malformed'))).toMatch(/ local5 crit  NTLS/);
    // The other connection is still served.
    const answer = await bystander.request(keepaliveBody());
    expect(answer.body.equals(keepaliveBody())).toBe(true);
    await bystander.close();
  });

  it('a request over maxFrameBytes, sent whole: its bytes are skipped, that call answers CKR_HOST_MEMORY, the link goes on', async () => {
    const l = await link(daemon, alice);
    const port = l.socket.localPort!;
    const from = daemon.log().length;
    const body = Buffer.alloc(4 * 1024 * 1024 + 1);
    body.writeUInt32BE(0x4e540002, 0);
    const refused = await l.request(body);
    // p11-kit's error message: call id 0, signature "u", CKR_HOST_MEMORY (2) as uint64.
    expect(refused.body.readUInt32BE(0)).toBe(0);
    expect(refused.body.readBigUInt64BE(refused.body.length - 8)).toBe(2n);
    const answer = await l.request(keepaliveBody());
    expect(answer.body.equals(keepaliveBody())).toBe(true);
    await daemon.waitForLog(new RegExp(`Fail to allocate command buffer : 127\\.0\\.0\\.1/${port} : RC_MEMORY_ALLOCATION$`), 10_000, from);
    expect(bodiesSince(from).some((b) => b.includes('header malformed'))).toBe(false);
    await l.close();
  });

  it('frames split across many TCP segments and pipelined requests are answered in order', async () => {
    const l = await link(daemon, alice);
    const bodies = Array.from({ length: 20 }, (_, i) => {
      const b = Buffer.alloc(12);
      b.writeUInt32BE(0x4e540002, 0);
      b.writeUInt32BE(i, 8);
      return b;
    });
    const answers = Promise.all(bodies.map((b) => l.request(b)));
    const answered = await answers;
    answered.forEach((frame, i) => expect(frame.body.readUInt32BE(8)).toBe(i));
    // One frame written a byte at a time.
    const frame = serializeFrame({ callCode: 99, options: Buffer.alloc(0), body: keepaliveBody() });
    const reply = new Promise<Buffer>((resolve) => l.socket.once('data', (d: Buffer) => resolve(d)));
    for (const byte of frame) {
      l.writeRaw(Buffer.from([byte]));
      await sleep(1);
    }
    const raw = await reply;
    expect(raw.readUInt32BE(0)).toBe(99);
    await l.close();
  });

  it('no TLS session is resumed: a client offering its previous link\'s session gets a full handshake, certificate and all (TLS 1.3 and 1.2)', async () => {
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      const first = await tlsSession(undefined, version);
      expect(first.issued, version).not.toBeNull();
      for (const offered of [first.issued ?? undefined, (await tlsSession(first.issued ?? undefined, version)).issued ?? undefined]) {
        expect((await tlsSession(offered, version)).reused, version).toBe(false);
      }
    }
  });

  it('no TLS 1.2 renegotiation: a linked client asking for one is refused (no second handshake), and others are served', async () => {
    const from = daemon.log().length;
    const attempt = await new Promise<{ handshakes: number; error: string }>((resolve) => {
      const socket = tlsConnect({
        host: '127.0.0.1', port: daemon.port, cert: alice.certificatePem, key: alice.keyPem,
        ca: [serverCertificate(home)], checkServerIdentity: () => undefined, maxVersion: 'TLSv1.2',
      });
      let handshakes = 0;
      let error = '';
      // Each accepted renegotiation is one more 'secureConnect'; a bounded number are asked for.
      socket.on('secureConnect', () => {
        if (++handshakes === 1) socket.write(encodeIdentity('client', 'alice'));
        if (handshakes <= 5) socket.renegotiate({}, () => undefined);
        else socket.end();
      });
      socket.on('data', () => {});
      // The server refuses with a warning alert and keeps the link; Node's client calls it an error.
      socket.on('error', (e: NodeJS.ErrnoException) => {
        error = e.code ?? e.message;
        socket.destroy();
      });
      socket.on('close', () => resolve({ handshakes, error }));
      setTimeout(() => socket.destroy(), 5000);
    });
    expect(attempt.handshakes).toBe(1);
    expect(attempt.error).toBe('ERR_SSL_NO_RENEGOTIATION');
    await daemon.waitForLog(/NTLA client "alice" has disconnected/, 5000, from);
    const l = await link(daemon, alice);
    expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    await l.close();
  });

  it('a certificate removed from the verify location flushes the cache; the client is refused from then on', async () => {
    const bob = await makeClient('bob');
    registerClient(home, bob);
    const first = await linkWhenRegistered(daemon, bob);
    await first.close();
    const from = daemon.log().length;
    unregisterClient(home, bob);
    await daemon.waitForLog(/info : 0 : Detected client certificate removed from verify location\.  Flush verify location cache$/, 10_000, from);
    const error = await link(daemon, bob).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LinkError);
    await daemon.waitForLog(/Client credentials cannot be verified\. Connection terminated/, 5000, from);
  });

  it('a certificate added while running is accepted without a restart', async () => {
    const carol = await makeClient('carol');
    registerClient(home, carol);
    const l = await linkWhenRegistered(daemon, carol);
    expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    await l.close();
  });

  it('an unexpected event in a state is a debug line naming the state (debug logging on)', async () => {
    const from = daemon.log().length;
    const raw = netConnect({ host: '127.0.0.1', port: daemon.port });
    const authenticated = await link(daemon, alice, { socket: raw });
    const port = authenticated.socket.localPort!;
    await daemon.waitForLog(`NTLA Client "alice" connected and authenticated : 127.0.0.1/${port}`, 5000, from);
    // A TCP reset under the TLS link: the read fails in HEADER STATE.
    raw.resetAndDestroy();
    const lines = await settled(port, from);
    expect(lines).toContain('debug : 0xc0000002     Unexpected read response in HEADER STATE');
    // Then the lines of any end: the read that failed, and the link terminating (before, none).
    const peer = `127.0.0.1/${port}`;
    const end = lines.slice(lines.indexOf('debug : 0xc0000002     Unexpected read response in HEADER STATE') + 1);
    expect(end.slice(0, 3)).toEqual([
      'info : 0xc0000002 : Failed reading command buffer. Reason: RC_GENERAL_ERROR',
      `info : 0xc0000002 : Connection terminating:  ${peer}`,
      `info : 0 : NTLA client "alice" has disconnected: ${peer}`,
    ]);
  });

  it('a reset in the middle of a request: "Failed reading command buffer", "Connection terminating"', async () => {
    const from = daemon.log().length;
    const raw = netConnect({ host: '127.0.0.1', port: daemon.port });
    const l = await link(daemon, alice, { socket: raw });
    const port = l.socket.localPort!;
    const whole = serializeFrame({ callCode: 7, options: Buffer.alloc(0), body: Buffer.alloc(100) });
    l.socket.write(whole.subarray(0, 12 + 50));
    await sleep(200);
    raw.resetAndDestroy();
    const lines = await settled(port, from);
    expect(lines).toContain('info : 0xc0000002 : Failed reading command buffer. Reason: RC_GENERAL_ERROR');
    expect(lines).toContain(`info : 0xc0000002 : Connection terminating:  127.0.0.1/${port}`);
    expect(lines).not.toContain(`info : 0 : Client alice requested termination : 127.0.0.1/${port}`);
  });

  it('a reset while answers wait to be written (the client reads none): "Failed writing to client", "Connection terminating"', async () => {
    const from = daemon.log().length;
    const raw = netConnect({ host: '127.0.0.1', port: daemon.port });
    const l = await link(daemon, alice, { socket: raw });
    const port = l.socket.localPort!;
    // NTLS echo requests of 1 MB, each answered with its megabyte: more answers than the
    // socket buffers hold, so the daemon waits to write them when the reset comes.
    const echo = Buffer.alloc(8 + 1_000_000, 7);
    echo.writeUInt32BE(0x4e540002, 0);
    echo.writeUInt32BE(0, 4);
    l.socket.pause();
    raw.pause();
    for (let i = 0; i < 20; i++) l.socket.write(serializeFrame({ callCode: 9, options: Buffer.alloc(0), body: echo }));
    await sleep(1500);
    raw.resetAndDestroy();
    const lines = await settled(port, from);
    expect(lines, lines.join('\n')).toContain('info : 0xc0000002 : Failed writing to client Reason: RC_GENERAL_ERROR');
    expect(lines).toContain(`info : 0xc0000002 : Connection terminating:  127.0.0.1/${port}`);
  });

  it('a client that sends part of its identity line and closes: "Failed reading identity string", "Connection terminating"', async () => {
    const from = daemon.log().length;
    const port = await registeredTlsPeer(encodeIdentity('client', 'alice').subarray(0, 6), true);
    const lines = await settled(port, from);
    expect(lines).toContain('info : 0xc0000002 : Failed reading identity string. Reason: RC_GENERAL_ERROR');
    expect(lines).toContain(`info : 0xc0000002 : Connection terminating:  127.0.0.1/${port}`);
  });

  it('an unknown call is answered CKR_FUNCTION_NOT_SUPPORTED and logged as an unsupported command', async () => {
    const from = daemon.log().length;
    const l = await link(daemon, alice);
    const body = Buffer.alloc(8);
    body.writeUInt32BE(200, 0);
    const answer = await l.request(body);
    expect(answer.body.readUInt32BE(0)).toBe(0);
    expect(answer.body.readBigUInt64BE(9)).toBe(0x54n);
    await daemon.waitForLog(/info  NTLS \[\d+\]: Client attempted unsupported command 0x000000c8\.$/, 5000, from);
    await l.close();
  });

  it('a client sending unknown calls as fast as it can: each answered, the line written for the first ten, then about once a second', async () => {
    const from = daemon.log().length;
    const l = await link(daemon, alice);
    const started = Date.now();
    for (let call = 300; call < 2300; call++) {
      const body = Buffer.alloc(8);
      body.writeUInt32BE(call, 0);
      expect((await l.request(body)).body.readBigUInt64BE(9)).toBe(0x54n);
    }
    const seconds = (Date.now() - started) / 1000;
    await l.close();
    const lines = daemon.log().slice(from).filter((line) => line.includes('Client attempted unsupported command'));
    expect(lines[0]).toMatch(/command 0x0000012c\.$/);
    // Ten in a row a client (the test before took one of alice's).
    expect(lines.length).toBeGreaterThanOrEqual(9);
    expect(lines.length).toBeLessThanOrEqual(10 + Math.ceil(seconds) + 1);
  });
});
