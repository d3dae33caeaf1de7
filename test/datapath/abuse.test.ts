// Load and abuse: stalled sockets and connect floods are bounded by the handshake timeout and
// the pending/total limits, while registered clients keep being served. Also the receive timer
// and the ip check.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { LinkError, type Link } from '../../src/client/link.js';
import {
  Daemon, keepaliveBody, link, makeClient, makeHome, registerClient, removeHome, sleep, startDaemon, type TestClient,
} from '../support/daemon.js';

describe('a slowloris from another address', () => {
  let home: string;
  let daemon: Daemon;
  let client: TestClient;

  beforeAll(async () => {
    home = makeHome({
      server: { bind: '0.0.0.0', port: 0 },
      datapath: { handshakeTimeout: 3000, maxPendingConnections: 64, maxPendingPerAddress: 16, receiveTimeout: 0 },
    });
    client = await makeClient('steady');
    registerClient(home, client);
    daemon = await startDaemon(home);
  });
  afterAll(async () => {
    await daemon?.stop();
    removeHome(home);
  });

  /** Links; a refusal is tried again every 50 ms until `deadline` (at least one try). */
  async function linkBefore(deadline: number): Promise<Link> {
    for (;;) {
      try {
        return await link(daemon, client);
      } catch (error) {
        if (Date.now() >= deadline) throw error;
        await sleep(50);
      }
    }
  }

  it('hundreds of stalled sockets neither starve registered clients nor outlive the handshake timeout', async () => {
    const connected = await link(daemon, client);
    const stalled: Socket[] = [];
    let closedByServer = 0;
    const stalledFrom = Date.now();
    // 300 connections from 127.0.0.2 that never speak TLS.
    await Promise.all(Array.from({ length: 300 }, () => new Promise<void>((resolve) => {
      const socket = netConnect({ host: '127.0.0.1', port: daemon.port, localAddress: '127.0.0.2' }, () => resolve());
      socket.on('error', () => resolve());
      socket.on('close', () => closedByServer++);
      socket.on('data', () => {});
      stalled.push(socket);
    })));
    // The connected client is served throughout, and a new one gets in at once.
    for (let i = 0; i < 20; i++) {
      const answer = await connected.request(keepaliveBody());
      expect(answer.body.equals(keepaliveBody())).toBe(true);
    }
    const started = Date.now();
    const fresh = await link(daemon, client);
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await fresh.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    // Beyond the per-address limit, each newcomer displaced the oldest stalled one: their closes arrive
    // as the daemon gets to them (a busy machine may take longer than 200 ms), all well before the
    // handshake timeout (3 s from their connects) could have closed any.
    await sleep(200);
    while (closedByServer < 300 - 16 && Date.now() < stalledFrom + 2500) await sleep(50);
    expect(closedByServer).toBeGreaterThanOrEqual(300 - 16);
    expect(daemon.bodies()).toContain('warning : 0xc0000500 : Fail to accept a client TCP connection : RC_SOCKET_ERROR');
    // ...and the admitted ones are closed by the handshake timeout.
    const deadline = Date.now() + 8000;
    while (closedByServer < 300 && Date.now() < deadline) await sleep(100);
    expect(closedByServer).toBe(300);
    for (const s of stalled) s.destroy();
    await connected.close();
    await fresh.close();
  });

  it('16 silent sockets from the client\'s own address (the same host, a NAT) do not lock it out: it displaces the oldest', async () => {
    const holders: Socket[] = [];
    await Promise.all(Array.from({ length: 16 }, () => new Promise<void>((resolve) => {
      const socket = netConnect({ host: '127.0.0.1', port: daemon.port, localAddress: '127.0.0.1' }, () => resolve());
      socket.on('error', () => resolve());
      socket.on('data', () => {});
      holders.push(socket);
    })));
    try {
      await sleep(100);
      const linked = await link(daemon, client);
      expect((await linked.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
      await linked.close();
    } finally {
      for (const s of holders) s.destroy();
    }
    // Displacing wrote `Fail to accept a client TCP connection`, at most once a second: the next
    // test waits for a line of its own.
    await sleep(1100);
  });

  it('a connect flood from many addresses fills the pending limit: refused and logged, connected clients served, new ones admitted once it ends', async () => {
    const connected = await link(daemon, client);
    const from = daemon.log().length;
    const sockets: Socket[] = [];
    const floodFrom = Date.now();
    // Ten source addresses, so the global pending limit (64) bites before the per-address one.
    await Promise.all(Array.from({ length: 160 }, (_, i) => new Promise<void>((resolve) => {
      const socket = netConnect({ host: '127.0.0.1', port: daemon.port, localAddress: `127.0.0.${3 + (i % 10)}` }, () => resolve());
      socket.on('error', () => resolve());
      socket.on('data', () => {});
      sockets.push(socket);
    })));
    await daemon.waitForLog('Fail to accept a client TCP connection', 5000, from);
    for (let i = 0; i < 10; i++) expect((await connected.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    for (const s of sockets) s.destroy();
    await sleep(300);
    // The pending slots come free as the daemon sees the closes (on a busy machine, maybe after
    // these 300 ms): a refused link is tried again, but only until 2.5 s after the flood began,
    // before its handshake timeout (3 s) could have freed the slots instead.
    const fresh = await linkBefore(floodFrom + 2500);
    expect((await fresh.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    await fresh.close();
    await connected.close();
  });
});

describe('total connection limit', () => {
  it('beyond maxConnections new connections are refused and logged; existing ones are served', async () => {
    // One client may fill every slot here (by default it may take a quarter of them).
    const home = makeHome({ datapath: { maxConnections: 3, maxConnectionsPerClient: 3, receiveTimeout: 0 } });
    const client = await makeClient('few');
    registerClient(home, client);
    // The main process alone holds the whole limit (with N processes, each holds 1/N: workers.daemon.test.ts).
    const daemon = await startDaemon(home, {}, ['--workers', '1']);
    try {
      const links = await Promise.all([link(daemon, client), link(daemon, client), link(daemon, client)]);
      const error = await link(daemon, client).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(LinkError);
      expect(daemon.bodies()).toContain('error : 0xc0000002 : Unable to create a new connection.');
      for (const l of links) expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
      await Promise.all(links.map((l) => l.close()));
    } finally {
      await daemon.stop();
      removeHome(home);
    }
  });
});

describe('receive timer', () => {
  it('an idle client is disconnected after receiveTimeout with the guide\'s line', async () => {
    const home = makeHome({ datapath: { receiveTimeout: 1 } });
    const client = await makeClient('sleepy');
    registerClient(home, client);
    const daemon = await startDaemon(home);
    try {
      const l = await link(daemon, client);
      const port = l.socket.localPort!;
      const closed = new Promise<void>((r) => l.socket.once('close', () => r()));
      const started = Date.now();
      await closed;
      expect(Date.now() - started).toBeGreaterThanOrEqual(800);
      const line = await daemon.waitForLog('Receive timer expired');
      expect(line).toMatch(new RegExp(`info : 0 : Receive timer expired for client "sleepy"\\. Terminate client connection: 127\\.0\\.0\\.1/${port}$`));
      await daemon.waitForLog(`NTLA client "sleepy" has disconnected: 127.0.0.1/${port}`);
    } finally {
      await daemon.stop();
      removeHome(home);
    }
  });

  it('a client that keeps talking is not disconnected', async () => {
    const home = makeHome({ datapath: { receiveTimeout: 1 } });
    const client = await makeClient('chatty');
    registerClient(home, client);
    const daemon = await startDaemon(home);
    try {
      const l = await link(daemon, client);
      for (let i = 0; i < 8; i++) {
        await sleep(300);
        expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
      }
      expect(daemon.bodies().some((b) => b.includes('Receive timer expired'))).toBe(false);
      await l.close();
    } finally {
      await daemon.stop();
      removeHome(home);
    }
  });
});

describe('ip check', () => {
  it('a registered client connecting from another address than its registered host is refused', async () => {
    const home = makeHome({ server: { bind: '0.0.0.0', port: 0 }, clients: { ipCheck: true } });
    const pinned = await makeClient('pinned');
    registerClient(home, pinned, { host: '127.0.0.1' });
    const daemon = await startDaemon(home);
    try {
      const ok = await link(daemon, pinned);
      await ok.close();
      const from = daemon.log().length;
      const error = await new Promise<unknown>((resolve) => {
        // Same certificate, from 127.0.0.9.
        const raw = netConnect({ host: '127.0.0.1', port: daemon.port, localAddress: '127.0.0.9' });
        const socket = tlsConnect({ socket: raw, cert: pinned.certificatePem, key: pinned.keyPem, rejectUnauthorized: false });
        socket.on('secureConnect', () => socket.write('NTLS-IDENTITY/1 client pinned\n'));
        socket.on('data', () => {});
        socket.on('error', (e) => resolve(e));
        socket.on('close', () => resolve('closed'));
      });
      expect(error).toBeDefined();
      const line = await daemon.waitForLog('Client credentials cannot be verified :', 5000, from);
      expect(line).toMatch(/info : 0 : Client credentials cannot be verified : 127\.0\.0\.9\/\d+$/);
    } finally {
      await daemon.stop();
      removeHome(home);
    }
  });
});

describe('the name in the identity line', () => {
  it('is not trusted: a client that sends another client\'s name is logged, and served, under its own', async () => {
    const home = makeHome({ server: { bind: '0.0.0.0', port: 0 } });
    const alice = await makeClient('alice');
    const mallory = await makeClient('mallory');
    registerClient(home, alice);
    registerClient(home, mallory);
    const daemon = await startDaemon(home);
    try {
      const from = daemon.log().length;
      const linked = await link(daemon, mallory, { clientName: 'alice' });
      await daemon.waitForLog('NTLA Client "mallory" connected and authenticated', 5000, from);
      await linked.close();
      await daemon.waitForLog('Client mallory requested termination', 5000, from);
      expect(daemon.log().slice(from).join('\n')).not.toContain('"alice"');
    } finally {
      await daemon.stop();
      removeHome(home);
    }
  });
});

describe('client command keepalive (processor)', () => {
  it('a client that sends no command within processor.commandKeepalive is ended with the guide\'s line; keepalives keep it', async () => {
    const home = makeHome({ processor: { commandKeepalive: 1 }, datapath: { receiveTimeout: 0 } });
    const client = await makeClient('quiet');
    registerClient(home, client);
    const daemon = await startDaemon(home);
    try {
      const lively = await link(daemon, client);
      const quiet = await link(daemon, client);
      const port = quiet.socket.localPort!;
      const closed = new Promise<void>((r) => quiet.socket.once('close', () => r()));
      for (let i = 0; i < 6; i++) {
        await sleep(300);
        expect((await lively.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
      }
      await closed;
      const line = await daemon.waitForLog(`Receive timer expired for client "quiet" : 127.0.0.1/${port}`);
      expect(line).toMatch(/info : 0 : Receive timer expired for client "quiet" : 127\.0\.0\.1\/\d+$/);
      await lively.close();
    } finally {
      await daemon.stop();
      removeHome(home);
    }
  });
});
