// Signing throughput over the network: RSA-2048 (CKM_SHA256_RSA_PKCS), P-256 (CKM_ECDSA_SHA256,
// and CKM_ECDSA over a SHA-256 digest as stock PKCS#11 applications send it) and Ed25519
// (CKM_EDDSA), at 1, 8 and 64 connections, each connection with one signature in flight
// (C_SignInit and C_Sign pipelined back to back). Printed as ratios against two references
// measured in the same run, one cell right after the other so a shared machine's changing load
// skews all three alike:
//   - in-process node:crypto: crypto.sign with callbacks, as many parallel loops as connections;
//   - `p11-kit server` fronting SoftHSM2, driven by the same client path as ntls (our p11-kit
//     codec over a socket; a unix socket there, a mutual-TLS NTLS link here).
// The client, the daemon and the references share this machine's cores: the network figures
// include the client's own TLS and codec work, which a real deployment runs elsewhere.
//
//   npm run bench:network        (BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS=1,8,64;
//                                 BENCH_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles ntls)
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, createHash, sign, type KeyObject } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CKM } from '../src/pkcs11/constants.js';
import { outputRequest, request } from '../src/protocol/p11kit/index.js';
import { NtlsDaemon, NTLS_USER_PIN } from './network/ntls-daemon.js';
import { answerOf, encoded, type RpcChannel } from './network/rpc-channel.js';
import { SoftHsmServer, SOFTHSM_USER_PIN } from './network/softhsm-server.js';
import { generateSigningKeys, initialize, mechanismsOf, openUserSession, prepareConnection, type KeyName, type TokenConnection } from './network/token.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 0.5);
/** Each system's SECONDS are split into this many turns, interleaved with the others'. */
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3));
/** Lanes restart at every turn; after the first, a short settle is enough. */
const REWARM_SECONDS = 0.1;
const CONNECTIONS = (process.env.BENCH_CONNECTIONS ?? '1,8,64').split(',').map(Number);
const resultsFile = fileURLToPath(new URL('../../bench/results/network-sign.json', import.meta.url));

const message = Buffer.alloc(32, 0x61);
const digest = createHash('sha256').update(message).digest();

interface Case {
  name: string;
  mechanismName: string;
  mechanism: number;
  key: KeyName;
  data: Buffer;
  signatureBytes: number;
  /**
   * What the p11-kit reference runs when its token lacks `mechanism`: SoftHSM2 2.6 has no
   * CKM_ECDSA_SHA256, so there the client hashes and sends CKM_ECDSA, as stock applications do.
   */
  fallback?: { mechanismName: string; mechanism: number; data: Buffer };
  /** The same signature by node:crypto, with a callback. */
  inProcess(done: (error: Error | null, signature: Buffer) => void): void;
}

function cases(keys: Record<KeyName, KeyObject>): Case[] {
  return [
    {
      name: 'RSA-2048', mechanismName: 'CKM_SHA256_RSA_PKCS', mechanism: CKM.SHA256_RSA_PKCS, key: 'rsa-2048', data: message, signatureBytes: 256,
      inProcess: (done) => sign('sha256', message, keys['rsa-2048'], done),
    },
    {
      name: 'P-256', mechanismName: 'CKM_ECDSA_SHA256', mechanism: CKM.ECDSA_SHA256, key: 'p-256', data: message, signatureBytes: 64,
      fallback: { mechanismName: 'CKM_ECDSA (digest)', mechanism: CKM.ECDSA, data: digest },
      inProcess: (done) => sign('sha256', message, { key: keys['p-256'], dsaEncoding: 'ieee-p1363' }, done),
    },
    {
      // node:crypto signs only what it hashes itself: the reference hashes 32 bytes more.
      name: 'P-256', mechanismName: 'CKM_ECDSA (digest)', mechanism: CKM.ECDSA, key: 'p-256', data: digest, signatureBytes: 64,
      inProcess: (done) => sign('sha256', message, { key: keys['p-256'], dsaEncoding: 'ieee-p1363' }, done),
    },
    {
      name: 'Ed25519', mechanismName: 'CKM_EDDSA', mechanism: CKM.EDDSA, key: 'ed25519', data: message, signatureBytes: 64,
      inProcess: (done) => sign(null, message, keys.ed25519, done),
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// CPU accounting over a measurement window: this process, the ntls daemon, the whole machine.

function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** What one measurement window saw; windows of one system add up. */
interface Tally {
  signatures: number;
  seconds: number;
  clientCpuSeconds: number;
  daemonCpuSeconds: number | null;
  machineBusy: number;
  machineTotal: number;
}

interface Window {
  opsPerSecond: number;
  /** Cores busy on the whole machine during the window (0..CPUs). */
  machineCores: number;
  /** Cores used by this (client) process and by the daemon. */
  clientCores: number;
  daemonCores: number | null;
}

function add(a: Tally | null, b: Tally): Tally {
  if (!a) return b;
  return {
    signatures: a.signatures + b.signatures,
    seconds: a.seconds + b.seconds,
    clientCpuSeconds: a.clientCpuSeconds + b.clientCpuSeconds,
    daemonCpuSeconds: a.daemonCpuSeconds === null || b.daemonCpuSeconds === null ? null : a.daemonCpuSeconds + b.daemonCpuSeconds,
    machineBusy: a.machineBusy + b.machineBusy,
    machineTotal: a.machineTotal + b.machineTotal,
  };
}

function windowOf(t: Tally): Window {
  return {
    opsPerSecond: t.signatures / t.seconds,
    machineCores: (t.machineBusy / Math.max(1, t.machineTotal)) * availableParallelism(),
    clientCores: t.clientCpuSeconds / t.seconds,
    daemonCores: t.daemonCpuSeconds === null ? null : t.daemonCpuSeconds / t.seconds,
  };
}

/**
 * Runs `lanes` loops of `once` for `warmup` seconds, then counts completions over `seconds`;
 * loops still running at the end are awaited and not counted.
 */
async function measure(lanes: number, once: (lane: number) => Promise<void>, daemonPid: number | null, warmup: number, seconds: number): Promise<Tally> {
  let stop = false;
  let count = 0;
  const loops = Array.from({ length: lanes }, async (_, lane) => {
    while (!stop) {
      await once(lane);
      count++;
    }
  });
  let failure: unknown = null;
  const failed = Promise.all(loops).catch((error) => { failure = error; stop = true; });
  await sleep(warmup * 1000);
  const c0 = count, t0 = performance.now(), u0 = process.cpuUsage(), m0 = machineCpu();
  const d0 = daemonPid === null ? 0 : processCpuSeconds(daemonPid);
  await sleep(seconds * 1000);
  const c1 = count, t1 = performance.now(), u1 = process.cpuUsage(u0), m1 = machineCpu();
  const d1 = daemonPid === null ? 0 : processCpuSeconds(daemonPid);
  stop = true;
  await failed;
  if (failure) throw failure;
  return {
    signatures: c1 - c0,
    seconds: (t1 - t0) / 1000,
    clientCpuSeconds: (u1.user + u1.system) / 1e6,
    daemonCpuSeconds: daemonPid === null ? null : d1 - d0,
    machineBusy: m1.busy - m0.busy,
    machineTotal: m1.total - m0.total,
  };
}

/** Installed Debian package versions of the reference, for the record. */
function packageVersions(): Record<string, string> {
  try {
    const out = execFileSync('dpkg-query', ['-W', '-f', '${Package} ${Version}\\n', 'p11-kit', 'softhsm2'], { encoding: 'utf8' });
    return Object.fromEntries(out.trim().split('\n').map((line) => line.split(' ') as [string, string]));
  } catch {
    return {};
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function inProcessLane(c: Case): () => Promise<void> {
  return () => new Promise((resolve, reject) => c.inProcess((error, signature) => {
    if (error) reject(error);
    else if (signature.length !== c.signatureBytes) reject(new Error(`${c.name}: ${signature.length}-byte signature`));
    else resolve();
  }));
}

/** One signature per call on one connection: C_SignInit and C_Sign sent back to back. */
function networkLane(connection: TokenConnection, c: Case, run: { mechanism: number; data: Buffer } = c): () => Promise<void> {
  const { channel, session } = connection;
  // The requests are the same every time: encoded once; every answer is decoded and checked.
  const init = encoded(request('C_SignInit', { session, mechanism: { type: run.mechanism, parameter: null }, key: connection.keys[c.key] }));
  const signing = encoded(request('C_Sign', { session, data: run.data, signature: outputRequest(512) }));
  return async () => {
    const [initAnswer, signAnswer] = await Promise.all([channel.send(init), channel.send(signing)]);
    answerOf('C_SignInit', initAnswer);
    const signature = answerOf('C_Sign', signAnswer)!.signature;
    if (!Buffer.isBuffer(signature) || signature.length !== c.signatureBytes) throw new Error(`${c.name} ${c.mechanismName}: bad signature answer`);
  };
}

/**
 * `count` connections, `together` at a time. SoftHSM2 processes that C_Initialize and C_Login
 * at the same moment on one token folder trip over each other (CKR_GENERAL_ERROR, or no token
 * present), so the reference's connections are opened one by one.
 */
async function connectAll(count: number, together: number, connect: () => Promise<RpcChannel>, pin: string): Promise<TokenConnection[]> {
  const connections: TokenConnection[] = [];
  for (let i = 0; i < count; i += together) {
    const batch = await Promise.all(Array.from({ length: Math.min(together, count - i) }, async () => {
      const channel = await connect();
      try {
        return await prepareConnection(channel, pin);
      } catch (error) {
        await channel.close();
        throw error;
      }
    }));
    connections.push(...batch);
  }
  return connections;
}

/** Keys generated once as token objects, through a first connection. */
async function generateKeys(channel: RpcChannel, pin: string): Promise<Set<number>> {
  const slot = await initialize(channel);
  const session = await openUserSession(channel, slot, pin);
  await generateSigningKeys(channel, session);
  return mechanismsOf(channel, slot);
}

interface Row {
  algorithm: string;
  mechanism: string;
  p11kitMechanism: string | null;
  connections: number;
  ntls: Window;
  inProcess: Window;
  p11kitSoftHsm: Window | null;
}

const pad = (s: string, n: number) => s.padEnd(n);
const num = (v: number | null | undefined, n = 9) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(0)).padStart(n);
const ratio = (a: number, b: number | null | undefined, n = 8) => (b ? (a / b).toFixed(2) : '-').padStart(n);

async function main(): Promise<void> {
  const started = Date.now();
  const maxConnections = Math.max(...CONNECTIONS);
  console.log(`node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}); ${WARMUP_SECONDS} s warm-up + ${SECONDS} s per measurement, in ${ROUNDS} interleaved turns`);
  const local: Record<KeyName, KeyObject> = {
    'rsa-2048': generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    'p-256': generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    ed25519: generateKeyPairSync('ed25519').privateKey,
  };

  console.log('starting ntls and p11-kit server + SoftHSM2 ...');
  const ntls = await NtlsDaemon.start();
  let softhsm: SoftHsmServer | null = null;
  const open: TokenConnection[] = [];
  try {
    softhsm = await SoftHsmServer.start();
    const ntlsSetup = await ntls.connect();
    const ntlsMechanisms = await generateKeys(ntlsSetup, NTLS_USER_PIN);
    const softSetup = await softhsm.connect();
    const softMechanisms = await generateKeys(softSetup, SOFTHSM_USER_PIN);
    const ntlsConnections = await connectAll(maxConnections, 8, () => ntls.connect(), NTLS_USER_PIN);
    open.push(...ntlsConnections);
    const softConnections = await connectAll(maxConnections, 1, () => softhsm!.connect(), SOFTHSM_USER_PIN);
    open.push(...softConnections);
    await ntlsSetup.close();
    await softSetup.close();
    console.log(`${maxConnections} connections to each, logged in (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);

    const rows: Row[] = [];
    for (const c of cases(local)) {
      if (!ntlsMechanisms.has(c.mechanism)) {
        console.log(`${c.name} ${c.mechanismName}: ntls does not list it; skipped`);
        continue;
      }
      const softRun = softMechanisms.has(c.mechanism) ? c
        : c.fallback && softMechanisms.has(c.fallback.mechanism) ? c.fallback : null;
      if (softRun !== c) console.log(`  p11-kit + SoftHSM2 lacks ${c.mechanismName}: ${softRun ? `its column runs ${softRun.mechanismName}` : 'no reference'}`);
      for (const n of CONNECTIONS) {
        process.stdout.write(`  ${c.name} ${c.mechanismName}, ${n} connection(s) ...`);
        // The three take turns, ROUNDS times, so that load from elsewhere lands on all alike.
        const inProcessOnce = inProcessLane(c);
        const ntlsLanes = ntlsConnections.slice(0, n).map((conn) => networkLane(conn, c));
        const softLanes = softRun ? softConnections.slice(0, n).map((conn) => networkLane(conn, c, softRun)) : null;
        let inProcessTally: Tally | null = null;
        let ntlsTally: Tally | null = null;
        let softTally: Tally | null = null;
        for (let round = 0; round < ROUNDS; round++) {
          const warmup = round === 0 ? WARMUP_SECONDS : REWARM_SECONDS;
          inProcessTally = add(inProcessTally, await measure(n, inProcessOnce, null, warmup, SECONDS / ROUNDS));
          ntlsTally = add(ntlsTally, await measure(n, (lane) => ntlsLanes[lane]!(), ntls.pid, warmup, SECONDS / ROUNDS));
          if (softLanes) softTally = add(softTally, await measure(n, (lane) => softLanes[lane]!(), null, warmup, SECONDS / ROUNDS));
        }
        const inProcess = windowOf(inProcessTally!);
        const ntlsWindow = windowOf(ntlsTally!);
        const soft = softTally && windowOf(softTally);
        rows.push({ algorithm: c.name, mechanism: c.mechanismName, p11kitMechanism: softRun?.mechanismName ?? null, connections: n, ntls: ntlsWindow, inProcess, p11kitSoftHsm: soft });
        console.log(` ntls ${ntlsWindow.opsPerSecond.toFixed(0)}/s`);
      }
    }

    console.log('');
    console.log(`${pad('sign/s', 30)}${'conns'.padStart(6)}${'ntls'.padStart(9)}${'in-proc'.padStart(9)}${'p11-kit'.padStart(9)}${'÷in-proc'.padStart(10)}${'÷p11-kit'.padStart(10)}${'ntlsd cores'.padStart(13)}${'client cores'.padStart(14)}${'machine busy'.padStart(14)}`);
    for (const r of rows) {
      console.log(`${pad(`${r.algorithm} ${r.mechanism}`, 30)}${String(r.connections).padStart(6)}${num(r.ntls.opsPerSecond)}${num(r.inProcess.opsPerSecond)}${num(r.p11kitSoftHsm?.opsPerSecond)}`
        + `${ratio(r.ntls.opsPerSecond, r.inProcess.opsPerSecond, 10)}${ratio(r.ntls.opsPerSecond, r.p11kitSoftHsm?.opsPerSecond, 10)}`
        + `${(r.ntls.daemonCores ?? NaN).toFixed(2).padStart(13)}${r.ntls.clientCores.toFixed(2).padStart(14)}${r.ntls.machineCores.toFixed(2).padStart(14)}`);
    }
    console.log('\n÷in-proc = ntls over the network / node:crypto in this process, same concurrency');
    console.log('÷p11-kit = ntls / p11-kit server + SoftHSM2, same client path and concurrency');
    console.log(`cores = CPU used during the ntls windows by the daemon, by this client process, and on the whole machine (of ${availableParallelism()})`);

    const round = (w: Window | null) => w && {
      opsPerSecond: Math.round(w.opsPerSecond),
      machineCores: Number(w.machineCores.toFixed(2)),
      clientCores: Number(w.clientCores.toFixed(2)),
      ...(w.daemonCores === null ? {} : { daemonCores: Number(w.daemonCores.toFixed(2)) }),
    };
    const results = {
      benchmark: 'network-sign',
      command: 'npm run bench:network',
      date: new Date().toISOString(),
      node: process.version,
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? null,
      warmupSeconds: WARMUP_SECONDS,
      seconds: SECONDS,
      rounds: ROUNDS,
      inFlightPerConnection: 1,
      reference: {
        inProcess: 'node:crypto sign() with callbacks, one loop per connection, in the client process',
        p11kitSoftHsm: 'p11-kit server (a p11-kit-remote process per connection) + SoftHSM2, unix socket, same codec and client path',
        packages: packageVersions(),
      },
      rows: rows.map((r) => ({
        algorithm: r.algorithm,
        mechanism: r.mechanism,
        ...(r.p11kitMechanism === r.mechanism ? {} : { p11kitMechanism: r.p11kitMechanism }),
        connections: r.connections,
        ntls: round(r.ntls),
        inProcess: round(r.inProcess),
        p11kitSoftHsm: round(r.p11kitSoftHsm),
        ntlsOverInProcess: Number((r.ntls.opsPerSecond / r.inProcess.opsPerSecond).toFixed(3)),
        ntlsOverP11kitSoftHsm: r.p11kitSoftHsm ? Number((r.ntls.opsPerSecond / r.p11kitSoftHsm.opsPerSecond).toFixed(3)) : null,
      })),
    };
    mkdirSync(dirname(resultsFile), { recursive: true });
    writeFileSync(resultsFile, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`\nwritten ${resultsFile}; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await Promise.all(open.map((c) => c.channel.close().catch(() => undefined)));
    await softhsm?.stop();
    await ntls.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
