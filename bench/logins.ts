// What scripts and CGI-style programs get: a new pkcs11-tool process per signature, each loading
// bookworm's p11-kit-client.so, logging in with the PIN and signing once (P-256, CKM_ECDSA over a
// 32-byte digest), in 8 loops at once, against the paths bench:stock compares, taking turns:
//   - ntls: p11-kit-client.so → `ntls-client p11-relay --listen SOCK` (its own process) →
//     mutual TLS on loopback (a new link per program) → the ntls daemon;
//   - unix socket: p11-kit-client.so → `p11-kit server` + SoftHSM2's unix socket (a new
//     p11-kit-remote process per program, which loads SoftHSM2);
//   - stunnel: the same p11-kit server behind two stunnels (mutual TLS 1.3 on loopback).
// Printed: signatures/s, ntls ÷ each reference, the CPU per signature (and cores) of every process
// on the path and of the pkcs11-tool runs, and the failed runs (the first one's stderr).
//
//   npm run bench:logins   (BENCH_SECONDS per system, default 10, in BENCH_ROUNDS turns, default 2;
//                           BENCH_LOOPS=8; BENCH_SYSTEMS=ntls,unixSocket,stunnel; BENCH_WARMUP_SECONDS;
//                           BENCH_DAEMON_NODE_ARGS / BENCH_RELAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR";
//                           BENCH_OUT=FILE writes the record elsewhere than bench/results/logins.json)
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchSettings, describeSettings, packageVersions, recordHeader, writeRecord } from './network/measure.js';
import { NtlsDaemon, NTLS_PARTITION, NTLS_USER_PIN } from './network/ntls-daemon.js';
import { SoftHsmServer, SOFTHSM_TOKEN, SOFTHSM_USER_PIN } from './network/softhsm-server.js';
import { generateSigningKeyWithId } from './network/token.js';
import { addWindows, measureLoops, type LoopsWindow, type ToolCommand } from './logins/tool-loops.js';
import { P11KIT_CLIENT, RelayProcess } from './stock/relay-process.js';
import { StunnelPair } from './stock/stunnel.js';

const settings = benchSettings({ seconds: 10, rounds: 2 });
const loopCounts = (process.env.BENCH_LOOPS ?? '8').split(',').map(Number);
const resultsFile = process.env.BENCH_OUT ?? fileURLToPath(new URL('../../bench/results/logins.json', import.meta.url));
/** CKA_ID (hex) of the key pkcs11-tool signs with. */
const KEY_ID = '01';
/** A pkcs11-tool run that takes longer than this is killed and counted as failed. */
const RUN_TIMEOUT_MS = 30_000;

type SystemName = 'ntls' | 'unixSocket' | 'stunnel';
const SYSTEM_NAMES: readonly SystemName[] = ['ntls', 'unixSocket', 'stunnel'];

interface System {
  name: SystemName;
  title: string;
  token: string;
  pin: string;
  /** P11_KIT_SERVER_ADDRESS: where p11-kit-client.so connects. */
  address: string;
  watched: Array<{ name: string; pid: number }>;
  /** The path's own messages, for a failure report. */
  logs(): string;
}

/** The pkcs11-tool command line, as a program on a client host would run it. */
function toolArguments(token: string, pin: string, input: string): string[] {
  return [
    '--module', P11KIT_CLIENT, '--token-label', token, '--login', '--pin', pin,
    '--sign', '--mechanism', 'ECDSA', '--id', KEY_ID, '--input-file', input, '--output-file', '/dev/null',
  ];
}

const rate = (w: LoopsWindow) => w.runs / w.seconds;
const micros = (cpuSeconds: number, w: LoopsWindow) => (w.runs ? Math.round((cpuSeconds / w.runs) * 1e6) : null);
const machineCores = (w: LoopsWindow) => (w.machineBusy / Math.max(1, w.machineTotal)) * availableParallelism();
const pathCpu = (w: LoopsWindow) => w.runCpuSeconds + w.watchedCpuSeconds.reduce((a, b) => a + b, 0);
/** Cores busy on the machine with something other than this path and the bench starting the runs (load from elsewhere). */
const otherCores = (w: LoopsWindow) => Math.max(0, machineCores(w) - (pathCpu(w) + w.launcherCpuSeconds) / w.seconds);

const cpuOf = (cpuSeconds: number, w: LoopsWindow) => ({
  cores: Number((cpuSeconds / w.seconds).toFixed(3)),
  microsecondsPerSignature: micros(cpuSeconds, w),
});

function recorded(system: System, w: LoopsWindow) {
  return {
    signaturesPerSecond: Number(rate(w).toFixed(1)),
    signatures: w.runs,
    seconds: Number(w.seconds.toFixed(3)),
    slowestRunMs: Number(w.slowestRunMs.toFixed(1)),
    failedRuns: w.failures,
    firstFailure: w.firstFailure,
    machineCores: Number(machineCores(w).toFixed(2)),
    otherLoadCores: Number(otherCores(w).toFixed(2)),
    cpu: {
      pkcs11Tool: cpuOf(w.runCpuSeconds, w),
      ...Object.fromEntries(system.watched.map((p, i) => [p.name, cpuOf(w.watchedCpuSeconds[i]!, w)])),
    },
    benchLauncherCpu: cpuOf(w.launcherCpuSeconds, w),
  };
}

type Row = { loops: number; windows: Partial<Record<SystemName, LoopsWindow>> };

function printRows(rows: Row[], systems: System[]): void {
  const ms = (s: number, w: LoopsWindow) => `${((s / Math.max(1, w.runs)) * 1000).toFixed(2)} ms`;
  for (const { loops, windows } of rows) {
    console.log(`\n${loops} loops of pkcs11-tool (a process per signature), P-256 CKM_ECDSA:`);
    for (const system of systems) {
      const w = windows[system.name]!;
      const parts = [['pkcs11-tool', w.runCpuSeconds] as const, ...system.watched.map((p, i) => [p.name, w.watchedCpuSeconds[i]!] as const)]
        .map(([name, cpu]) => `${name} ${ms(cpu, w)} (${(cpu / w.seconds).toFixed(2)} cores)`);
      console.log(`  ${system.title.padEnd(12)}${rate(w).toFixed(1).padStart(8)}/s  failed ${w.failures}; CPU per signature: ${parts.join(', ')}; `
        + `slowest ${w.slowestRunMs.toFixed(0)} ms; bench starting the runs ${ms(w.launcherCpuSeconds, w)} (${(w.launcherCpuSeconds / w.seconds).toFixed(2)} cores); `
        + `machine ${machineCores(w).toFixed(2)} cores, ${otherCores(w).toFixed(2)} other load`);
    }
    const ntls = windows.ntls;
    for (const system of systems.filter((s) => s.name !== 'ntls')) {
      if (ntls) console.log(`  ntls ÷ ${system.title}: ${(rate(ntls) / rate(windows[system.name]!)).toFixed(2)}`);
    }
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const only = (process.env.BENCH_SYSTEMS ?? SYSTEM_NAMES.join(',')).split(',');
  const unknown = only.filter((n) => !SYSTEM_NAMES.includes(n as SystemName));
  if (unknown.length) throw new Error(`BENCH_SYSTEMS: unknown ${unknown.join(', ')} (known: ${SYSTEM_NAMES.join(', ')})`);
  console.log(`${describeSettings(settings)}; loops ${loopCounts.join(', ')}; systems ${only.join(', ')}`);
  const dir = mkdtempSync(join(tmpdir(), 'ntls-bench-logins-'));
  stops.push(async () => rmSync(dir, { recursive: true, force: true }));
  try {
    const input = join(dir, 'digest.bin');
    writeFileSync(input, Buffer.alloc(32, 0x5a));
    console.log('starting ntls + relay, p11-kit server + SoftHSM2, stunnel ...');
    const systems: System[] = [];
    if (only.includes('ntls')) {
      const ntls = await NtlsDaemon.start();
      stops.push(() => ntls.stop());
      await generateSigningKeyWithId(() => ntls.connect(), NTLS_USER_PIN, KEY_ID);
      const relay = await RelayProcess.start(ntls);
      stops.push(() => relay.stop());
      systems.push({
        name: 'ntls', title: 'ntls', token: NTLS_PARTITION, pin: NTLS_USER_PIN, address: `unix:path=${relay.socketPath}`,
        watched: [{ name: 'ntlsDaemon', pid: ntls.pid }, { name: 'relay', pid: relay.pid }],
        logs: () => (relay.messages ? `relay: ${relay.messages}` : ''),
      });
    }
    if (only.includes('unixSocket') || only.includes('stunnel')) {
      const softhsm = await SoftHsmServer.start();
      stops.push(() => softhsm.stop());
      await generateSigningKeyWithId(() => softhsm.connect(), SOFTHSM_USER_PIN, KEY_ID);
      if (only.includes('unixSocket')) {
        systems.push({
          name: 'unixSocket', title: 'unix socket', token: SOFTHSM_TOKEN, pin: SOFTHSM_USER_PIN, address: `unix:path=${softhsm.socketPath}`,
          watched: [{ name: 'p11kitServer', pid: softhsm.pid }], logs: () => '',
        });
      }
      if (only.includes('stunnel')) {
        const stunnel = await StunnelPair.start(softhsm.socketPath);
        stops.push(() => stunnel.stop());
        systems.push({
          name: 'stunnel', title: 'stunnel', token: SOFTHSM_TOKEN, pin: SOFTHSM_USER_PIN, address: `unix:path=${stunnel.socketPath}`,
          watched: [{ name: 'stunnelClient', pid: stunnel.clientPid }, { name: 'stunnelServer', pid: stunnel.serverPid }, { name: 'p11kitServer', pid: softhsm.pid }],
          logs: () => stunnel.logs(),
        });
      }
    }
    console.log(`ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);

    const commandFor = (system: System): ToolCommand => ({
      file: 'pkcs11-tool', args: toolArguments(system.token, system.pin, input), timeoutMs: RUN_TIMEOUT_MS,
      env: { ...process.env, P11_KIT_SERVER_ADDRESS: system.address },
    });
    const pidsOf = (system: System) => system.watched.map((p) => p.pid);
    // Every path signs for a second before the first window, so that the relay's and the
    // daemon's JavaScript is compiled as in a long-running service; its failures count too.
    const failures = new Map<SystemName, LoopsWindow>();
    for (const system of systems) failures.set(system.name, await measureLoops(commandFor(system), Math.max(...loopCounts), pidsOf(system), 1, 0.01));
    const rows: Row[] = [];
    for (const loops of loopCounts) {
      process.stdout.write(`  ${loops} loops ...`);
      const windows: Partial<Record<SystemName, LoopsWindow>> = {};
      // The systems take turns, so that load from elsewhere lands on all alike.
      for (let round = 0; round < settings.rounds; round++) {
        const warmup = round === 0 ? settings.warmupSeconds : settings.rewarmSeconds;
        for (const system of systems) windows[system.name] = addWindows(windows[system.name], await measureLoops(commandFor(system), loops, pidsOf(system), warmup, settings.seconds / settings.rounds));
      }
      rows.push({ loops, windows });
      console.log(` ${systems.map((s) => `${s.title} ${rate(windows[s.name]!).toFixed(1)}/s`).join(', ')}`);
    }

    printRows(rows, systems);
    // Failed runs of every turn, warm-up included. ntls must have none; SoftHSM2 behind p11-kit
    // server fails some when several new programs log in at once (its token folder is read by a
    // new p11-kit-remote per program): reported, and only runs that signed count in its rate.
    const failedRuns: Partial<Record<SystemName, { count: number; first: string | null }>> = {};
    for (const system of systems) {
      const windows = [failures.get(system.name)!, ...rows.map((row) => row.windows[system.name]!)];
      const count = windows.reduce((n, w) => n + w.failures, 0);
      const first = windows.map((w) => w.firstFailure).find((f) => f !== null) ?? null;
      failedRuns[system.name] = { count, first };
      if (first) console.log(`\n${system.title}: ${count} failed pkcs11-tool run(s); the first: ${first}${system.logs() ? `\n${system.logs()}` : ''}`);
    }
    console.log(`\nfailed pkcs11-tool runs: ${systems.map((s) => `${s.title} ${failedRuns[s.name]!.count}`).join(', ')} (ntls must have 0)`);

    const ntlsOver = (row: Row, name: SystemName) => {
      const [n, r] = [row.windows.ntls, row.windows[name]];
      return n && r ? Number((rate(n) / rate(r)).toFixed(3)) : null;
    };
    writeRecord(resultsFile, {
      ...recordHeader('logins', 'npm run bench:logins', settings),
      loopCounts,
      target: 'issue 18: 8 loops of pkcs11-tool (a process per signature) reached 13 signatures/s against 72/s on p11-kit server + SoftHSM2; goal: the 8-loop figure at least that of the reference (ntls ÷ unix socket ≥ 1.0)',
      application: `pkcs11-tool ${toolArguments('TOKEN', 'PIN', 'DIGEST32').join(' ')} (opensc), a new process per signature, in each of N loops at once; P11_KIT_SERVER_ADDRESS names the path`,
      systems: {
        ntls: 'p11-kit-client.so → ntls-client p11-relay --listen (own process; a new link per program) → mutual TLS 1.3 (loopback) → ntls daemon, software HSM',
        unixSocket: 'p11-kit-client.so → p11-kit server + SoftHSM2 unix socket (a p11-kit-remote process per program)',
        stunnel: 'p11-kit-client.so → stunnel client → mutual TLS 1.3, TLS_AES_256_GCM_SHA384, P-256 certificates (loopback) → stunnel server → p11-kit server + SoftHSM2',
      },
      packages: packageVersions(['opensc', 'p11-kit', 'p11-kit-modules', 'softhsm2', 'stunnel4']),
      failedRuns: Object.fromEntries(systems.map((s) => [s.name, failedRuns[s.name]!.count])),
      rows: rows.map((row) => ({
        loops: row.loops,
        ...Object.fromEntries(systems.map((s) => [s.name, recorded(s, row.windows[s.name]!)])),
        ntlsOverUnixSocket: ntlsOver(row, 'unixSocket'),
        ntlsOverStunnel: ntlsOver(row, 'stunnel'),
      })),
    });
    console.log(`written ${resultsFile}; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
    if (failedRuns.ntls?.count) process.exitCode = 1;
  } finally {
    await stopAll();
  }
}

/** What was started, stopped in reverse order: at the end, or when the bench is interrupted. */
const stops: Array<() => Promise<void>> = [];

async function stopAll(): Promise<void> {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench:logins: ${signal}, stopping what it started`);
    void stopAll().finally(() => process.exit(1));
  });
}

main().catch((error: Error) => {
  console.error(`bench:logins: ${error.message}`);
  process.exitCode = 1;
});
