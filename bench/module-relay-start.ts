// What a process per signature costs through libntls-pkcs11.so's own relay, as scripts and
// CGI-style programs use it: `pkcs11-tool --module libntls-pkcs11.so --login --pin PIN --sign`
// run N times one after another, each a new process whose C_Initialize starts `ntls-client
// p11-relay` on a socket pair (node start-up, the relay's code, client.json, TLS and the identity
// exchange), against references measured in the same run, taking turns:
//   - shared relay: the same module and command, through a long-running `ntls-client p11-relay
//     --listen SOCK` (NTLS_PKCS11_RELAY=unix:path=SOCK): the path without a relay start;
//   - p11-kit-client.so: bookworm's p11-kit client module through that same relay socket;
//   - SoftHSM2: pkcs11-tool on libsofthsm2.so, a local token (no network, no relay);
//   - and the relay's own parts: `node -e 0` (node's start-up, the floor of any relay start), and
//     the relay alone (`node ntls-client.js p11-relay --config-dir DIR` on pipes: start to its
//     first answer, which comes once its link to the daemon is up, and to its exit).
// Printed: the median wall time per process (and p90, min) of each, and ratios: own relay ÷ each
// reference, and own relay − shared relay (what starting a relay costs a program).
//
//   npm run bench:module-start   (BENCH_RUNS per system, default 40, in BENCH_ROUNDS turns, default 4;
//                                 BENCH_BASELINE_MODULE=PATH adds another build's libntls-pkcs11.so
//                                 (own relay, from that build's dist/) as "baseline", e.g. main's
//                                 checkout, to compare before and after in one run, BENCH_BASELINE_LABEL
//                                 naming it in the record (e.g. "main at 11f152c");
//                                 BENCH_OUT=FILE writes the record elsewhere than bench/results/module-relay-start.json)
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { packageVersions, writeRecord } from './network/measure.js';
import { NtlsDaemon, NTLS_PARTITION, NTLS_USER_PIN } from './network/ntls-daemon.js';
import { SoftHsmServer, SOFTHSM_MODULE, SOFTHSM_TOKEN, SOFTHSM_USER_PIN } from './network/softhsm-server.js';
import { generateSigningKeyWithId } from './network/token.js';
import { P11KIT_CLIENT, RelayProcess } from './stock/relay-process.js';
import { pkcs11ModulePath, PKCS11_RELAY_ENV } from '../src/client/pkcs11-module.js';

const runs = Number(process.env.BENCH_RUNS ?? 40);
const rounds = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 4));
const baselineModule = process.env.BENCH_BASELINE_MODULE;
const baselineLabel = process.env.BENCH_BASELINE_LABEL;
const resultsFile = process.env.BENCH_OUT ?? fileURLToPath(new URL('../../bench/results/module-relay-start.json', import.meta.url));
// dist/bench/module-relay-start.js → dist/src/cli/ntls-client.js
const ntlsClientBin = fileURLToPath(new URL('../src/cli/ntls-client.js', import.meta.url));
/** CKA_ID (hex) of the key pkcs11-tool signs with. */
const KEY_ID = '01';
/** A run that takes longer than this is killed and counted as failed. */
const RUN_TIMEOUT_MS = 30_000;
/** Runs of each system before the first counted one (file cache, the daemon's JIT). */
const WARMUP_RUNS = 3;

type SystemName = 'ownRelay' | 'baseline' | 'sharedRelay' | 'p11kitClient' | 'softhsm' | 'nodeFloor' | 'relayAlone';

interface System {
  name: SystemName;
  title: string;
  describe: string;
  /** One run: its wall time in ms, or why it failed. */
  run(): Promise<Outcome>;
}

type Outcome = { ok: true; ms: number; firstAnswerMs?: number } | { ok: false; why: string };

/** The pkcs11-tool command line, as a script on a client host runs it. */
function toolArguments(module: string, token: string, pin: string, input: string): string[] {
  return [
    '--module', module, '--token-label', token, '--login', '--pin', pin,
    '--sign', '--mechanism', 'ECDSA', '--id', KEY_ID, '--input-file', input, '--output-file', '/dev/null',
  ];
}

/** Runs a program to its end; its wall time from spawn to exit. */
function timed(file: string, args: readonly string[], env: NodeJS.ProcessEnv): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    let stderr = '';
    const child = spawn(file, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4096); });
    child.once('error', (error) => { clearTimeout(timer); resolve({ ok: false, why: error.message }); });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      resolve(status === 0 ? { ok: true, ms } : { ok: false, why: `${signal ? `killed by ${signal}` : `exited ${status}`}: ${stderr.trim() || 'no message'}` });
    });
  });
}

/**
 * The relay as the module starts it, on pipes: the p11-kit version byte in, its answer out (sent
 * once the link to the daemon is up), then stdin closed and the relay's exit awaited.
 */
function relayAlone(folder: string): Promise<Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    let stderr = '';
    let firstAnswerMs: number | undefined;
    const child = spawn(process.execPath, [ntlsClientBin, 'p11-relay', '--config-dir', folder], { stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4096); });
    child.stdout.once('data', () => {
      firstAnswerMs = performance.now() - started;
      child.stdin.end();
    });
    child.stdin.on('error', () => undefined);
    child.stdin.write(Buffer.from([0]));
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      const ms = performance.now() - started;
      resolve(status === 0 && firstAnswerMs !== undefined ? { ok: true, ms, firstAnswerMs }
        : { ok: false, why: `${signal ? `killed by ${signal}` : `exited ${status}`}${firstAnswerMs === undefined ? ' before answering' : ''}: ${stderr.trim() || 'no message'}` });
    });
  });
}

interface Tally {
  ms: number[];
  firstAnswerMs: number[];
  failures: number;
  firstFailure: string | null;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function summary(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  const round1 = (n: number) => Number(n.toFixed(1));
  return {
    runs: sorted.length,
    medianMs: round1(quantile(sorted, 0.5)),
    p90Ms: round1(quantile(sorted, 0.9)),
    minMs: round1(sorted[0] ?? NaN),
    meanMs: round1(sorted.reduce((a, b) => a + b, 0) / Math.max(1, sorted.length)),
  };
}

const median = (t: Tally) => quantile([...t.ms].sort((a, b) => a - b), 0.5);

async function main(): Promise<void> {
  const started = Date.now();
  const load = [loadavg()[0]!];
  console.log(`node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}); ${runs} runs per system in ${rounds} turns, ${WARMUP_RUNS} warm-up runs first; load average ${load[0]!.toFixed(2)}`);
  const dir = mkdtempSync(join(tmpdir(), 'ntls-bench-module-start-'));
  stops.push(async () => rmSync(dir, { recursive: true, force: true }));
  const input = join(dir, 'digest.bin');
  writeFileSync(input, Buffer.alloc(32, 0x5a));
  console.log('starting ntls + a shared relay, SoftHSM2 ...');
  const ntls = await NtlsDaemon.start();
  stops.push(() => ntls.stop());
  await generateSigningKeyWithId(() => ntls.connect(), NTLS_USER_PIN, KEY_ID);
  // The module's config folder: client.json, the client's certificate and key, the server's certificate.
  const folder = join(dir, 'client-config');
  mkdirSync(folder, { mode: 0o700 });
  ntls.writeClientFolder(folder);
  const relay = await RelayProcess.start(ntls);
  stops.push(() => relay.stop());
  const softhsm = await SoftHsmServer.start();
  stops.push(() => softhsm.stop());
  await generateSigningKeyWithId(() => softhsm.connect(), SOFTHSM_USER_PIN, KEY_ID);

  const module = pkcs11ModulePath();
  // The module's own relay is started unless the environment names one: none here.
  const ownEnv = { ...process.env, NTLS_CLIENT_HOME: folder, [PKCS11_RELAY_ENV]: undefined };
  const tool = (moduleFile: string, token: string, pin: string, env: NodeJS.ProcessEnv) => () => timed('pkcs11-tool', toolArguments(moduleFile, token, pin, input), env);
  const systems: System[] = [
    {
      name: 'ownRelay', title: 'module, own relay', run: tool(module, NTLS_PARTITION, NTLS_USER_PIN, ownEnv),
      describe: 'libntls-pkcs11.so starting its own `ntls-client p11-relay --config-dir DIR` per process (NTLS_CLIENT_HOME=DIR, client.json) → mutual TLS 1.3 (loopback) → ntls daemon, software HSM',
    },
    ...(baselineModule ? [{
      name: 'baseline' as const, title: 'baseline module, own relay', run: tool(baselineModule, NTLS_PARTITION, NTLS_USER_PIN, ownEnv),
      describe: `${baselineModule}${baselineLabel ? ` (${baselineLabel})` : ''}: another build, from its own dist/, starting its own relay per process; the same folder and daemon`,
    }] : []),
    {
      name: 'sharedRelay', title: 'module, shared relay', run: tool(module, NTLS_PARTITION, NTLS_USER_PIN, { ...ownEnv, [PKCS11_RELAY_ENV]: `unix:path=${relay.socketPath}` }),
      describe: 'libntls-pkcs11.so → a long-running `ntls-client p11-relay --listen SOCK` (NTLS_PKCS11_RELAY=unix:path=SOCK; a new link per program) → the same daemon',
    },
    {
      name: 'p11kitClient', title: 'p11-kit-client.so', run: tool(P11KIT_CLIENT, NTLS_PARTITION, NTLS_USER_PIN, { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${relay.socketPath}` }),
      describe: 'p11-kit-client.so → the same long-running relay socket (P11_KIT_SERVER_ADDRESS) → the same daemon',
    },
    {
      name: 'softhsm', title: 'SoftHSM2', run: tool(SOFTHSM_MODULE, SOFTHSM_TOKEN, SOFTHSM_USER_PIN, { ...process.env, SOFTHSM2_CONF: join(softhsm.dir, 'softhsm2.conf') }),
      describe: 'libsofthsm2.so loaded by pkcs11-tool: a local token, no network and no relay',
    },
    {
      name: 'nodeFloor', title: 'node -e 0', run: () => timed(process.execPath, ['-e', '0'], process.env),
      describe: 'node\'s own start-up and exit, the floor of any relay start',
    },
    {
      name: 'relayAlone', title: 'relay alone', run: () => relayAlone(folder),
      describe: '`node ntls-client.js p11-relay --config-dir DIR` on pipes, as the module starts it: to its first answer (its link is up) and to its exit after stdin closes',
    },
  ];
  console.log(`ready (${((Date.now() - started) / 1000).toFixed(1)} s)`);

  const tallies = new Map<SystemName, Tally>(systems.map((s) => [s.name, { ms: [], firstAnswerMs: [], failures: 0, firstFailure: null }]));
  const take = (system: System, outcome: Outcome, counted: boolean) => {
    const t = tallies.get(system.name)!;
    if (!outcome.ok) {
      t.failures++;
      t.firstFailure ??= outcome.why;
    } else if (counted) {
      t.ms.push(outcome.ms);
      if (outcome.firstAnswerMs !== undefined) t.firstAnswerMs.push(outcome.firstAnswerMs);
    }
  };
  for (const system of systems) for (let i = 0; i < WARMUP_RUNS; i++) take(system, await system.run(), false);
  // The systems take turns, so that load from elsewhere lands on all alike.
  for (let round = 0; round < rounds; round++) {
    const share = Math.floor(runs / rounds) + (round < runs % rounds ? 1 : 0);
    for (const system of systems) for (let i = 0; i < share; i++) take(system, await system.run(), true);
    process.stdout.write(`  turn ${round + 1}/${rounds}: ${systems.map((s) => `${s.title} ${median(tallies.get(s.name)!).toFixed(0)} ms`).join(', ')}\n`);
  }
  load.push(loadavg()[0]!);

  const m = (name: SystemName) => median(tallies.get(name)!);
  const ratio = (a: SystemName, b: SystemName) => (tallies.has(a) && tallies.has(b) ? Number((m(a) / m(b)).toFixed(2)) : null);
  console.log('\nwall time per process (median, p90, min):');
  for (const system of systems) {
    const t = tallies.get(system.name)!;
    const s = summary(t.ms);
    const first = t.firstAnswerMs.length ? `; first answer ${summary(t.firstAnswerMs).medianMs} ms` : '';
    console.log(`  ${system.title.padEnd(28)}${s.medianMs.toFixed(1).padStart(8)} ms${s.p90Ms.toFixed(1).padStart(8)}${s.minMs.toFixed(1).padStart(8)}${first}${t.failures ? `; ${t.failures} failed` : ''}`);
  }
  const ratios = {
    ownRelayOverSharedRelay: ratio('ownRelay', 'sharedRelay'),
    ownRelayOverP11kitClient: ratio('ownRelay', 'p11kitClient'),
    ownRelayOverSofthsm: ratio('ownRelay', 'softhsm'),
    ...(baselineModule ? { baselineOverOwnRelay: ratio('baseline', 'ownRelay') } : {}),
  };
  const relayStartMs = Number((m('ownRelay') - m('sharedRelay')).toFixed(1));
  console.log(`\nown relay ÷ shared relay ${ratios.ownRelayOverSharedRelay}, ÷ p11-kit-client.so ${ratios.ownRelayOverP11kitClient}, ÷ SoftHSM2 ${ratios.ownRelayOverSofthsm}`
    + `${baselineModule ? `; baseline ÷ own relay ${ratios.baselineOverOwnRelay}` : ''}`);
  console.log(`starting the relay costs a program ${relayStartMs} ms (own relay − shared relay); node -e 0 takes ${m('nodeFloor').toFixed(1)} ms`);
  console.log(`load average ${load.map((l) => l.toFixed(2)).join(' → ')} (figures are only fair on an otherwise idle machine)`);
  for (const system of systems) {
    const t = tallies.get(system.name)!;
    if (t.firstFailure) console.log(`\n${system.title}: ${t.failures} failed run(s); the first: ${t.firstFailure}${system.name === 'sharedRelay' || system.name === 'p11kitClient' ? `\nrelay: ${relay.messages}` : ''}`);
  }

  writeRecord(resultsFile, {
    benchmark: 'module-relay-start',
    command: `${baselineModule ? `BENCH_BASELINE_MODULE=${baselineModule} ` : ''}npm run bench:module-start`,
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? null,
    runsPerSystem: runs,
    rounds,
    warmupRuns: WARMUP_RUNS,
    loadAverage: { start: Number(load[0]!.toFixed(2)), end: Number(load[1]!.toFixed(2)) },
    application: `pkcs11-tool ${toolArguments('MODULE', 'TOKEN', 'PIN', 'DIGEST32').join(' ')} (opensc), a new process per signature, one after another`,
    systems: Object.fromEntries(systems.map((s) => [s.name, s.describe])),
    packages: packageVersions(['opensc', 'p11-kit', 'p11-kit-modules', 'softhsm2']),
    results: Object.fromEntries(systems.map((s) => {
      const t = tallies.get(s.name)!;
      return [s.name, { ...summary(t.ms), ...(t.firstAnswerMs.length ? { firstAnswer: summary(t.firstAnswerMs) } : {}), failedRuns: t.failures, firstFailure: t.firstFailure }];
    })),
    relayStartMs,
    ratios,
  });
  console.log(`written ${resultsFile}; total ${((Date.now() - started) / 1000).toFixed(0)} s`);
  if (tallies.get('ownRelay')!.failures) process.exitCode = 1;
}

/** What was started, stopped in reverse order: at the end, or when the bench is interrupted. */
const stops: Array<() => Promise<void>> = [];

async function stopAll(): Promise<void> {
  for (const stop of stops.splice(0).reverse()) await stop().catch(() => undefined);
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    console.error(`bench:module-start: ${signal}, stopping what it started`);
    void stopAll().finally(() => process.exit(1));
  });
}

main().catch((error: Error) => {
  console.error(`bench:module-start: ${error.message}`);
  process.exitCode = 1;
}).finally(() => stopAll());
