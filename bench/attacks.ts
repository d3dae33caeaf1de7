// The attacks of issue 14, re-run against the real daemon with its default limits, on loopback:
// what one registered client (or an unauthenticated flood) can take from the others.
//
//   memory-declare  64 links of one client each declare a 4 MiB request and send nothing
//   memory-send     the same, sending all but the last byte (the memory is really held)
//   connections     one client opens links until refused (1,024 at most)
//   flood           2,000 never-handshaking sockets from 40 addresses, reopened when closed
//   flood-wide      the same from 250 addresses (fewer than the per-address limit each)
//   revocation      the client's certificate removed from the verify location while it calls
//
// Each row gives what another registered client got meanwhile: PKCS#11 calls served on a link it
// already had (C_GetInfo, out of 100), new links made (out of 10, each allowed 5 s) with the
// slowest one, and the daemon's resident memory (now and peak). No figure here is a pass/fail
// verdict; the tests in test/datapath/hardening-*.test.ts hold the behaviour.
//
//   npm run bench:attacks        (BENCH_ATTACKS=flood,memory-send to run some rows only)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSelfSignedCertificate } from '../src/certificates/self-signed.js';
import type { Link } from '../src/client/link.js';
import {
  closeAll, endpointOf, newLinks, openClientLink, openMany, partialFrame, rssOf, servedCalls,
  UnauthenticatedFlood, type ClientIdentity, type Endpoint,
} from '../test/support/attacks.js';

const ntlsBin = fileURLToPath(new URL('../src/cli/ntls.js', import.meta.url));
const resultsFile = fileURLToPath(new URL('../../bench/results/attacks.json', import.meta.url));
const MiB = 1024 * 1024;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class BenchDaemon {
  private constructor(readonly home: string, readonly child: ChildProcess, readonly endpoint: Endpoint) {}

  static async start(clients: ClientIdentity[]): Promise<BenchDaemon> {
    const home = mkdtempSync(join(tmpdir(), 'ntls-attacks-'));
    writeFileSync(join(home, 'ntls.json'), JSON.stringify({ server: { bind: '127.0.0.1', port: 0 } }));
    mkdirSync(join(home, 'clients'));
    for (const c of clients) {
      writeFileSync(join(home, 'clients', `${c.name}.json`), JSON.stringify({ host: '127.0.0.1', partitions: [] }));
      writeFileSync(join(home, 'clients', `${c.name}.pem`), c.certificatePem);
    }
    // BENCH_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the daemon under attack.
    const nodeArgs = (process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, ntlsBin, 'start', '--home', home, '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const port = await new Promise<number>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`ntls did not come online in 30 s: ${output}`)); }, 30_000);
      child.stdout.on('data', (d: Buffer) => {
        output += d.toString();
        const match = /online on (\S+):(\d+)/.exec(output);
        if (match) { clearTimeout(timer); resolve(Number(match[2])); }
      });
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.once('exit', (status) => { clearTimeout(timer); reject(new Error(`ntls exited ${status}: ${output}`)); });
    });
    return new BenchDaemon(home, child, endpointOf(home, port));
  }

  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.home, { recursive: true, force: true });
  }
}

interface Row {
  attack: string;
  detail: string;
  callsServed: string;
  hostMemory: number;
  newLinks: string;
  slowestLinkMs: number;
  linkMs: number[];
  rssMiB: number;
  peakRssMiB: number;
  note?: string;
}

async function identity(name: string): Promise<ClientIdentity> {
  return { name, ...(await createSelfSignedCertificate({ commonName: name, keyType: 'ecdsa-p256', usage: 'client', dnsNames: [name] })) };
}

/** The victim's view while an attack holds: calls on its existing link, then new links. */
async function victim(daemon: BenchDaemon, client: ClientIdentity, existing: Link): Promise<Omit<Row, 'attack' | 'detail'>> {
  const calls = await servedCalls(existing, 100);
  const links = await newLinks(daemon.endpoint, client, 10, 5000);
  const memory = rssOf(daemon.pid);
  return {
    callsServed: `${calls.ok}/100`, hostMemory: calls.hostMemory,
    newLinks: `${links.made}/10`, slowestLinkMs: Math.max(...links.times), linkMs: links.times,
    rssMiB: memory.rssMiB, peakRssMiB: memory.peakMiB,
  };
}

type Attack = (daemon: BenchDaemon, attacker: ClientIdentity, victimClient: ClientIdentity) => Promise<Row>;

const attacks: Record<string, Attack> = {
  'memory-declare': async (daemon, attacker, victimClient) => {
    const existing = await openClientLink(daemon.endpoint, victimClient);
    const { links } = await openMany(daemon.endpoint, attacker, 64);
    for (const l of links) l.writeRaw(partialFrame(4 * MiB, 0));
    await sleep(500);
    const row = await victim(daemon, victimClient, existing);
    await closeAll([...links, existing]);
    return { attack: 'memory-declare', detail: `${links.length} links x 4 MiB declared, nothing sent`, ...row };
  },
  'memory-send': async (daemon, attacker, victimClient) => {
    const existing = await openClientLink(daemon.endpoint, victimClient);
    const { links } = await openMany(daemon.endpoint, attacker, 64);
    await Promise.all(links.map((l) => new Promise<void>((resolve) => {
      if (l.socket.write(partialFrame(4 * MiB, 4 * MiB - 1))) resolve();
      else { l.socket.once('drain', () => resolve()); l.socket.once('close', () => resolve()); }
    })));
    await sleep(1000);
    const row = await victim(daemon, victimClient, existing);
    const alive = links.filter((l) => !l.socket.destroyed).length;
    await closeAll([...links, existing]);
    return { attack: 'memory-send', detail: `${links.length} links x 4 MiB declared, 4 MiB - 1 sent`, ...row, note: `${alive} attacker links still open` };
  },
  'connections': async (daemon, attacker, victimClient) => {
    const existing = await openClientLink(daemon.endpoint, victimClient);
    const { links, refused } = await openMany(daemon.endpoint, attacker, 1024, 16);
    const row = await victim(daemon, victimClient, existing);
    await closeAll([...links, existing]);
    return { attack: 'connections', detail: `${links.length} idle links of one client (${refused} refused)`, ...row };
  },
  'flood': async (daemon, _attacker, victimClient) => {
    const existing = await openClientLink(daemon.endpoint, victimClient);
    const flood = new UnauthenticatedFlood(daemon.endpoint, 2000, 40);
    flood.start();
    await flood.rampedUp(1500);
    await sleep(2000);
    const row = await victim(daemon, victimClient, existing);
    const opened = flood.opened;
    flood.stop();
    await closeAll([existing]);
    return { attack: 'flood', detail: `2,000 silent sockets from 40 addresses (${opened} opened in all)`, ...row };
  },
  'flood-wide': async (daemon, _attacker, victimClient) => {
    const existing = await openClientLink(daemon.endpoint, victimClient);
    const flood = new UnauthenticatedFlood(daemon.endpoint, 2000, 250);
    flood.start();
    await flood.rampedUp(1500);
    await sleep(2000);
    const row = await victim(daemon, victimClient, existing);
    const opened = flood.opened;
    flood.stop();
    await closeAll([existing]);
    return { attack: 'flood-wide', detail: `2,000 silent sockets from 250 addresses (${opened} opened in all)`, ...row };
  },
  'revocation': async (daemon, attacker, victimClient) => {
    const existing = await openClientLink(daemon.endpoint, victimClient);
    const revoked = await openClientLink(daemon.endpoint, attacker);
    const removedAt = Date.now();
    let cutAfterMs = -1;
    revoked.socket.once('close', () => { cutAfterMs = Date.now() - removedAt; });
    rmSync(join(daemon.home, 'clients', `${attacker.name}.pem`));
    // Calls the removed client still gets served in the 6 s after its certificate went.
    const until = Date.now() + 6000;
    let served = 0;
    while (Date.now() < until) {
      const tally = await servedCalls(revoked, 10, 1000);
      served += tally.ok;
      if (tally.ok === 0) break;
    }
    const row = await victim(daemon, victimClient, existing);
    await closeAll([revoked, existing]);
    return {
      attack: 'revocation', detail: 'certificate removed from the verify location', ...row,
      note: `removed client served ${served} calls after removal; its link ${cutAfterMs < 0 ? 'still open after 6 s' : `closed ${cutAfterMs} ms after`}`,
    };
  },
};

async function main(): Promise<void> {
  const wanted = (process.env.BENCH_ATTACKS ?? Object.keys(attacks).join(',')).split(',').filter(Boolean);
  const attacker = await identity('attacker');
  const victimClient = await identity('victim');
  const rows: Row[] = [];
  for (const name of wanted) {
    const attack = attacks[name];
    if (!attack) throw new Error(`unknown attack ${name}; known: ${Object.keys(attacks).join(', ')}`);
    const daemon = await BenchDaemon.start([attacker, victimClient]);
    try {
      const row = await attack(daemon, attacker, victimClient);
      rows.push(row);
      process.stdout.write(`${JSON.stringify(row)}\n`);
    } finally {
      await daemon.stop();
    }
  }
  console.table(rows);
  mkdirSync(join(resultsFile, '..'), { recursive: true });
  writeFileSync(resultsFile, JSON.stringify({ measuredAt: new Date().toISOString(), node: process.version, rows }, null, 2) + '\n');
}

await main();
