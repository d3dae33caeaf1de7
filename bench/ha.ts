// Client HA groups: signatures/s through an HA group of 1 node and of 2 nodes (same partition,
// each daemon pinned to a core of its own with taskset when there are two), and the ratio; then
// failover: a sign loop on the 2-node group while one node is killed -9, the longest pause the
// loop sees (the longest time without any signature completing) and the failed calls (none
// expected); then how long the node takes to rejoin after its restart (recovery interval 1 s).
// Node 2 is a copy of node 1's stopped home (same partition, same key handles), as nodes on one
// shared store would be. The client library (HaConnection) runs in this process, on the cores
// the daemons use too: figures are for this machine, as ratios where they can be.
//
//   npm run bench:ha          (BENCH_SECONDS=5 per window, BENCH_ROUNDS=3, BENCH_LANES=8)
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NtlsClient } from '../src/client/ntls-client.js';
import type { TokenSession } from '../src/client/token-session.js';
import { CKM, CKO, CKU } from '../src/pkcs11/constants.js';
import { freePort } from './stock/stunnel.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ntlsBin = join(root, 'dist/src/cli/ntls.js');
const clientBin = join(root, 'dist/src/cli/ntls-client.js');
const resultsFile = join(root, 'bench/results/ha.json');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const LANES = Number(process.env.BENCH_LANES ?? 8);
const SO_PIN = 'so-pin-1';
const CO_PIN = 'co-pin-1';
const ECDSA_SHA256 = { type: CKM.ECDSA_SHA256, parameter: null };
const pinned = availableParallelism() >= 2 && spawnSync('taskset', ['-V']).status === 0;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function run(bin: string, args: string[]): string {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, NTLS_PIN: '' } });
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

class Node {
  child: ChildProcess | null = null;

  constructor(readonly name: string, readonly home: string, readonly port: number, readonly core: number) {}

  async start(): Promise<void> {
    const args = [ntlsBin, 'start', '--home', this.home, '--quiet'];
    const child = pinned ? spawn('taskset', ['-c', String(this.core), process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`${this.name} did not start: ${out}`)), 30_000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (/online on/.test(out)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.once('exit', () => reject(new Error(`${this.name} exited: ${out}`)));
    });
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
  }
}

function writeHome(home: string, port: number): void {
  writeFileSync(join(home, 'ntls.json'), JSON.stringify({
    server: { bind: '127.0.0.1', port }, hsm: { kdfCost: 1024, pinMinLength: 4 }, datapath: { receiveTimeout: 0 },
  }, null, 2));
}

interface Loop {
  signed: number;
  failed: number;
  /** Completion times (ms), in order. */
  times: number[];
}

/** `lanes` sessions signing back to back for `ms`. */
async function signLoop(tokens: TokenSession[], handle: number, ms: number, onTick?: () => void): Promise<Loop> {
  const loop: Loop = { signed: 0, failed: 0, times: [] };
  const end = performance.now() + ms;
  const data = Buffer.alloc(32, 0x61);
  await Promise.all(tokens.map(async (token) => {
    while (performance.now() < end) {
      try {
        await token.remote.sign(token.session, ECDSA_SHA256, handle, data);
        loop.signed++;
        loop.times.push(performance.now());
      } catch {
        loop.failed++;
      }
      onTick?.();
    }
  }));
  return loop;
}

function longestGap(times: number[], from: number, to: number): number {
  const inside = times.filter((t) => t >= from && t <= to).sort((a, b) => a - b);
  let gap = 0;
  for (let i = 1; i < inside.length; i++) gap = Math.max(gap, inside[i]! - inside[i - 1]!);
  return gap;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'ntls-bench-ha-'));
  const folder = join(work, 'client');
  const home1 = join(work, 'node1');
  const home2 = join(work, 'node2');
  mkdirSync(home1, { recursive: true });
  mkdirSync(folder, { recursive: true, mode: 0o700 });
  const node1 = new Node('node1', home1, await freePort(), 0);
  writeHome(home1, node1.port);
  const nodes: Node[] = [node1];
  try {
    await node1.start();
    run(clientBin, ['create-cert', '--cn', 'bench', '--config-dir', folder]);
    run(ntlsBin, ['client', 'register', '-c', 'bench', '--cert', join(folder, 'bench.pem'), '--hostname', '127.0.0.1', '--home', home1]);
    run(ntlsBin, ['client', 'assign-partition', '-c', 'bench', '-p', 'default', '--home', home1]);
    run(clientBin, ['add-server', '--host', '127.0.0.1', '--port', String(node1.port), '--cert', join(home1, 'server', 'server.pem'), '--name', 'node1', '--config-dir', folder]);
    const setup = NtlsClient.fromConfig({ folder });
    const p11 = setup.server('node1');
    await p11.initToken(0, SO_PIN, 'default');
    const s0 = await p11.openSession(0);
    await p11.login(s0, CKU.SO, SO_PIN);
    await p11.initPin(s0, CO_PIN);
    await p11.logout(s0);
    await p11.closeSession(s0);
    const token0 = await setup.openToken({ server: 'node1', pin: CO_PIN });
    await token0.generateKeyPair('ec-p256', { label: 'bench' });
    await token0.close();
    await setup.close();
    await node1.stop();
    cpSync(home1, home2, { recursive: true });
    const node2 = new Node('node2', home2, await freePort(), 1);
    writeHome(home2, node2.port);
    nodes.push(node2);
    await node1.start();
    await node2.start();
    run(clientBin, ['add-server', '--host', '127.0.0.1', '--port', String(node2.port), '--cert', join(home2, 'server', 'server.pem'), '--name', 'node2', '--config-dir', folder]);
    for (const [group, members] of [['one', ['node1']], ['two', ['node1', 'node2']]] as const) {
      run(clientBin, ['ha', 'create', '--group', group, '--partition', 'default', '--recovery-interval', '1', '--config-dir', folder]);
      for (const m of members) run(clientBin, ['ha', 'add-member', '--group', group, '--server', m, '--config-dir', folder]);
    }

    const client = NtlsClient.fromConfig({ folder });
    const open = async (group: string) => {
      const tokens = await Promise.all(Array.from({ length: LANES }, () => client.openToken({ group, pin: CO_PIN })));
      const handle = await tokens[0]!.findKey('bench', [CKO.PRIVATE_KEY]);
      return { tokens, handle };
    };
    const one = await open('one');
    const two = await open('two');
    // The reference: node1 without a group (one link, C_SignInit and C_Sign pipelined).
    const directTokens = await Promise.all(Array.from({ length: LANES }, () => client.openToken({ server: 'node1', pin: CO_PIN })));
    const direct = { tokens: directTokens, handle: await directTokens[0]!.findKey('bench', [CKO.PRIVATE_KEY]) };
    for (const g of [direct, one, two]) await signLoop(g.tokens, g.handle, 1000);
    const rates: Record<'direct' | 'one' | 'two', number[]> = { direct: [], one: [], two: [] };
    const names = { direct: 'node1, no group', one: 'group of 1 node', two: 'group of 2 nodes' };
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, g] of [['direct', direct], ['one', one], ['two', two]] as const) {
        const loop = await signLoop(g.tokens, g.handle, SECONDS * 1000);
        rates[name].push(loop.signed / SECONDS);
        process.stdout.write(`round ${round + 1}: ${names[name]}: ${(loop.signed / SECONDS).toFixed(0)} signatures/s${loop.failed ? `, ${loop.failed} failed` : ''}\n`);
      }
    }
    for (const token of directTokens) await token.close();
    const spread = client.groupStatus('two').members.map((m) => ({ member: m.name, calls: m.calls }));

    // Failover: kill node2 -9 in the middle of a 6 s loop on the 2-node group.
    const killAfterMs = 2000;
    const started = performance.now();
    let killedAt = 0;
    const killing = sleep(killAfterMs).then(async () => {
      killedAt = performance.now();
      await node2.stop('SIGKILL');
    });
    const failover = await signLoop(two.tokens, two.handle, 6000);
    await killing;
    const pauseMs = longestGap(failover.times, killedAt - 500, started + 6000);
    const steadyGapMs = longestGap(failover.times, started + 200, killedAt);

    // Rejoin: node2 started again; time until it has answered calls again.
    const callsBefore = client.groupStatus('two').members.find((m) => m.name === 'node2')!.calls;
    await node2.start();
    const restartedAt = performance.now();
    let rejoinMs: number | null = null;
    await signLoop(two.tokens, two.handle, 15_000, () => {
      if (rejoinMs === null && client.groupStatus('two').members.find((m) => m.name === 'node2')!.calls > callsBefore + 2) rejoinMs = performance.now() - restartedAt;
    });
    await client.close();

    const directRate = median(rates.direct);
    const oneRate = median(rates.one);
    const twoRate = median(rates.two);
    const record = {
      benchmark: 'ha',
      command: 'npm run bench:ha',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, model: cpus()[0]?.model ?? '', node: process.version },
      settings: { seconds: SECONDS, rounds: ROUNDS, lanes: LANES, daemonsPinnedToOwnCore: pinned, mechanism: 'CKM_ECDSA_SHA256 (P-256)', recoveryIntervalSeconds: 1 },
      throughput: {
        directNoGroup: { signaturesPerSecond: Math.round(directRate), rounds: rates.direct.map(Math.round) },
        groupOf1: { signaturesPerSecond: Math.round(oneRate), rounds: rates.one.map(Math.round) },
        groupOf2: { signaturesPerSecond: Math.round(twoRate), rounds: rates.two.map(Math.round), callsPerMember: spread },
        ratio2to1: Number((twoRate / oneRate).toFixed(2)),
        ratioGroupOf1ToDirect: Number((oneRate / directRate).toFixed(2)),
      },
      failover: {
        killed: 'node2 (kill -9) during a sign loop on the 2-node group',
        failedCalls: failover.failed,
        signedDuringWindow: failover.signed,
        longestPauseMs: Math.round(pauseMs),
        longestPauseBeforeKillMs: Math.round(steadyGapMs),
        rejoinAfterRestartMs: rejoinMs === null ? null : Math.round(rejoinMs),
      },
      note: 'client library, both daemons and the bench share this machine; daemons pinned to cores 0 and 1 with taskset when possible. '
        + 'The library holds one link per member and a daemon answers the calls of one link one at a time, so a group of 2 also doubles the links; '
        + 'the library sends C_SignInit and C_Sign together on a group as on one server (one round trip); the group adds its queue per virtual session and its bookkeeping.',
    };
    writeFileSync(resultsFile, JSON.stringify(record, null, 2) + '\n');
    process.stdout.write(`\nnode1 without a group: ${Math.round(directRate)} sig/s; group of 1: ${Math.round(oneRate)} sig/s (${record.throughput.ratioGroupOf1ToDirect} of it); group of 2: ${Math.round(twoRate)} sig/s; ratio ${record.throughput.ratio2to1}\n`
      + `failover: ${failover.failed} failed call(s), longest pause ${Math.round(pauseMs)} ms (${Math.round(steadyGapMs)} ms before the kill); node2 back after ${rejoinMs === null ? '-' : Math.round(rejoinMs)} ms\n`
      + `written to ${resultsFile}\n`);
  } finally {
    for (const node of nodes) await node.stop().catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
