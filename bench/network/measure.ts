// The measuring the signing benchmarks share: settings from the environment, lanes run for a
// window with CPU accounting (this process, named processes, the whole machine), systems taking
// turns round by round so that a shared machine's changing load skews them alike, and the
// record written to bench/results/.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname } from 'node:path';

export interface BenchSettings {
  seconds: number;
  warmupSeconds: number;
  /** Each system's `seconds` are split into this many turns, interleaved with the others'. */
  rounds: number;
  /** Lanes restart at every turn; after the first, a short settle is enough. */
  rewarmSeconds: number;
  connections: number[];
  /** The most connections of any cell: how many each system opens. */
  maxConnections: number;
}

/** BENCH_SECONDS, BENCH_WARMUP_SECONDS, BENCH_ROUNDS, BENCH_CONNECTIONS (1,8,64); a benchmark may change the defaults. */
export function benchSettings(defaults: { seconds?: number; rounds?: number; connections?: string } = {}): BenchSettings {
  const connections = (process.env.BENCH_CONNECTIONS ?? defaults.connections ?? '1,8,64').split(',').map(Number);
  return {
    seconds: Number(process.env.BENCH_SECONDS ?? defaults.seconds ?? 3),
    warmupSeconds: Number(process.env.BENCH_WARMUP_SECONDS ?? 0.5),
    rounds: Math.max(1, Number(process.env.BENCH_ROUNDS ?? defaults.rounds ?? 3)),
    rewarmSeconds: 0.1,
    connections,
    maxConnections: Math.max(...connections),
  };
}

export function describeSettings(settings: BenchSettings): string {
  return `node ${process.version}, ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}); ${settings.warmupSeconds} s warm-up + ${settings.seconds} s per measurement, in ${settings.rounds} interleaved turns`;
}

// ---------------------------------------------------------------------------------------------
// CPU accounting over a measurement window: this process, other processes, the whole machine.

export function processCpuSeconds(pid: number): number {
  return statCpuSeconds(`/proc/${pid}/stat`);
}

/** CPU seconds of one thread of `pid` (its event loop when `tid` is `pid`). */
export function threadCpuSeconds(pid: number, tid: number): number {
  return statCpuSeconds(`/proc/${pid}/task/${tid}/stat`);
}

function statCpuSeconds(file: string): number {
  try {
    const stat = readFileSync(file, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/** CPU seconds of `pid`'s children that ended and were waited for (cutime + cstime). */
export function reapedChildrenCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) / 100;
  } catch {
    return NaN;
  }
}

/** Processes whose parent is `pid` (e.g. the daemon's module hosts). */
export function childProcesses(pid: number): number[] {
  const children: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (parent === pid) children.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return children;
}

/**
 * CPU seconds of each root and of every process below it, by pid (threads count in their
 * process), read in one pass over /proc: p11-kit server's per-connection children, say. A
 * process's figure includes its reaped children's (cutime, cstime), so that a child that lived
 * and ended within a window (a p11-kit-remote per connection, when each connection is a new
 * program) still counts: alive it counts itself, reaped it counts in its parent.
 */
export function processTreesCpu(roots: readonly number[]): Array<Map<number, number>> {
  const parents = new Map<number, number>();
  const seconds = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parents.set(Number(entry), Number(fields[1]));
      // utime, stime, cutime, cstime in clock ticks (USER_HZ 100)
      seconds.set(Number(entry), (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / 100);
    } catch {
      // gone meanwhile
    }
  }
  return roots.map((root) => {
    const tree = new Map<number, number>();
    if (!seconds.has(root)) return tree;
    tree.set(root, seconds.get(root)!);
    for (let grew = true; grew;) {
      grew = false;
      for (const [pid, parent] of parents) {
        if (!tree.has(pid) && tree.has(parent)) {
          tree.set(pid, seconds.get(pid)!);
          grew = true;
        }
      }
    }
    return tree;
  });
}

/** CPU seconds a tree used between two samples; a process that appeared in between counts from zero. */
export function treeCpuBetween(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, s] of after) total += s - (before.get(pid) ?? 0);
  return total;
}

export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const idle = (line[3] ?? 0) + (line[4] ?? 0);
  const total = line.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** What one measurement window saw; windows of one system add up. */
export interface Tally {
  signatures: number;
  seconds: number;
  clientCpuSeconds: number;
  /** CPU seconds of each watched process, in the order given. */
  processCpuSeconds: number[];
  /** CPU seconds of each probe given to measure() (a thread, a single process), in order. */
  probeCpuSeconds: number[];
  machineBusy: number;
  machineTotal: number;
}

export interface Window {
  opsPerSecond: number;
  /** Cores busy on the whole machine during the window (0..CPUs). */
  machineCores: number;
  /** Cores used by this (client) process. */
  clientCores: number;
  /** Cores used by the watched processes together (the daemon and its children); null when none. */
  daemonCores: number | null;
  /** The same, each watched process on its own. */
  processCores: number[];
  /** Cores used by each probe. */
  probeCores: number[];
}

export function add(a: Tally | null, b: Tally): Tally {
  if (!a) return b;
  return {
    signatures: a.signatures + b.signatures,
    seconds: a.seconds + b.seconds,
    clientCpuSeconds: a.clientCpuSeconds + b.clientCpuSeconds,
    processCpuSeconds: a.processCpuSeconds.map((s, i) => s + (b.processCpuSeconds[i] ?? NaN)),
    probeCpuSeconds: a.probeCpuSeconds.map((s, i) => s + (b.probeCpuSeconds[i] ?? NaN)),
    machineBusy: a.machineBusy + b.machineBusy,
    machineTotal: a.machineTotal + b.machineTotal,
  };
}

export function windowOf(t: Tally): Window {
  const processCores = t.processCpuSeconds.map((s) => s / t.seconds);
  return {
    opsPerSecond: t.signatures / t.seconds,
    machineCores: (t.machineBusy / Math.max(1, t.machineTotal)) * availableParallelism(),
    clientCores: t.clientCpuSeconds / t.seconds,
    daemonCores: processCores.length === 0 ? null : processCores.reduce((a, b) => a + b, 0),
    processCores,
    probeCores: t.probeCpuSeconds.map((s) => s / t.seconds),
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** One signature, checked; a lane calls it over and over. */
export type Lane = () => Promise<void>;

/**
 * Runs the lanes in loops for `warmup` seconds, then counts completions over `seconds`; loops
 * still running at the end are awaited and not counted. `pids` are watched for CPU, each with its
 * descendants; `probes` (CPU seconds so far, e.g. of one thread) are read at the window's ends.
 */
export async function measure(lanes: readonly Lane[], pids: readonly number[], warmup: number, seconds: number, probes: ReadonlyArray<() => number> = []): Promise<Tally> {
  let stop = false;
  let count = 0;
  const loops = lanes.map(async (once) => {
    while (!stop) {
      await once();
      count++;
    }
  });
  const failures: Error[] = [];
  const failed = Promise.all(loops).catch((error: unknown) => { failures.push(error instanceof Error ? error : new Error(String(error))); stop = true; });
  await sleep(warmup * 1000);
  const c0 = count, t0 = performance.now(), u0 = process.cpuUsage(), m0 = machineCpu();
  // Each watched process with everything below it (the daemon's workers and module hosts, p11-kit server's per-connection processes).
  const p0 = processTreesCpu(pids);
  const r0 = probes.map((probe) => probe());
  await sleep(seconds * 1000);
  const c1 = count, t1 = performance.now(), u1 = process.cpuUsage(u0), m1 = machineCpu();
  const p1 = processTreesCpu(pids);
  const r1 = probes.map((probe) => probe());
  stop = true;
  await failed;
  if (failures[0]) throw failures[0];
  return {
    signatures: c1 - c0,
    seconds: (t1 - t0) / 1000,
    clientCpuSeconds: (u1.user + u1.system) / 1e6,
    processCpuSeconds: p1.map((tree, i) => treeCpuBetween(p0[i]!, tree)),
    probeCpuSeconds: r1.map((end, i) => end - r0[i]!),
    machineBusy: m1.busy - m0.busy,
    machineTotal: m1.total - m0.total,
  };
}

/** One system in a cell: its lanes (as many as connections) and the processes to watch. */
export interface Contender {
  lanes: readonly Lane[];
  pids: readonly number[];
  probes?: ReadonlyArray<() => number>;
}

/**
 * The systems take turns, `rounds` times, each measured for its share of `seconds`, so that load
 * from elsewhere lands on all alike. A null system is not measured (and its window is null).
 */
export async function interleaved(settings: BenchSettings, systems: ReadonlyArray<Contender | null>): Promise<Array<Window | null>> {
  const tallies: Array<Tally | null> = systems.map(() => null);
  for (let round = 0; round < settings.rounds; round++) {
    const warmup = round === 0 ? settings.warmupSeconds : settings.rewarmSeconds;
    for (const [i, system] of systems.entries()) {
      if (system) tallies[i] = add(tallies[i] ?? null, await measure(system.lanes, system.pids, warmup, settings.seconds / settings.rounds, system.probes));
    }
  }
  return tallies.map((t) => t && windowOf(t));
}

// ---------------------------------------------------------------------------------------------
// Printing and the record.

export const pad = (s: string, n: number) => s.padEnd(n);
export const num = (v: number | null | undefined, n = 9) => (v === null || v === undefined || Number.isNaN(v) ? '-' : v.toFixed(0)).padStart(n);
export const ratio = (a: number, b: number | null | undefined, n = 8) => (b ? (a / b).toFixed(2) : '-').padStart(n);
export const cores = (v: number | null | undefined, n: number) => (v ?? NaN).toFixed(2).padStart(n);

/** A window as recorded: whole operations, cores to two places. */
export function recorded(w: Window | null) {
  return w && {
    opsPerSecond: Math.round(w.opsPerSecond),
    machineCores: Number(w.machineCores.toFixed(2)),
    clientCores: Number(w.clientCores.toFixed(2)),
    ...(w.daemonCores === null ? {} : { daemonCores: Number(w.daemonCores.toFixed(2)) }),
  };
}

/** a ÷ b to three places, or null without b. */
export function recordedRatio(a: Window, b: Window | null): number | null {
  return b ? Number((a.opsPerSecond / b.opsPerSecond).toFixed(3)) : null;
}

/** Installed Debian package versions of the references, for the record. */
export function packageVersions(packages: readonly string[] = ['p11-kit', 'softhsm2']): Record<string, string> {
  try {
    const out = execFileSync('dpkg-query', ['-W', '-f', '${Package} ${Version}\\n', ...packages], { encoding: 'utf8' });
    return Object.fromEntries(out.trim().split('\n').map((line) => line.split(' ') as [string, string]));
  } catch {
    return {};
  }
}

/** What every record starts with. */
export function recordHeader(benchmark: string, command: string, settings: BenchSettings) {
  return {
    benchmark,
    command,
    date: new Date().toISOString(),
    node: process.version,
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? null,
    warmupSeconds: settings.warmupSeconds,
    seconds: settings.seconds,
    rounds: settings.rounds,
  };
}

export function writeRecord(file: string, record: unknown): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
}
