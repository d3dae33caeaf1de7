// Loops that each run a command over and over, a new process per run, the way scripts and
// CGI-style programs call pkcs11-tool: every run is counted by when it ends, a failed run is
// counted (with the first one's stderr) rather than stopping the loops, and the CPU of the runs
// themselves is read from this process's reaped children. Every run is bounded in time; runs
// still alive when this process exits are killed.
import { spawn, type ChildProcess } from 'node:child_process';
import { machineCpu, processTreesCpu, reapedChildrenCpuSeconds, sleep, treeCpuBetween } from '../network/measure.js';

export interface ToolCommand {
  file: string;
  args: readonly string[];
  env: NodeJS.ProcessEnv;
  /** A run still going after this long is killed and counted as failed. */
  timeoutMs: number;
}

/** What one window saw; windows of one system add up (addWindows). */
export interface LoopsWindow {
  /** Runs that ended well within the window. */
  runs: number;
  seconds: number;
  /** CPU seconds of the runs (the processes started) reaped within the window. */
  runCpuSeconds: number;
  /** CPU seconds of this process over the window: starting the runs (fork, exec) and waiting for them. */
  launcherCpuSeconds: number;
  /** CPU seconds of each watched process tree over the window, in the order given. */
  watchedCpuSeconds: number[];
  machineBusy: number;
  machineTotal: number;
  /** The slowest run that ended well within the window. */
  slowestRunMs: number;
  /** Failed runs, whenever they ended (warm-up and after the window included). */
  failures: number;
  firstFailure: string | null;
}

const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

/** Keeps the end of a stream's output: enough to say why a run failed. */
const STDERR_KEPT = 4096;

interface RunOutcome {
  ok: boolean;
  ms: number;
  failure: string;
}

function runOnce(command: ToolCommand): Promise<RunOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    let stderr = '';
    let settled = false;
    const child = spawn(command.file, command.args, { env: command.env, stdio: ['ignore', 'ignore', 'pipe'] });
    alive.add(child);
    const settle = (ok: boolean, why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      alive.delete(child);
      resolve({ ok, ms: performance.now() - started, failure: ok ? '' : `${why}: ${stderr.trim() || 'no message'}` });
    };
    const timer = setTimeout(() => { child.kill('SIGKILL'); settle(false, `killed after ${command.timeoutMs} ms`); }, command.timeoutMs);
    child.stderr.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-STDERR_KEPT); });
    child.once('error', (error) => settle(false, error.message));
    child.once('close', (status, signal) => settle(status === 0, signal ? `killed by ${signal}` : `exited ${status}`));
  });
}

/**
 * `loops` loops of `command` for `warmupSeconds`, then a window of `seconds` in which runs that
 * end well are counted; loops finish their current run after it, not counted. `pids` are
 * watched for CPU, each with everything below it.
 */
export async function measureLoops(command: ToolCommand, loops: number, pids: readonly number[], warmupSeconds: number, seconds: number): Promise<LoopsWindow> {
  let stop = false;
  let windowOpen = false;
  let runs = 0;
  let slowest = 0;
  let failures = 0;
  let firstFailure: string | null = null;
  const running = Array.from({ length: loops }, async () => {
    while (!stop) {
      const outcome = await runOnce(command);
      if (!outcome.ok) {
        failures++;
        firstFailure ??= outcome.failure;
      } else if (windowOpen) {
        runs++;
        slowest = Math.max(slowest, outcome.ms);
      }
    }
  });
  await sleep(warmupSeconds * 1000);
  const t0 = performance.now(), c0 = reapedChildrenCpuSeconds(process.pid), u0 = process.cpuUsage(), m0 = machineCpu(), p0 = processTreesCpu(pids);
  windowOpen = true;
  await sleep(seconds * 1000);
  windowOpen = false;
  const t1 = performance.now(), c1 = reapedChildrenCpuSeconds(process.pid), u1 = process.cpuUsage(u0), m1 = machineCpu(), p1 = processTreesCpu(pids);
  stop = true;
  await Promise.all(running);
  return {
    runs,
    seconds: (t1 - t0) / 1000,
    runCpuSeconds: c1 - c0,
    launcherCpuSeconds: (u1.user + u1.system) / 1e6,
    watchedCpuSeconds: p1.map((tree, i) => treeCpuBetween(p0[i]!, tree)),
    machineBusy: m1.busy - m0.busy,
    machineTotal: m1.total - m0.total,
    slowestRunMs: slowest,
    failures,
    firstFailure,
  };
}

export function addWindows(a: LoopsWindow | undefined, b: LoopsWindow): LoopsWindow {
  if (!a) return b;
  return {
    runs: a.runs + b.runs,
    seconds: a.seconds + b.seconds,
    runCpuSeconds: a.runCpuSeconds + b.runCpuSeconds,
    launcherCpuSeconds: a.launcherCpuSeconds + b.launcherCpuSeconds,
    watchedCpuSeconds: a.watchedCpuSeconds.map((s, i) => s + b.watchedCpuSeconds[i]!),
    machineBusy: a.machineBusy + b.machineBusy,
    machineTotal: a.machineTotal + b.machineTotal,
    slowestRunMs: Math.max(a.slowestRunMs, b.slowestRunMs),
    failures: a.failures + b.failures,
    firstFailure: a.firstFailure ?? b.firstFailure,
  };
}
