// A daemon serving the TLS port on two processes (docs/workers.md: the main process and one
// datapath worker) serves as one: each behaviour a client can observe is checked with two links
// that `ntls info show` proves landed on different processes. Forced to 2 (--workers 2),
// whatever the number of cores.
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NtlsClient } from '../../src/client/ntls-client.js';
import type { Pkcs11Remote } from '../../src/client/pkcs11-remote.js';
import { CKA, CKK, CKM, CKO, CKR, CKU, Pkcs11Error } from '../../src/pkcs11/constants.js';
import type { Link } from '../../src/client/link.js';
import {
  keepaliveBody, link, linkWhenRegistered, makeClient, registerClient, removeHome, runNtls, sleep, startDaemon, workersLine, type Daemon,
} from '../support/daemon.js';
import { ClientHost, clientTestHome, CO_PIN, expectOk, initialiseSlot } from '../client/support.js';

interface WorkerRow { index: number; role: string; pid: number; connections: number; connectionsTotal: number }
interface Info { workers: WorkerRow[]; connectionsNow: number; requests: number; connectionsTotal: number }

let home: string;
let daemon: Daemon;
let alice: ClientHost;
const opened: NtlsClient[] = [];

async function info(): Promise<Info> {
  return JSON.parse(expectOk(await runNtls(['info', 'show', '--json', '--home', home])).stdout) as Info;
}

/** A new link (a client library with its first call made), and the worker that took it. */
async function linkOnAWorker(): Promise<{ client: NtlsClient; p11: Pkcs11Remote; worker: number }> {
  const before = await info();
  const client = alice.library();
  opened.push(client);
  const p11 = client.server();
  await p11.getSlotList();
  for (let attempt = 0; attempt < 50; attempt++) {
    const after = await info();
    const grew = after.workers.find((w) => w.connectionsTotal > (before.workers.find((b) => b.pid === w.pid)?.connectionsTotal ?? 0));
    if (grew) return { client, p11, worker: grew.index };
    await sleep(50);
  }
  throw new Error('no worker counted the new link');
}

/** Two links that landed on different processes (the least busy takes the next: at most a few tries). */
async function linksOnTwoWorkers(): Promise<[Pkcs11Remote, Pkcs11Remote]> {
  const first = await linkOnAWorker();
  for (let attempt = 0; attempt < 6; attempt++) {
    const second = await linkOnAWorker();
    if (second.worker !== first.worker) return [first.p11, second.p11];
  }
  throw new Error('every link landed on the same worker');
}

async function loggedIn(p11: Pkcs11Remote): Promise<number> {
  const session = await p11.openSession(0);
  await p11.login(session, CKU.USER, CO_PIN).catch((error: unknown) => {
    if (!(error instanceof Pkcs11Error && error.rv === CKR.USER_ALREADY_LOGGED_IN)) throw error;
  });
  return session;
}

const rv = (promise: Promise<unknown>) => promise.then(() => CKR.OK, (error: unknown) => (error instanceof Pkcs11Error ? error.rv : -1));

beforeAll(async () => {
  home = clientTestHome({ hsm: { kdfCost: 1024, pinMinLength: 4, maxFailedLogins: 4 } });
  daemon = await startDaemon(home, {}, ['--workers', '2']);
  alice = new ClientHost('alice');
  expectOk(await alice.run('create-cert', '--cn', 'alice'));
  expectOk(await runNtls(['client', 'register', '-c', 'alice', '--cert', alice.certificateFile, '--hostname', '127.0.0.1', '--home', home]));
  expectOk(await runNtls(['client', 'assign-partition', '-c', 'alice', '-p', 'default', '--home', home]));
  expectOk(await alice.run('add-server', '--host', '127.0.0.1', '--port', String(daemon.port), '--cert', `${home}/server/server.pem`, '--name', 'local'));
  await initialiseSlot(alice);
}, 60_000);

// Each test starts with no link open, so where its links land follows from the placement rule alone.
afterEach(async () => {
  for (const client of opened.splice(0)) await client.close().catch(() => undefined);
  for (let i = 0; i < 50 && (await info()).connectionsNow > 0; i++) await sleep(50);
});

afterAll(async () => {
  for (const client of opened) await client.close().catch(() => undefined);
  await daemon?.stop();
  if (home) removeHome(home);
  alice?.remove();
});

describe('the main process and a datapath worker, one service', () => {
  it('start-up reports the two processes that serve, and info show lists them: the main process, then the worker', async () => {
    expect(daemon.bodies()).toContain(workersLine(2));
    const { workers } = await info();
    expect(workers.map((w) => [w.index, w.role])).toEqual([[0, 'main'], [1, 'worker']]);
    expect(workers[0]!.pid).toBe(daemon.child.pid);
    expect(workers[1]!.pid).not.toBe(daemon.child.pid);
  });

  it('each new link stays in the main process while its links, counted twice, are no more than the worker\'s; else the worker takes it', async () => {
    const landed: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [main, worker] = (await info()).workers.map((w) => w.connections) as [number, number];
      const { worker: at } = await linkOnAWorker();
      expect(at).toBe(2 * main <= worker ? 0 : 1);
      landed.push(at);
    }
    expect(new Set(landed)).toEqual(new Set([0, 1]));
  });

  it('an object made through one process is found, changed and destroyed through the other at the next call', async () => {
    const [a, b] = await linksOnTwoWorkers();
    const sa = await loggedIn(a);
    const sb = await loggedIn(b);
    const label = 'made-on-worker-a';
    const made = await a.createObject(sa, [
      { type: CKA.CLASS, value: CKO.SECRET_KEY }, { type: CKA.KEY_TYPE, value: CKK.GENERIC_SECRET }, { type: CKA.TOKEN, value: true },
      { type: CKA.LABEL, value: label }, { type: CKA.VALUE, value: Buffer.alloc(32, 7) }, { type: CKA.SENSITIVE, value: false },
    ]);
    const found = await b.findObjects(sb, [{ type: CKA.LABEL, value: label }]);
    expect(found).toEqual([made]);
    await b.setAttributeValue(sb, made, [{ type: CKA.LABEL, value: 'renamed-on-b' }]);
    const [read] = await a.getAttributeValue(sa, made, [CKA.LABEL]);
    expect(Buffer.from(read!.value as Buffer).toString()).toBe('renamed-on-b');
    await b.destroyObject(sb, made);
    expect(await a.findObjects(sa, [{ type: CKA.LABEL, value: 'renamed-on-b' }])).toEqual([]);
    expect(await rv(a.getAttributeValue(sa, made, [CKA.LABEL]))).toBe(CKR.OBJECT_HANDLE_INVALID);
  });

  it('the counters of info show and the metrics sum both processes', async () => {
    const [a, b] = await linksOnTwoWorkers();
    const before = await info();
    for (let i = 0; i < 10; i++) {
      await a.getSlotList();
      await b.getSlotList();
    }
    const after = await info();
    expect(after.requests - before.requests).toBeGreaterThanOrEqual(20);
    expect(after.connectionsNow).toBe(after.workers.reduce((sum, w) => sum + w.connections, 0));
    expect(after.workers.every((w) => w.connections > 0)).toBe(true);
  });

  it('every line in lunalogs is whole, in the guide\'s shape, written by the main process', () => {
    const lines = readFileSync(`${home}/logs/lunalogs`, 'utf8').trimEnd().split('\n');
    const shape = /^\d{4} \w{3} \d{2} \d{2}:\d{2}:\d{2} \S+ +local5 \w+ +NTLS \[(\d+)\]: \S/;
    for (const line of lines) expect(line).toMatch(shape);
    expect(new Set(lines.map((l) => shape.exec(l)![1]))).toEqual(new Set([String(daemon.child.pid)]));
  });

  it('kill -9 of the worker during a sign loop: the main process\'s links go on, the crash line is written, a new worker takes new links', async () => {
    const [a, b] = await linksOnTwoWorkers();
    const sa = await loggedIn(a);
    const sb = await loggedIn(b);
    const keyOf = async (p11: Pkcs11Remote, session: number) => (await p11.generateKeyPair(session, { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
      [{ type: CKA.EC_PARAMS, value: Buffer.from('06082a8648ce3d030107', 'hex') }, { type: CKA.TOKEN, value: false }],
      [{ type: CKA.TOKEN, value: false }, { type: CKA.SIGN, value: true }])).privateKey;
    const ka = await keyOf(a, sa);
    const kb = await keyOf(b, sb);
    // a and b are on different processes: killing the worker ends exactly one loop.
    const killed = (await info()).workers[1]!;
    expect(killed.pid).not.toBe(daemon.child.pid);
    let stop = false;
    const loop = async (p11: Pkcs11Remote, session: number, key: number) => {
      let ok = 0;
      let failed = 0;
      while (!stop) {
        try {
          await p11.sign(session, { type: CKM.ECDSA, parameter: null }, key, Buffer.alloc(32, 1));
          ok++;
        } catch {
          failed++;
          break;
        }
      }
      return { ok, failed };
    };
    const loops = [loop(a, sa, ka), loop(b, sb, kb)];
    await sleep(300);
    process.kill(killed.pid, 'SIGKILL');
    await sleep(700);
    stop = true;
    const [ra, rb] = await Promise.all(loops);
    const results = [ra!, rb!];
    expect(results.filter((r) => r.failed === 0)).toHaveLength(1);
    expect(results.filter((r) => r.failed === 1)).toHaveLength(1);
    // Written by the main process when it sees the worker's exit: waited for, not read once.
    expect(await daemon.waitForLog('NTLS CRASH AND BURN and unable to dump the stack!')).toMatch(/info : 0 : NTLS CRASH AND BURN and unable to dump the stack!$/);
    let replaced: WorkerRow[] = [];
    for (let attempt = 0; attempt < 100 && replaced.length !== 2; attempt++) {
      replaced = (await info()).workers;
      if (replaced.length !== 2 || replaced.some((w) => w.pid === killed.pid)) replaced = [];
      await sleep(100);
    }
    expect(replaced.map((w) => w.index)).toEqual([0, 1]);
    // The new worker holds nothing yet: the next link is its.
    expect((await linkOnAWorker()).worker).toBe(1);
  });

  it('PIN failures through both processes are counted once toward the lock', async () => {
    const [a, b] = await linksOnTwoWorkers();
    const sa = await a.openSession(0);
    const sb = await b.openSession(0);
    // maxFailedLogins is 4: two wrong PINs through each process lock the user.
    for (const [p11, session] of [[a, sa], [b, sb], [a, sa], [b, sb]] as const) {
      expect(await rv(p11.login(session, CKU.USER, 'wrong-pin'))).toBe(CKR.PIN_INCORRECT);
    }
    expect(await rv(a.login(sa, CKU.USER, CO_PIN))).toBe(CKR.PIN_LOCKED);
    expect(await rv(b.login(sb, CKU.USER, CO_PIN))).toBe(CKR.PIN_LOCKED);
  });

  it('client delete ends the client\'s links on every process', async () => {
    const [a, b] = await linksOnTwoWorkers();
    const before = (await info()).connectionsNow;
    expect(before).toBeGreaterThanOrEqual(2);
    expectOk(await runNtls(['client', 'delete', '-c', 'alice', '--force', '--json', '--home', home]));
    for (let attempt = 0; attempt < 50 && (await info()).connectionsNow > 0; attempt++) await sleep(100);
    expect((await info()).connectionsNow).toBe(0);
    expect(await rv(a.getSlotList())).not.toBe(CKR.OK);
    expect(await rv(b.getSlotList())).not.toBe(CKR.OK);
  });
});

describe('the limits hold for the whole daemon over two processes', () => {
  it('datapath.maxConnectionsPerClient 4: each process holds 2, so a client gets 4 links in all', async () => {
    const limited = clientTestHome({ datapath: { maxConnectionsPerClient: 4, maxConnections: 64, receiveTimeout: 0 } });
    const d = await startDaemon(limited, {}, ['--workers', '2']);
    const greedy = await makeClient('greedy');
    registerClient(limited, greedy);
    const links: Link[] = [];
    try {
      let refused = 0;
      for (let i = 0; i < 8; i++) {
        try {
          const l = i === 0 ? await linkWhenRegistered(d, greedy) : await link(d, greedy);
          await l.request(keepaliveBody());
          links.push(l);
        } catch {
          refused++;
        }
      }
      expect(links).toHaveLength(4);
      expect(refused).toBe(4);
    } finally {
      for (const l of links) await l.close().catch(() => undefined);
      await d.stop();
      removeHome(limited);
    }
  });
});
