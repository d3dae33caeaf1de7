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
  it('are charged on every level, over the limit if need be, and overdraw the budget until they leave', () => {
    const global = new MemoryBudget(1000);
    const shares = new ClientShares(300);
    const a = new ConnectionBudget(global, 200);
    const b = new ConnectionBudget(global, 200);
    a.joinClient(shares.join('a'));
    b.joinClient(shares.join('a'));
    a.charge(250);
    expect(a.overdrawn).toBe(true);
    expect(shares.inUse('a')).toBe(250);
    expect(b.overdrawn).toBe(false);
    // The client's share is what b draws on too: a's unsent answers leave b room for 50 only.
    expect(b.reserve(60)).toBe(false);
    b.charge(100);
    expect(b.overdrawn).toBe(true);
    a.discharge(250);
    expect(a.overdrawn).toBe(false);
    expect(b.overdrawn).toBe(false);
    // Request bytes within the limit never overdraw: only unsent answers beyond it do.
    expect(b.reserve(100)).toBe(true);
    expect(b.overdrawn).toBe(false);
    b.releaseAll();
    b.discharge(100);
    expect(global.inUse).toBe(0);
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
