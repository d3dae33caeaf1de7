// The path stock PKCS#11 applications take: a C application (bench/stock/sign-loop.c) loads
// bookworm's p11-kit-client.so and signs in a loop, C_SignInit + C_Sign each time, in 1 and 8
// processes, P-256 (CKM_ECDSA over a 32-byte digest) and RSA-2048 (CKM_RSA_PKCS over a SHA-256
// DigestInfo). The same application, in one run, against four paths taking turns:
//   - ntls: p11-kit-client.so → `ntls-client p11-relay --listen SOCK` (its own process) →
//     mutual TLS on loopback → the ntls daemon (dist/, temporary home, software HSM);
//   - ntls module: the same, with ntls's own module libntls-pkcs11.so loaded instead of
//     p11-kit-client.so (NTLS_PKCS11_RELAY=unix:path=SOCK: the same relay process);
//   - stunnel: p11-kit-client.so → client stunnel → mutual TLS 1.3 on loopback → server stunnel →
//     `p11-kit server` + SoftHSM2 (Debian stunnel4, p11-kit, softhsm2);
//   - unix socket: p11-kit-client.so → `p11-kit server` + SoftHSM2's unix socket.
// BENCH_THREADS=8 adds, for each algorithm, a cell of 1 process × 8 threads: one application
// initialised with CKF_OS_LOCKING_OK, logged in once, each thread signing on its own session.
// Printed: signatures/s, ntls ÷ stunnel, ntls ÷ unix socket and ntls module ÷ ntls
// (libntls-pkcs11.so ÷ p11-kit-client.so, both through the relay), and the CPU of every process on
// the path (µs per signature, cores) over the same windows. Everything shares this machine's
// cores: the application's and the client side's CPU are included in what the servers get.
//
//   npm run bench:stock   (BENCH_SECONDS per system and cell, default 8; BENCH_WARMUP_SECONDS;
//                          BENCH_ROUNDS, default 4; BENCH_PROCESSES=1,8; BENCH_THREADS=8 (off by default);
//                          BENCH_CASES=P-256,RSA-2048;
//                          BENCH_DAEMON_NODE_ARGS / BENCH_RELAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR";
//                          BENCH_NICE=-5 runs everything at that nice value on a shared machine;
//                          BENCH_OUT=FILE writes the record there instead of bench/results/stock-path.json)
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  benchSettings, describeSettings, machineCpu, packageVersions, processTreesCpu, recordHeader, treeCpuBetween, writeRecord,
} from './network/measure.js';
import { pkcs11ModulePath, PKCS11_RELAY_ENV } from '../src/client/pkcs11-module.js';
import { NtlsDaemon, NTLS_PARTITION, NTLS_USER_PIN } from './network/ntls-daemon.js';
import type { RpcChannel } from './network/rpc-channel.js';
import { SoftHsmServer, SOFTHSM_TOKEN, SOFTHSM_USER_PIN } from './network/softhsm-server.js';
import { generateKeys, KEY_LABELS } from './network/token.js';
import { P11KIT_CLIENT, RelayProcess } from './stock/relay-process.js';
import { buildSignLoop, runSignLoop, type SignLoopMechanism } from './stock/sign-loop.js';
import { StunnelPair } from './stock/stunnel.js';

const settings = benchSettings({ seconds: 8, rounds: 4 });
const processCounts = (process.env.BENCH_PROCESSES ?? '1,8').split(',').filter(Boolean).map(Number);
/** Threads of one process, each a cell of its own after the process counts'; none unless asked. */
const threadCounts = process.env.BENCH_THREADS ? process.env.BENCH_THREADS.split(',').map(Number) : [];
const resultsFile = process.env.BENCH_OUT ?? fileURLToPath(new URL('../../bench/results/stock-path.json', import.meta.url));

interface Case {
  algorithm: string;
  mechanism: string;
  data: string;
  run: SignLoopMechanism;
  key: string;
  signatureBytes: number;
}

const CASES: Case[] = [
  { algorithm: 'P-256', mechanism: 'CKM_ECDSA', data: '32-byte digest', run: 'ecdsa', key: KEY_LABELS['p-256'], signatureBytes: 64 },
  { algorithm: 'RSA-2048', mechanism: 'CKM_RSA_PKCS', data: 'SHA-256 DigestInfo', run: 'rsa-pkcs', key: KEY_LABELS['rsa-2048'], signatureBytes: 256 },
];

type SystemName = 'ntls' | 'ntlsModule' | 'stunnel' | 'unixSocket';

/** A server as the application sees it, and the processes on its path to watch. */
interface System {
  name: SystemName;
  title: string;
  /** The PKCS#11 module the application loads. */
  module: string;
  token: string;
  pin: string;
  /** What points the module at its path (P11_KIT_SERVER_ADDRESS, or NTLS_PKCS11_RELAY and NTLS_CLIENT_HOME). */
  env: NodeJS.ProcessEnv;
  watched: Array<{ name: string; pid: number }>;
}

/** What the windows of one system in one cell saw, added up. */
interface Tally {
  signatures: number;
  seconds: number;
  applicationCpu: number;
  watchedCpu: number[];
  machineBusy: number;
  machineTotal: number;
  maxSignatureMs: number;
}

interface Sample {
  trees: Array<Map<number, number>>;
  machine: { busy: number; total: number };
}

const sample = (system: System): Sample => ({ trees: processTreesCpu(system.watched.map((w) => w.pid)), machine: machineCpu() });

/** One run of the application against `system`, with the path's CPU read over its window. */
/** A cell's application: `processes` processes of `threads` signing threads each. */
interface Shape {
  processes: number;
  threads: number;
}

const shapeTitle = ({ processes, threads }: Shape) => (threads > 1 ? `${processes} process(es) × ${threads} threads` : `${processes} process(es)`);

async function measureOnce(binary: string, system: System, c: Case, { processes, threads }: Shape, seconds: number): Promise<Tally> {
  let before: Sample | null = null;
  let after: Sample | null = null;
  const result = await runSignLoop(binary, {
    module: system.module, token: system.token, pin: system.pin, key: c.key, mechanism: c.run,
    seconds, warmupSeconds: settings.warmupSeconds, processes, threads,
    env: { ...process.env, ...system.env },
  }, {
    measuring: () => { before = sample(system); },
    measured: () => { after = sample(system); },
  });
  if (!before || !after) throw new Error(`${system.title}: the application did not announce its window`);
  if (result.signatureBytes !== c.signatureBytes) throw new Error(`${system.title} ${c.algorithm}: ${result.signatureBytes}-byte signatures, expected ${c.signatureBytes}`);
  const [b, a] = [before as Sample, after as Sample];
  return {
    signatures: result.signatures,
    seconds: result.elapsedSeconds,
    applicationCpu: result.cpuSeconds,
    watchedCpu: a.trees.map((tree, i) => treeCpuBetween(b.trees[i]!, tree)),
    machineBusy: a.machine.busy - b.machine.busy,
    machineTotal: a.machine.total - b.machine.total,
    maxSignatureMs: result.maxSignatureMs,
  };
}

function add(a: Tally | undefined, b: Tally): Tally {
  if (!a) return b;
  return {
    signatures: a.signatures + b.signatures,
    seconds: a.seconds + b.seconds,
    applicationCpu: a.applicationCpu + b.applicationCpu,
    watchedCpu: a.watchedCpu.map((s, i) => s + b.watchedCpu[i]!),
    machineBusy: a.machineBusy + b.machineBusy,
    machineTotal: a.machineTotal + b.machineTotal,
    maxSignatureMs: Math.max(a.maxSignatureMs, b.maxSignatureMs),
  };
}

/** A process's CPU as recorded: cores over the windows and µs per signature. */
const cpuOf = (cpuSeconds: number, t: Tally) => ({
  cores: Number((cpuSeconds / t.seconds).toFixed(3)),
  microsecondsPerSignature: t.signatures ? Math.round((cpuSeconds / t.signatures) * 1e6) : null,
});

const machineCores = (t: Tally) => (t.machineBusy / Math.max(1, t.machineTotal)) * availableParallelism();

/** CPU seconds of the whole path: the application and every process watched. */
const pathCpu = (t: Tally) => t.applicationCpu + t.watchedCpu.reduce((a, b) => a + b, 0);

/** µs of CPU the whole path spends per signature: what a signature costs, whatever else runs. */
const pathMicros = (t: Tally) => (pathCpu(t) / t.signatures) * 1e6;

/**
 * Cores busy on the machine with something other than this path: load from elsewhere. It skews a
 * window, and not evenly: CFS shares a core per thread, so a path whose busiest part is one
 * thread (the ntls daemon's event loop) loses more to other load than one spread over processes.
 */
const otherCores = (t: Tally) => Math.max(0, machineCores(t) - pathCpu(t) / t.seconds);

function recorded(system: System, t: Tally) {
  return {
    signaturesPerSecond: Math.round(t.signatures / t.seconds),
    signatures: t.signatures,
    seconds: Number(t.seconds.toFixed(3)),
    maxSignatureMs: Number(t.maxSignatureMs.toFixed(2)),
    machineCores: Number(machineCores(t).toFixed(2)),
    otherLoadCores: Number(otherCores(t).toFixed(2)),
    pathMicrosecondsPerSignature: Math.round(pathMicros(t)),
    cpu: {
      application: cpuOf(t.applicationCpu, t),
      ...Object.fromEntries(system.watched.map((w, i) => [w.name, cpuOf(t.watchedCpu[i]!, t)])),
    },
  };
}

type Row = { c: Case; shape: Shape; tallies: Record<SystemName, Tally> };

function printRows(rows: Row[], systems: System[]): void {
  const rate = (t: Tally) => t.signatures / t.seconds;
  console.log(`\n${'signatures/s'.padEnd(44)}${'procs'.padStart(6)}${'ntls'.padStart(9)}${'module'.padStart(9)}${'stunnel'.padStart(9)}${'unix'.padStart(9)}`
    + `${'÷stunnel'.padStart(10)}${'÷unix'.padStart(8)}${'module÷ntls'.padStart(12)}`
    + `${'path µs/sig: ntls'.padStart(19)}${'module'.padStart(8)}${'stunnel'.padStart(9)}${'unix'.padStart(6)}${'other load'.padStart(17)}`);
  for (const { c, shape, tallies } of rows) {
    const [n, m, s, u] = [rate(tallies.ntls), rate(tallies.ntlsModule), rate(tallies.stunnel), rate(tallies.unixSocket)];
    console.log(`${`${c.algorithm} ${c.mechanism} (${c.data})`.padEnd(44)}${(shape.threads > 1 ? `${shape.processes}×${shape.threads}` : String(shape.processes)).padStart(6)}${n.toFixed(0).padStart(9)}${m.toFixed(0).padStart(9)}`
      + `${s.toFixed(0).padStart(9)}${u.toFixed(0).padStart(9)}${(n / s).toFixed(2).padStart(10)}${(n / u).toFixed(2).padStart(8)}${(m / n).toFixed(2).padStart(12)}`
      + `${pathMicros(tallies.ntls).toFixed(0).padStart(19)}${pathMicros(tallies.ntlsModule).toFixed(0).padStart(8)}`
      + `${pathMicros(tallies.stunnel).toFixed(0).padStart(9)}${pathMicros(tallies.unixSocket).toFixed(0).padStart(6)}`
      + `${[tallies.ntls, tallies.ntlsModule, tallies.stunnel, tallies.unixSocket].map((t) => otherCores(t).toFixed(1)).join('/').padStart(17)}`);
  }
  console.log('ntls = p11-kit-client.so through the relay, module = libntls-pkcs11.so through the same relay');
  console.log('path µs/sig = CPU of the application and every process on the path per signature; other load = cores busy with');
  console.log('something else during the windows of ntls/module/stunnel/unix socket (figures are only fair with it near 0)');
  console.log('\nCPU over the same windows: µs per signature (cores); the slowest signature; the machine\'s busy cores, and how many of them');
  console.log('were busy with something other than this path');
  for (const { c, shape, tallies } of rows) {
    console.log(`${c.algorithm}, ${shapeTitle(shape)}`);
    for (const system of systems) {
      const t = tallies[system.name];
      const parts = [['application', t.applicationCpu] as const, ...system.watched.map((w, i) => [w.name, t.watchedCpu[i]!] as const)]
        .map(([name, cpu]) => `${name} ${((cpu / t.signatures) * 1e6).toFixed(0)} µs (${(cpu / t.seconds).toFixed(2)})`);
      console.log(`  ${system.title.padEnd(12)}${parts.join(', ')}; slowest ${t.maxSignatureMs.toFixed(1)} ms; `
        + `machine ${machineCores(t).toFixed(2)} of ${availableParallelism()} cores, ${otherCores(t).toFixed(2)} of them other load`);
    }
  }
}

/**
 * BENCH_NICE=-5 (root): this process and every process it starts (servers, relay, application)
 * run at that nice value, so that load from elsewhere on a shared machine takes less from the
 * windows. All three paths get it alike.
 */
function applyNice(): number | null {
  if (process.env.BENCH_NICE === undefined) return null;
  const nice = Number(process.env.BENCH_NICE);
  setPriority(0, nice);
  return nice;
}

async function main(): Promise<void> {
  const started = Date.now();
  const nice = applyNice();
  console.log(`${describeSettings(settings)}; processes ${processCounts.join(', ')}${threadCounts.length ? `; 1 process × ${threadCounts.join(', ')} threads` : ''}${nice === null ? '' : `; nice ${nice}`}`);
  const buildDir = mkdtempSync(join(tmpdir(), 'ntls-bench-stock-'));
  const stops: Array<() => Promise<void>> = [];
  try {
    const binary = buildSignLoop(buildDir);
    console.log('starting ntls + relay, p11-kit server + SoftHSM2, stunnel ...');
    const ntls = await NtlsDaemon.start();
    stops.push(() => ntls.stop());
    const softhsm = await SoftHsmServer.start();
    stops.push(() => softhsm.stop());
    // The signing keys, generated once as token objects on each server.
    for (const [connect, pin] of [[() => ntls.connect(), NTLS_USER_PIN], [() => softhsm.connect(), SOFTHSM_USER_PIN]] as const) {
      const setup: RpcChannel = await connect();
      try {
        await generateKeys(setup, pin);
      } finally {
        await setup.close();
      }
    }
    const relay = await RelayProcess.start(ntls);
    stops.push(() => relay.stop());
    // libntls-pkcs11.so's config folder: empty but for the client log it writes on a failure;
    // the relay is named by the environment.
    const moduleHome = join(buildDir, 'module-home');
    mkdirSync(moduleHome);
    const stunnel = await StunnelPair.start(softhsm.socketPath);
    stops.push(() => stunnel.stop());

    const systems: System[] = [
      {
        name: 'ntls', title: 'ntls', module: P11KIT_CLIENT, token: NTLS_PARTITION, pin: NTLS_USER_PIN,
        env: { P11_KIT_SERVER_ADDRESS: `unix:path=${relay.socketPath}` },
        watched: [{ name: 'ntlsDaemon', pid: ntls.pid }, { name: 'relay', pid: relay.pid }],
      },
      {
        name: 'ntlsModule', title: 'ntls module', module: pkcs11ModulePath(), token: NTLS_PARTITION, pin: NTLS_USER_PIN,
        env: { [PKCS11_RELAY_ENV]: `unix:path=${relay.socketPath}`, NTLS_CLIENT_HOME: moduleHome },
        watched: [{ name: 'ntlsDaemon', pid: ntls.pid }, { name: 'relay', pid: relay.pid }],
      },
      {
        name: 'stunnel', title: 'stunnel', module: P11KIT_CLIENT, token: SOFTHSM_TOKEN, pin: SOFTHSM_USER_PIN,
        env: { P11_KIT_SERVER_ADDRESS: `unix:path=${stunnel.socketPath}` },
        watched: [{ name: 'stunnelClient', pid: stunnel.clientPid }, { name: 'stunnelServer', pid: stunnel.serverPid }, { name: 'p11kitServer', pid: softhsm.pid }],
      },
      {
        name: 'unixSocket', title: 'unix socket', module: P11KIT_CLIENT, token: SOFTHSM_TOKEN, pin: SOFTHSM_USER_PIN,
        env: { P11_KIT_SERVER_ADDRESS: `unix:path=${softhsm.socketPath}` },
        watched: [{ name: 'p11kitServer', pid: softhsm.pid }],
      },
    ];
    console.log(`ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);

    const only = process.env.BENCH_CASES?.split(',');
    const cases = CASES.filter((k) => !only || only.includes(k.algorithm));
    // Every path signs for a second before the first window, so that the first turn does not
    // measure the relay's and the daemon's JavaScript before it is compiled (servers run long).
    for (const system of systems) for (const c of cases) await measureOnce(binary, system, c, { processes: 1, threads: 1 }, 1);
    const rows: Row[] = [];
    for (const c of cases) {
      const shapes: Shape[] = [...processCounts.map((processes) => ({ processes, threads: 1 })), ...threadCounts.map((threads) => ({ processes: 1, threads }))];
      for (const shape of shapes) {
        process.stdout.write(`  ${c.algorithm}, ${shapeTitle(shape)} ...`);
        const tallies: Partial<Record<SystemName, Tally>> = {};
        // The systems take turns, so that load from elsewhere lands on all alike.
        for (let round = 0; round < settings.rounds; round++) {
          for (const system of systems) {
            try {
              tallies[system.name] = add(tallies[system.name], await measureOnce(binary, system, c, shape, settings.seconds / settings.rounds));
            } catch (error) {
              const relayLine = (system.name === 'ntls' || system.name === 'ntlsModule') && relay.messages ? ` (relay: ${relay.messages})` : system.name === 'stunnel' ? ` ${stunnel.logs()}` : '';
              throw new Error(`${system.title}, ${c.algorithm}, ${shapeTitle(shape)}: ${(error as Error).message}${relayLine}`, { cause: error });
            }
          }
        }
        const row = { c, shape, tallies: tallies as Record<SystemName, Tally> };
        rows.push(row);
        const rate = (t: Tally) => (t.signatures / t.seconds).toFixed(0);
        console.log(` ntls ${rate(row.tallies.ntls)}/s, ntls module ${rate(row.tallies.ntlsModule)}/s, stunnel ${rate(row.tallies.stunnel)}/s, unix socket ${rate(row.tallies.unixSocket)}/s`);
      }
    }

    printRows(rows, systems);
    const ratio = (a: Tally, b: Tally) => Number(((a.signatures / a.seconds) / (b.signatures / b.seconds)).toFixed(3));
    writeRecord(resultsFile, {
      ...recordHeader('stock-path', 'npm run bench:stock', settings),
      processCounts,
      ...(threadCounts.length ? { threadCounts } : {}),
      nice,
      target: 'ntls ÷ stunnel ≥ 1.0 for 1 and 8 processes, P-256 and RSA-2048 (issue 12); ntls module ÷ ntls: libntls-pkcs11.so against p11-kit-client.so on the same relay (issue 17)',
      application: 'bench/stock/sign-loop.c: the module named (p11-kit-client.so, or libntls-pkcs11.so for ntlsModule), C_SignInit + C_Sign per signature, one session per process, processes set up one by one then signing together'
        + (threadCounts.length ? '; rows with threads: one process, C_Initialize with CKF_OS_LOCKING_OK, one C_Login, each thread signing on a session of its own' : ''),
      systems: {
        ntls: 'p11-kit-client.so → ntls-client p11-relay --listen (own process) → mutual TLS 1.3 (loopback) → ntls daemon, software HSM',
        ntlsModule: 'libntls-pkcs11.so (NTLS_PKCS11_RELAY=unix:path=, the same relay process) → ntls-client p11-relay --listen → mutual TLS 1.3 (loopback) → ntls daemon, software HSM',
        stunnel: 'p11-kit-client.so → stunnel client → mutual TLS 1.3, TLS_AES_256_GCM_SHA384, P-256 certificates (loopback) → stunnel server → p11-kit server + SoftHSM2',
        unixSocket: 'p11-kit-client.so → p11-kit server + SoftHSM2 unix socket',
      },
      packages: packageVersions(['p11-kit', 'p11-kit-modules', 'softhsm2', 'stunnel4']),
      rows: rows.map(({ c, shape, tallies }) => ({
        algorithm: c.algorithm,
        mechanism: c.mechanism,
        data: c.data,
        processes: shape.processes,
        ...(shape.threads > 1 ? { threads: shape.threads } : {}),
        ntls: recorded(systems[0]!, tallies.ntls),
        ntlsModule: recorded(systems[1]!, tallies.ntlsModule),
        stunnel: recorded(systems[2]!, tallies.stunnel),
        unixSocket: recorded(systems[3]!, tallies.unixSocket),
        ntlsOverStunnel: ratio(tallies.ntls, tallies.stunnel),
        ntlsOverUnixSocket: ratio(tallies.ntls, tallies.unixSocket),
        ntlsModuleOverNtls: ratio(tallies.ntlsModule, tallies.ntls),
        ntlsModuleOverStunnel: ratio(tallies.ntlsModule, tallies.stunnel),
      })),
    });
    console.log(`\nwritten ${resultsFile}; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    rmSync(buildDir, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  console.error(`bench:stock: ${error.message}`);
  process.exitCode = 1;
});
