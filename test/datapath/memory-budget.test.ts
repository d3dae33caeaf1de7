import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClientShares, ConnectionBudget, MemoryBudget } from '../../src/datapath/memory-budget.js';
import { Daemon, keepaliveBody, link, makeClient, makeHome, registerClient, removeHome, startDaemon, type TestClient } from '../support/daemon.js';

describe('MemoryBudget', () => {
  it('admits within both the connection and the global budget, and gives back on release', () => {
    const global = new MemoryBudget(100);
    const a = new ConnectionBudget(global, 60);
    const b = new ConnectionBudget(global, 60);
    expect(a.reserve(60)).toBe(true);
    expect(a.reserve(1)).toBe(false);
    expect(b.reserve(50)).toBe(false);
    expect(b.reserve(40)).toBe(true);
    expect(global.inUse).toBe(100);
    a.releaseAll();
    expect(global.inUse).toBe(40);
    expect(b.reserve(20)).toBe(true);
  });
});

describe('ClientShares', () => {
  it('the connections of one client draw on one share; another client has its own', () => {
    const global = new MemoryBudget(1000);
    const shares = new ClientShares(300);
    const a1 = new ConnectionBudget(global, 200);
    const a2 = new ConnectionBudget(global, 200);
    const b = new ConnectionBudget(global, 200);
    a1.joinClient(shares.join('a'));
    a2.joinClient(shares.join('a'));
    b.joinClient(shares.join('b'));
    expect(a1.reserve(200)).toBe(true);
    expect(a2.reserve(150)).toBe(false);
    expect(a2.reserve(100)).toBe(true);
    expect(shares.inUse('a')).toBe(300);
    expect(b.reserve(200)).toBe(true);
    expect(global.inUse).toBe(500);
    a1.releaseAll();
    shares.leave('a');
    expect(shares.inUse('a')).toBe(100);
    expect(a2.reserve(100)).toBe(true);
    expect(shares.inUse('a')).toBe(200);
    a2.releaseAll();
    shares.leave('a');
    expect(shares.inUse('a')).toBe(0);
    expect(global.inUse).toBe(200);
  });
});

describe('answers waiting to be sent', () => {
  it('are counted on every level, apart from requests, and overdraw a level while they hold more than it allows', () => {
    const global = new MemoryBudget(1000);
    const shares = new ClientShares(300);
    const a = new ConnectionBudget(global, 200);
    const b = new ConnectionBudget(global, 200);
    a.joinClient(shares.join('a'));
    b.joinClient(shares.join('a'));
    a.charge(250);
    expect(a.overdrawn).toBe(true);
    expect(b.overdrawn).toBe(false);
    // Answers are counted apart: requests within the limits are admitted as before.
    expect(b.reserve(100)).toBe(true);
    expect(shares.inUse('a')).toBe(100);
    b.charge(100);
    // a's 250 and b's 100 unsent: the client's share (300) is overdrawn for both.
    expect(b.overdrawn).toBe(true);
    a.discharge(250);
    expect(a.overdrawn).toBe(false);
    expect(b.overdrawn).toBe(false);
    b.releaseAll();
    expect(global.inUse).toBe(0);
    expect(b.overdrawn).toBe(false);
  });
});

describe('answers piled up daemon-wide by one client', () => {
  it('refuse that client\'s requests, not those of a client that reads its answers', () => {
    // A client's links each make one answer at a time, so one that does not read can go past its
    // share (here 300) and the daemon's limit (1000) before its own level refuses it.
    const global = new MemoryBudget(1000);
    const shares = new ClientShares(300);
    const mallory = Array.from({ length: 6 }, () => new ConnectionBudget(global, 200));
    for (const link of mallory) link.joinClient(shares.join('mallory'));
    const alice = new ConnectionBudget(global, 200);
    alice.joinClient(shares.join('alice'));
    for (const link of mallory) link.charge(190);
    expect(global.overdrawn).toBe(true);
    expect(mallory.every((link) => link.overdrawn)).toBe(true);
    expect(alice.overdrawn).toBe(false);
    alice.charge(100); // answers on their way to a reader
    expect(alice.overdrawn).toBe(false);
    alice.charge(30); // 130: an eighth of the daemon's limit, while it is overdrawn
    expect(alice.overdrawn).toBe(true);
    for (const link of mallory) link.releaseAll();
    expect(global.overdrawn).toBe(false);
    expect(alice.overdrawn).toBe(false);
  });
});

describe('a request beyond the connection budget', () => {
  let home: string;
  let daemon: Daemon;
  let client: TestClient;
  beforeAll(async () => {
    home = makeHome({ datapath: { connectionMemoryBudget: 64 * 1024, maxFrameBytes: 1024 * 1024, receiveTimeout: 0 } });
    client = await makeClient('hungry');
    registerClient(home, client);
    daemon = await startDaemon(home);
  });
  afterAll(async () => {
    await daemon?.stop();
    removeHome(home);
  });

  it('is answered CKR_HOST_MEMORY with "Fail to allocate command buffer", and the connection goes on', async () => {
    const l = await link(daemon, client);
    const body = Buffer.alloc(200 * 1024);
    body.writeUInt32BE(0x4e540002, 0);
    const answer = await l.request(body);
    expect(answer.body.readUInt32BE(0)).toBe(0);
    expect(answer.body.readBigUInt64BE(9)).toBe(0x2n);
    const line = await daemon.waitForLog('Fail to allocate command buffer');
    expect(line).toMatch(/ local5 crit  NTLS \[\d+\]: critical : 0xc0000001 : Fail to allocate command buffer : 127\.0\.0\.1\/\d+ : RC_MEMORY_ALLOCATION$/);
    expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    await l.close();
  });
});
