// A datapath worker killed while it holds links (docs/workers.md, Failures): its links end in
// the log as any link that ends, and the daemon still shuts down on SIGTERM afterwards (Node's
// net.Server used to wait forever on the sockets it had handed to the dead worker).
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckSummary } from '../../src/admin/logs/check.js';
import type { Link } from '../../src/client/link.js';
import {
  keepaliveBody, link, linkWhenRegistered, makeClient, registerClient, removeHome, runNtls, sleep, startDaemon, type Daemon, type TestClient,
} from '../support/daemon.js';
import { clientTestHome, expectOk } from '../client/support.js';

interface WorkerRow { index: number; role: string; pid: number; connections: number }

let home: string;
let daemon: Daemon;
let app1: TestClient;
const links: Link[] = [];
/** Links that never finish their set-up: a TLS handshake begun, or TLS done and no identity sent. */
const unfinished: Array<{ socket: Socket; peer: string; client: string }> = [];

async function workers(): Promise<WorkerRow[]> {
  return (JSON.parse(expectOk(await runNtls(['info', 'show', '--json', '--home', home])).stdout) as { workers: WorkerRow[] }).workers;
}

/** Each link's peer as the daemon names it, kept while its socket is open (a closed one has no port). */
const peers = new Map<Link, string>();
const peerOf = (l: Link) => peers.get(l) ?? `127.0.0.1/${l.socket.localPort}`;

beforeAll(async () => {
  home = clientTestHome({ datapath: { receiveTimeout: 0, handshakeTimeout: 60_000 } });
  daemon = await startDaemon(home, {}, ['--workers', '2']);
  app1 = await makeClient('app1');
  registerClient(home, app1);
}, 60_000);

afterAll(async () => {
  for (const l of links) await l.close().catch(() => undefined);
  for (const u of unfinished) u.socket.destroy();
  await daemon?.stop('SIGKILL');
  removeHome(home);
});

/** A TCP connection that sends the first bytes of a TLS record and no more: its handshake stays begun. */
async function handshakeBegun(): Promise<Socket> {
  const socket = tcpConnect(daemon.port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.on('error', () => undefined);
  socket.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xff]));
  await daemon.waitForLog(`Connection accepted from: 127.0.0.1/${socket.localPort}`);
  return socket;
}

/** A mutual-TLS link of app1 that never sends its identity: authenticated, not yet a processor instance. */
async function identityPending(): Promise<Socket> {
  const socket = tlsConnect({ host: '127.0.0.1', port: daemon.port, cert: app1.certificatePem, key: app1.keyPem, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
  socket.on('error', () => undefined);
  await daemon.waitForLog(`NTLS Client "app1" connected and authenticated : 127.0.0.1/${socket.localPort}.`);
  return socket;
}

/** Opens links with `open` until the worker holds `count` connections (those the main process keeps stay open there). */
async function untilWorkerHolds(count: number, open: () => Promise<Socket>, client: string): Promise<void> {
  for (let i = 0; i < 6 && ((await workers())[1]?.connections ?? 0) < count; i++) {
    const socket = await open();
    unfinished.push({ socket, peer: `127.0.0.1/${socket.localPort}`, client });
  }
  expect((await workers())[1]!.connections).toBe(count);
}

describe('a datapath worker killed while it holds links', () => {
  let onWorker: Link[] = [];

  it('each of its links gets the lines of a link that ends, once, written by the main process', async () => {
    // The main process keeps the first link, the worker takes the next (placement.ts): open
    // links until the worker holds two, each proven served (a request answered, its instance added).
    for (let i = 0; i < 8 && ((await workers())[1]?.connections ?? 0) < 2; i++) {
      const l = i === 0 ? await linkWhenRegistered(daemon, app1) : await link(daemon, app1);
      links.push(l);
      peers.set(l, peerOf(l));
      await l.request(keepaliveBody());
      await daemon.waitForLog(`NTLA Client "app1" connected and authenticated : ${peerOf(l)}`);
    }
    expect((await workers())[1]!.connections).toBe(2);
    await untilWorkerHolds(3, handshakeBegun, '127.0.0.1');
    await untilWorkerHolds(4, identityPending, 'app1');
    const rows = await workers();
    const from = daemon.log().length;
    process.kill(rows[1]!.pid, 'SIGKILL');
    await daemon.waitForLog('NTLS CRASH AND BURN and unable to dump the stack!', 10_000, from);
    // The links the worker held are the ones that close; the main process's stay.
    for (let i = 0; i < 100 && links.filter((l) => l.socket.destroyed).length < 2; i++) await sleep(50);
    onWorker = links.filter((l) => l.socket.destroyed);
    expect(onWorker).toHaveLength(2);
    expect(links[0]!.socket.destroyed).toBe(false);
    for (const l of onWorker) {
      const peer = peerOf(l);
      await daemon.waitForLog(`NTLA Client "app1" Connection instance removed : ${peer}`, 5000, from);
      const lines = daemon.bodies().slice(from).filter((b) => b.endsWith(` ${peer}`) || b.endsWith(`:${peer}`));
      expect(lines).toEqual([
        `info : 0xc0000002 : Connection terminating:  ${peer}`,
        `info : 0 : NTLA client "app1" has disconnected: ${peer}`,
        `Command processor instance for client app1 removed : ${peer}`,
        `info : 0 : NTLA Client "app1" Connection instance removed : ${peer}`,
      ]);
    }
    // The worker's links still setting up end too, named as far as the worker knew them: by
    // address in the handshake, by client once TLS had identified it.
    for (let i = 0; i < 100 && unfinished.filter((u) => u.socket.destroyed).length < 2; i++) await sleep(50);
    const unfinishedOnWorker = unfinished.filter((u) => u.socket.destroyed);
    expect(unfinishedOnWorker.map((u) => u.client)).toEqual(['127.0.0.1', 'app1']);
    for (const { peer, client } of unfinishedOnWorker) {
      await daemon.waitForLog(`NTLA client "${client}" has disconnected: ${peer}`, 5000, from);
      const lines = daemon.bodies().slice(from).filter((b) => b.endsWith(` ${peer}`) || b.endsWith(`:${peer}`));
      expect(lines).toEqual([
        `info : 0xc0000002 : Connection terminating:  ${peer}`,
        `info : 0 : NTLA client "${client}" has disconnected: ${peer}`,
      ]);
    }
  }, 60_000);

  it('SIGTERM afterwards stops the daemon within 15 s, with the shutdown lines in order', async () => {
    expect(onWorker).toHaveLength(2);
    // The replacement worker is up (the main process handed sockets to the dead one only).
    for (let i = 0; i < 100; i++) {
      const rows = await workers();
      if (rows.length === 2 && rows[1]!.pid > 0) break;
      await sleep(100);
    }
    const from = daemon.log().length;
    daemon.child.kill('SIGTERM');
    const result = await Promise.race([daemon.exited, sleep(15_000).then(() => 'hung' as const)]);
    expect(result).toEqual({ status: 0, signal: null });
    const lines = daemon.bodies().slice(from);
    const order = ['Shutting down NTLS....', 'Intiating dispatch termination.', 'Dispatching has been terminated.', 'Terminating.', 'NTLS terminated'];
    const at = order.map((text) => lines.findIndex((b) => b.endsWith(text)));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
  }, 30_000);

  it('`ntls logs check` afterwards reports the crash, and pairs every link with its disconnect, the dead worker\'s too', async () => {
    const result = await runNtls(['logs', 'check', '--json', '--home', home]);
    expect(result.status).toBe(1);
    const summary = JSON.parse(result.stdout) as CheckSummary;
    expect(summary.crashes.lines).toHaveLength(1);
    expect(summary.unexpected.map((k) => k.id)).toEqual(['crashNoStackDump']);
    expect(summary.connections).toMatchObject({ accepted: 3 + unfinished.length, disconnected: 3 + unfinished.length, paired: 3 + unfinished.length, withoutDisconnect: [], disconnectWithoutAccept: [] });
  });
});
