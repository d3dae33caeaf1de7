// One client must never deny service to the others (issue 14), through the real daemon on
// loopback: requests declared and never sent hold no memory; a client sending its requests half
// way holds at most its share, and only until the request deadline; one client cannot take every
// connection slot; a flood of sockets that never speak TLS does not keep registered clients out.
// The figures of the same attacks at full size: `npm run bench:attacks`.
import { afterEach, describe, expect, it } from 'vitest';
import type { Link } from '../../src/client/link.js';
import { CKR } from '../../src/pkcs11/constants.js';
import {
  closeAll, endpointOf, newLinks, openClientLink, openMany, partialFrame, servedCalls, UnauthenticatedFlood,
} from '../support/attacks.js';
import { Daemon, makeClient, makeHome, registerClient, removeHome, sleep, startDaemon, type TestClient } from '../support/daemon.js';

const MiB = 1024 * 1024;
const FRAME_HEADER = 12;

let daemon: Daemon | undefined;
let home: string;
const links: Link[] = [];
let flood: UnauthenticatedFlood | undefined;

afterEach(async () => {
  flood?.stop();
  flood = undefined;
  await closeAll(links.splice(0));
  await daemon?.stop();
  daemon = undefined;
  removeHome(home);
});

async function start(config: Record<string, unknown>, processes = '1'): Promise<{ attacker: TestClient; victim: TestClient }> {
  home = makeHome(config);
  const attacker = await makeClient('attacker');
  const victim = await makeClient('victim');
  registerClient(home, attacker);
  registerClient(home, victim);
  // The main process alone: the figures below are the daemon-wide limits themselves. With N
  // processes each holds 1/N of them (docs/workers.md), which workers.daemon.test.ts checks.
  daemon = await startDaemon(home, {}, ['--workers', processes]);
  return { attacker, victim };
}

/** Writes a header declaring `declared` bytes and the first `sent` of them on each link, and waits until they are written. */
async function stall(on: readonly Link[], declared: number, sent: number): Promise<void> {
  await Promise.all(on.map((l) => new Promise<void>((resolve) => {
    if (l.socket.write(partialFrame(declared, sent))) return resolve();
    l.socket.once('drain', () => resolve());
    l.socket.once('close', () => resolve());
  })));
  await sleep(300);
}

describe('request memory', () => {
  it('requests declared and not sent hold nothing: another client\'s calls and new links are served', async () => {
    // 16 links x 1 MiB declared would be the whole 16 MiB budget if declaring reserved it.
    const { attacker, victim } = await start({ datapath: { memoryBudget: 16 * MiB, maxFrameBytes: MiB, receiveTimeout: 0 } });
    const endpoint = endpointOf(home, daemon!.port);
    const existing = await openClientLink(endpoint, victim);
    links.push(existing);
    const stalled = await openMany(endpoint, attacker, 16);
    links.push(...stalled.links);
    expect(stalled.links).toHaveLength(16);
    await stall(stalled.links, MiB, 0);
    expect(await servedCalls(existing, 20)).toEqual({ ok: 20, hostMemory: 0, failed: 0 });
    expect((await newLinks(endpoint, victim, 3)).made).toBe(3);
  });

  it('requests sent all but their last byte: one client holds at most its share, the others are served', async () => {
    // The attacker really sends 16 x (1 MiB - 1): a quarter of the 16 MiB budget is all it keeps.
    const { attacker, victim } = await start({ datapath: { memoryBudget: 16 * MiB, maxFrameBytes: MiB, receiveTimeout: 0 } });
    const endpoint = endpointOf(home, daemon!.port);
    const existing = await openClientLink(endpoint, victim);
    links.push(existing);
    const stalled = await openMany(endpoint, attacker, 16);
    links.push(...stalled.links);
    await stall(stalled.links, MiB, MiB - 1);
    expect(await servedCalls(existing, 20)).toEqual({ ok: 20, hostMemory: 0, failed: 0 });
    expect((await newLinks(endpoint, victim, 3)).made).toBe(3);
    // Once complete, the attacker's requests beyond its share (4 MiB: four of them) are answered
    // CKR_HOST_MEMORY without having been kept; the four within it reach the processor.
    const answers = await Promise.all(stalled.links.map((l) => new Promise<Buffer | null>((resolve) => {
      const timer = setTimeout(() => resolve(null), 10_000);
      l.socket.once('data', (d: Buffer) => { clearTimeout(timer); resolve(d); });
      l.writeRaw(Buffer.alloc(1));
    })));
    const hostMemory = answers.filter((a) => a !== null && a.readUInt32BE(FRAME_HEADER) === 0 && a.readBigUInt64BE(FRAME_HEADER + 9) === BigInt(CKR.HOST_MEMORY));
    expect(answers.every((a) => a !== null)).toBe(true);
    expect(hostMemory).toHaveLength(12);
  });

  it('a request not finished within datapath.frameTimeout ends its link with "Failed reading command buffer"; the memory comes back', async () => {
    const { attacker, victim } = await start({ datapath: { frameTimeout: 1, receiveTimeout: 0 } });
    const endpoint = endpointOf(home, daemon!.port);
    const slow = await openClientLink(endpoint, attacker);
    links.push(slow);
    const port = slow.socket.localPort!;
    const closed = new Promise<void>((r) => slow.socket.once('close', () => r()));
    const from = daemon!.log().length;
    slow.writeRaw(partialFrame(64 * 1024, 1000));
    // Bytes keep coming, slower than the deadline allows: the receive timer alone would wait.
    const dribble = setInterval(() => { if (!slow.socket.destroyed) slow.writeRaw(Buffer.alloc(10)); }, 200);
    try {
      await closed;
    } finally {
      clearInterval(dribble);
    }
    await daemon!.waitForLog(`NTLA client "attacker" has disconnected: 127.0.0.1/${port}`, 5000, from);
    const bodies = daemon!.bodies().slice(from);
    expect(bodies).toContain('info : 0xc0000002 : Failed reading command buffer. Reason: RC_GENERAL_ERROR');
    expect(bodies).toContain(`info : 0xc0000002 : Connection terminating:  127.0.0.1/${port}`);
    const fresh = await openClientLink(endpoint, victim);
    links.push(fresh);
    expect(await servedCalls(fresh, 5)).toEqual({ ok: 5, hostMemory: 0, failed: 0 });
  });
});

describe('connection slots', () => {
  it('one client gets at most a quarter of datapath.maxConnections; another client still links', async () => {
    const { attacker, victim } = await start({ datapath: { maxConnections: 8, receiveTimeout: 0 } });
    const endpoint = endpointOf(home, daemon!.port);
    const from = daemon!.log().length;
    const began = Date.now();
    const taken = await openMany(endpoint, attacker, 8, 1);
    const seconds = Math.floor((Date.now() - began) / 1000) + 1;
    links.push(...taken.links);
    expect(taken.links).toHaveLength(2);
    expect(taken.refused).toBe(6);
    // At most once a second in each serving process (the main process and one worker here).
    const refusals = daemon!.bodies().slice(from).filter((b) => b === 'error : 0xc0000002 : Unable to create a new connection.');
    expect(refusals.length).toBeGreaterThan(0);
    expect(refusals.length).toBeLessThanOrEqual(2 * seconds);
    const served = await newLinks(endpoint, victim, 3);
    expect(served.made).toBe(3);
    for (const l of taken.links) expect(await servedCalls(l, 2)).toEqual({ ok: 2, hostMemory: 0, failed: 0 });
  });

  it('datapath.maxConnectionsPerClient sets the share', async () => {
    const { attacker } = await start({ datapath: { maxConnections: 8, maxConnectionsPerClient: 5, receiveTimeout: 0 } });
    const taken = await openMany(endpointOf(home, daemon!.port), attacker, 8, 1);
    links.push(...taken.links);
    expect(taken.links).toHaveLength(5);
  });
});

describe('an unauthenticated flood', () => {
  // '1': the main process alone; '2': the main process and a worker, placing the flood's sockets
  // between them (docs/workers.md), each with half the pending pool.
  it.each(['1', '2'])('2,000 sockets that never speak TLS, from 40 addresses, reopened when closed: registered clients still link, 10 out of 10 (%s processes)', async (processes) => {
    const { victim } = await start({ datapath: { receiveTimeout: 0 } }, processes);
    const endpoint = endpointOf(home, daemon!.port);
    const existing = await openClientLink(endpoint, victim);
    links.push(existing);
    flood = new UnauthenticatedFlood(endpoint, 2000, 40);
    flood.start();
    await flood.rampedUp(1500);
    await daemon!.waitForLog('Fail to accept a client TCP connection : RC_SOCKET_ERROR', 10_000);
    // Each link is given 5 s (bench:attacks measures how long they take).
    const served = await newLinks(endpoint, victim, 10, 5000);
    expect(served.made).toBe(10);
    expect(await servedCalls(existing, 20)).toEqual({ ok: 20, hostMemory: 0, failed: 0 });
    expect(flood.closedByServer).toBeGreaterThan(0);
  });
});
