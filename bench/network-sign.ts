// Signing throughput over the network: RSA-2048 (CKM_SHA256_RSA_PKCS), P-256 (CKM_ECDSA_SHA256,
// and CKM_ECDSA over a SHA-256 digest as stock PKCS#11 applications send it) and Ed25519
// (CKM_EDDSA), at 1, 8 and 64 connections, each connection with one signature in flight
// (C_SignInit and C_Sign pipelined back to back). Printed as ratios against two references
// measured in the same run, one cell right after the other so a shared machine's changing load
// skews all three alike:
//   - in-process node:crypto: crypto.sign with callbacks, as many parallel loops as connections;
//   - `p11-kit server` fronting SoftHSM2, driven by the same client path as ntls (our p11-kit
//     codec over a socket; a unix socket there, a mutual-TLS NTLS link here);
//   - the fair network peer: the same p11-kit server + SoftHSM2 behind two stunnels (Debian
//     stunnel4) with mutual TLS 1.3 on loopback, what one would put on a network instead of
//     ntls; reached by the same codec through the client stunnel's unix socket.
// Daemon cores: CPU of the daemon's process tree (its workers included) during its windows,
// over the window's length, beside the whole machine's busy cores.
// The client, the daemon and the references share this machine's cores: the network figures
// include the client's own TLS and codec work, which a real deployment runs elsewhere.
//
//   npm run bench:network        (BENCH_CASES=P-256,... to run some rows only; BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS=1,8,64;
//                                 BENCH_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles ntls)
import { generateKeyPairSync, createHash, sign, type KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CKM } from '../src/pkcs11/constants.js';
import {
  benchSettings, cores, describeSettings, interleaved, num, packageVersions, pad, ratio, recorded, recordedRatio, recordHeader, writeRecord, type Lane, type Window,
} from './network/measure.js';
import { NtlsDaemon, NTLS_USER_PIN } from './network/ntls-daemon.js';
import { unixSocketChannel } from './network/rpc-channel.js';
import { SoftHsmServer, SOFTHSM_USER_PIN } from './network/softhsm-server.js';
import { StunnelPair } from './stock/stunnel.js';
import { connectAll, readyServer, signLane, type KeyName, type TokenConnection } from './network/token.js';

const settings = benchSettings();
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

function inProcessLane(c: Case): Lane {
  return () => new Promise((resolve, reject) => c.inProcess((error, signature) => {
    if (error) reject(error);
    else if (signature.length !== c.signatureBytes) reject(new Error(`${c.name}: ${signature.length}-byte signature`));
    else resolve();
  }));
}

/** `c` signed on a connection, or its fallback (for a token that lacks `c.mechanism`). */
function networkLane(connection: TokenConnection, c: Case, run: { mechanismName: string; mechanism: number; data: Buffer } = c): Lane {
  return signLane(connection, { what: `${c.name} ${run.mechanismName}`, key: c.key, mechanism: run.mechanism, data: run.data, signatureBytes: c.signatureBytes });
}

interface Row {
  algorithm: string;
  mechanism: string;
  p11kitMechanism: string | null;
  connections: number;
  ntls: Window;
  inProcess: Window;
  p11kitSoftHsm: Window | null;
  stunnelP11kitSoftHsm: Window | null;
}

async function main(): Promise<void> {
  const started = Date.now();
  const { maxConnections } = settings;
  console.log(describeSettings(settings));
  const local: Record<KeyName, KeyObject> = {
    'rsa-2048': generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    'p-256': generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey,
    'ed25519': generateKeyPairSync('ed25519').privateKey,
  };

  console.log('starting ntls and p11-kit server + SoftHSM2 ...');
  const ntls = await NtlsDaemon.start();
  let softhsm: SoftHsmServer | null = null;
  let stunnel: StunnelPair | null = null;
  const open: TokenConnection[] = [];
  try {
    softhsm = await SoftHsmServer.start();
    stunnel = await StunnelPair.start(softhsm.socketPath);
    const { mechanisms: ntlsMechanisms, connections: ntlsConnections } = await readyServer(() => ntls.connect(), NTLS_USER_PIN, maxConnections, 8);
    open.push(...ntlsConnections);
    const { mechanisms: softMechanisms, connections: softConnections } = await readyServer(() => softhsm!.connect(), SOFTHSM_USER_PIN, maxConnections, 1);
    open.push(...softConnections);
    const tunnelConnections = await connectAll(maxConnections, 1, () => unixSocketChannel(stunnel!.socketPath), SOFTHSM_USER_PIN);
    open.push(...tunnelConnections);
    console.log(`${maxConnections} connections to each, logged in (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);

    const rows: Row[] = [];
    const only = process.env.BENCH_CASES?.split(',');
    for (const c of cases(local).filter((k) => !only || only.some((o) => `${k.name} ${k.mechanismName}`.includes(o)))) {
      if (!ntlsMechanisms.has(c.mechanism)) {
        console.log(`${c.name} ${c.mechanismName}: ntls does not list it; skipped`);
        continue;
      }
      const softRun = softMechanisms.has(c.mechanism) ? c
        : c.fallback && softMechanisms.has(c.fallback.mechanism) ? c.fallback : null;
      if (softRun !== c) console.log(`  p11-kit + SoftHSM2 lacks ${c.mechanismName}: ${softRun ? `its column runs ${softRun.mechanismName}` : 'no reference'}`);
      for (const n of settings.connections) {
        process.stdout.write(`  ${c.name} ${c.mechanismName}, ${n} connection(s) ...`);
        // The three take turns, so that load from elsewhere lands on all alike.
        const [inProcess, ntlsWindow, soft, tunnel] = await interleaved(settings, [
          { lanes: Array.from({ length: n }, () => inProcessLane(c)), pids: [] },
          { lanes: ntlsConnections.slice(0, n).map((conn) => networkLane(conn, c)), pids: [ntls.pid] },
          softRun ? { lanes: softConnections.slice(0, n).map((conn) => networkLane(conn, c, softRun)), pids: [softhsm.pid] } : null,
          softRun ? { lanes: tunnelConnections.slice(0, n).map((conn) => networkLane(conn, c, softRun)), pids: [softhsm.pid, stunnel.serverPid, stunnel.clientPid] } : null,
        ]) as [Window, Window, Window | null, Window | null];
        rows.push({
          algorithm: c.name, mechanism: c.mechanismName, p11kitMechanism: softRun?.mechanismName ?? null, connections: n,
          ntls: ntlsWindow, inProcess, p11kitSoftHsm: soft, stunnelP11kitSoftHsm: tunnel,
        });
        console.log(` ntls ${ntlsWindow.opsPerSecond.toFixed(0)}/s, stunnel peer ${tunnel?.opsPerSecond.toFixed(0) ?? '-'}/s`);
      }
    }

    console.log('');
    console.log(`${pad('sign/s', 30)}${'conns'.padStart(6)}${'ntls'.padStart(9)}${'in-proc'.padStart(9)}${'p11-kit'.padStart(9)}${'stunnel'.padStart(9)}${'÷in-proc'.padStart(10)}${'÷p11-kit'.padStart(10)}${'÷stunnel'.padStart(10)}${'ntlsd cores'.padStart(13)}${'client cores'.padStart(14)}${'machine busy'.padStart(14)}`);
    for (const r of rows) {
      console.log(`${pad(`${r.algorithm} ${r.mechanism}`, 30)}${String(r.connections).padStart(6)}${num(r.ntls.opsPerSecond)}${num(r.inProcess.opsPerSecond)}${num(r.p11kitSoftHsm?.opsPerSecond)}${num(r.stunnelP11kitSoftHsm?.opsPerSecond)}`
        + `${ratio(r.ntls.opsPerSecond, r.inProcess.opsPerSecond, 10)}${ratio(r.ntls.opsPerSecond, r.p11kitSoftHsm?.opsPerSecond, 10)}${ratio(r.ntls.opsPerSecond, r.stunnelP11kitSoftHsm?.opsPerSecond, 10)}`
        + `${cores(r.ntls.daemonCores, 13)}${cores(r.ntls.clientCores, 14)}${cores(r.ntls.machineCores, 14)}`);
    }
    console.log('\n÷in-proc = ntls over the network / node:crypto in this process, same concurrency');
    console.log('÷p11-kit = ntls / p11-kit server + SoftHSM2, same client path and concurrency');
    console.log('÷stunnel = ntls / p11-kit server + SoftHSM2 behind stunnel (mutual TLS 1.3), same client path and concurrency');
    console.log(`cores = CPU used during the ntls windows by the daemon, by this client process, and on the whole machine (of ${availableParallelism()})`);

    const results = {
      ...recordHeader('network-sign', 'npm run bench:network', settings),
      inFlightPerConnection: 1,
      reference: {
        inProcess: 'node:crypto sign() with callbacks, one loop per connection, in the client process',
        p11kitSoftHsm: 'p11-kit server (a p11-kit-remote process per connection) + SoftHSM2, unix socket, same codec and client path',
        stunnelP11kitSoftHsm: 'the same p11-kit server + SoftHSM2 behind stunnel4 client and server (mutual TLS 1.3, TLS_AES_256_GCM_SHA384, P-256 certificates, loopback), reached through the client stunnel\'s unix socket with the same codec',
        cores: 'daemonCores: CPU of the process tree (ntls daemon and its workers; p11-kit server and its per-connection processes; plus both stunnels for the stunnel peer) over the window',
        packages: packageVersions(),
      },
      rows: rows.map((r) => ({
        algorithm: r.algorithm,
        mechanism: r.mechanism,
        ...(r.p11kitMechanism === r.mechanism ? {} : { p11kitMechanism: r.p11kitMechanism }),
        connections: r.connections,
        ntls: recorded(r.ntls),
        inProcess: recorded(r.inProcess),
        p11kitSoftHsm: recorded(r.p11kitSoftHsm),
        stunnelP11kitSoftHsm: recorded(r.stunnelP11kitSoftHsm),
        ntlsOverInProcess: recordedRatio(r.ntls, r.inProcess),
        ntlsOverP11kitSoftHsm: recordedRatio(r.ntls, r.p11kitSoftHsm),
        ntlsOverStunnelP11kitSoftHsm: recordedRatio(r.ntls, r.stunnelP11kitSoftHsm),
      })),
    };
    writeRecord(resultsFile, results);
    console.log(`\nwritten ${resultsFile}; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    await Promise.all(open.map((c) => c.channel.close().catch(() => undefined)));
    await stunnel?.stop();
    await softhsm?.stop();
    await ntls.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
