// How many of the machine's cores the daemon can use, and with how many processes on its port:
// ntls alone (no reference system beside it), signing on 64 connections by default, measured
// twice in turns: the main process alone (NTLS_WORKERS=1) and the default (a process per core).
// "When the client leaves the cores free": on a 2-core machine the client cannot run elsewhere,
// so this process lowers its own priority (nice 19, after the daemon has started at the
// priority it was given) and the daemon's processes take the cores first whenever they can run.
// The daemon's CPU is split into its main process's event-loop thread, the main process's other
// threads (libuv pool, RSA worker threads, V8) and its worker processes, so that which part is
// the bound shows.
//
//   npm run bench:cores   (BENCH_CASES=P-256,... ; BENCH_CONNECTIONS=64 ; BENCH_SECONDS,
//                          BENCH_ROUNDS, BENCH_WARMUP_SECONDS ; BENCH_CLIENT_NICE=19)
import { createHash } from 'node:crypto';
import { availableParallelism, setPriority } from 'node:os';
import { fileURLToPath } from 'node:url';
import { CKM } from '../src/pkcs11/constants.js';
import {
  benchSettings, cores, describeSettings, interleaved, num, pad, processCpuSeconds, recordHeader, threadCpuSeconds, writeRecord, type Window,
} from './network/measure.js';
import { NtlsDaemon, NTLS_USER_PIN } from './network/ntls-daemon.js';
import { readyServer, signLane, type Signing, type TokenConnection } from './network/token.js';

const settings = benchSettings({ connections: '64', rounds: 2, seconds: 6 });
const clientNice = Number(process.env.BENCH_CLIENT_NICE ?? 19);
const resultsFile = fileURLToPath(new URL('../../bench/results/daemon-cores.json', import.meta.url));

const message = Buffer.alloc(32, 0x61);
const SIGNINGS: Signing[] = [
  { what: 'P-256 CKM_ECDSA_SHA256', key: 'p-256', mechanism: CKM.ECDSA_SHA256, data: message, signatureBytes: 64 },
  { what: 'P-256 CKM_ECDSA (digest)', key: 'p-256', mechanism: CKM.ECDSA, data: createHash('sha256').update(message).digest(), signatureBytes: 64 },
  { what: 'Ed25519 CKM_EDDSA', key: 'ed25519', mechanism: CKM.EDDSA, data: message, signatureBytes: 64 },
  { what: 'RSA-2048 CKM_SHA256_RSA_PKCS', key: 'rsa-2048', mechanism: CKM.SHA256_RSA_PKCS, data: message, signatureBytes: 256 },
];

interface Daemon { label: string; workers: string; daemon: NtlsDaemon; connections: TokenConnection[] }

/** The daemon's CPU in parts: [event-loop thread, the main process's other threads, worker processes]. */
function parts(w: Window): { eventLoop: number; mainOtherThreads: number; workers: number } {
  const [eventLoop = NaN, mainProcess = NaN] = w.probeCores;
  return { eventLoop, mainOtherThreads: mainProcess - eventLoop, workers: (w.daemonCores ?? NaN) - mainProcess };
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log(describeSettings(settings));
  const daemons: Daemon[] = [];
  try {
    for (const [label, workers] of [['main process alone', '1'], ['default (one process per core)', String(availableParallelism())]] as const) {
      const daemon = await NtlsDaemon.start({ env: { NTLS_WORKERS: workers } });
      const { connections } = await readyServer(() => daemon.connect(), NTLS_USER_PIN, settings.maxConnections, 8);
      daemons.push({ label, workers, daemon, connections });
    }
    // Only now: the daemons keep the priority they started with.
    setPriority(clientNice);
    console.log(`daemons ready; this client at nice ${clientNice} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);

    const rows: Array<{ signing: Signing; connections: number; windows: Window[] }> = [];
    const only = process.env.BENCH_CASES?.split(',');
    for (const signing of SIGNINGS.filter((s) => !only || only.some((o) => s.what.includes(o)))) {
      for (const n of settings.connections) {
        process.stdout.write(`  ${signing.what}, ${n} connection(s) ...`);
        const windows = await interleaved(settings, daemons.map((d) => ({
          lanes: d.connections.slice(0, n).map((c) => signLane(c, signing)),
          pids: [d.daemon.pid],
          probes: [() => threadCpuSeconds(d.daemon.pid, d.daemon.pid), () => processCpuSeconds(d.daemon.pid)],
        }))) as Window[];
        rows.push({ signing, connections: n, windows });
        console.log(windows.map((w, i) => ` ${daemons[i]!.workers} process(es) ${w.opsPerSecond.toFixed(0)}/s`).join(','));
      }
    }

    console.log('');
    console.log(`${pad('sign/s', 30)}${'conns'.padStart(6)}${'procs'.padStart(6)}${'sign/s'.padStart(9)}${'daemon'.padStart(8)}${'loop'.padStart(7)}${'pool'.padStart(7)}${'workers'.padStart(9)}${'client'.padStart(8)}${'machine'.padStart(9)}${'µs/sign'.padStart(9)}${'N÷1'.padStart(7)}`);
    for (const r of rows) {
      for (const [i, w] of r.windows.entries()) {
        const p = parts(w);
        const micros = ((w.daemonCores ?? NaN) / w.opsPerSecond) * 1e6;
        console.log(`${pad(i === 0 ? r.signing.what : '', 30)}${(i === 0 ? String(r.connections) : '').padStart(6)}${daemons[i]!.workers.padStart(6)}${num(w.opsPerSecond)}`
          + `${cores(w.daemonCores, 8)}${cores(p.eventLoop, 7)}${cores(p.mainOtherThreads, 7)}${cores(p.workers, 9)}${cores(w.clientCores, 8)}${cores(w.machineCores, 9)}${num(micros)}`
          + `${(i === 0 ? '' : (w.opsPerSecond / r.windows[0]!.opsPerSecond).toFixed(2)).padStart(7)}`);
      }
    }
    console.log('\ndaemon = cores used by the daemon\'s process tree; loop = its main event-loop thread; pool = the main');
    console.log('process\'s other threads (libuv pool, RSA worker threads, V8); workers = its datapath worker processes;');
    console.log(`client = this process (nice ${clientNice}); machine = all cores busy (of ${availableParallelism()}); µs/sign = daemon CPU per signature;`);
    console.log('N÷1 = sign/s with the default processes over the main process alone');

    writeRecord(resultsFile, {
      ...recordHeader('daemon-cores', 'npm run bench:cores', settings),
      clientNice,
      method: `ntls alone on this machine; the bench (the client) lowers itself to nice ${clientNice} once the daemons run at their own priority, so the daemon takes the cores first whenever it can run; CPU from /proc over each window: the daemon's process tree, its main process, that process's event-loop thread`,
      rows: rows.map((r) => ({
        algorithm: r.signing.what,
        connections: r.connections,
        systems: r.windows.map((w, i) => {
          const p = parts(w);
          const round = (v: number) => Math.round(v * 100) / 100;
          return {
            daemon: daemons[i]!.label,
            processesOnPort: Number(daemons[i]!.workers),
            opsPerSecond: Math.round(w.opsPerSecond),
            daemonCores: round(w.daemonCores ?? NaN),
            eventLoopCores: round(p.eventLoop),
            mainOtherThreadsCores: round(p.mainOtherThreads),
            workerProcessesCores: round(p.workers),
            clientCores: round(w.clientCores),
            machineCores: round(w.machineCores),
            daemonCpuMicrosPerSignature: Math.round(((w.daemonCores ?? NaN) / w.opsPerSecond) * 1e6),
          };
        }),
        defaultOverMainAlone: Math.round((r.windows[1]!.opsPerSecond / r.windows[0]!.opsPerSecond) * 100) / 100,
      })),
    });
    console.log(`\nwritten ${resultsFile}; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  } finally {
    for (const d of daemons) await Promise.all(d.connections.map((c) => c.channel.close().catch(() => undefined)));
    for (const d of daemons) await d.daemon.stop();
  }
}

await main();
