// The stock application of the benchmarks (bench/stock/sign-loop.c): built here with the system's
// cc against pkcs11js's PKCS#11 headers, run with a module, a token, a key and a mechanism, its
// window announced as it opens and closes (so that the caller can read other processes' CPU over
// the same window), its result parsed. Every run is bounded in time.
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// dist/bench/stock/sign-loop.js → the repository root
const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
const source = join(repoRoot, 'bench/stock/sign-loop.c');
const headers = join(repoRoot, 'node_modules/pkcs11js/includes/pkcs11');

/** The two signatures stock applications make through bookworm's p11-kit client. */
export type SignLoopMechanism = 'ecdsa' | 'rsa-pkcs';

export interface SignLoopRun {
  /** The PKCS#11 module to dlopen (p11-kit-client.so, libsofthsm2.so, ...). */
  module: string;
  token: string;
  pin: string;
  /** CKA_LABEL of the private key. */
  key: string;
  mechanism: SignLoopMechanism;
  /** The counted window, after `warmupSeconds` of signing that is not counted. */
  seconds: number;
  warmupSeconds: number;
  /** Signing goes on, not counted, this long after the window (default 0.25 s). */
  cooldownSeconds?: number;
  processes: number;
  /**
   * Signing threads in each process (default 1): above 1, the process initialises the module
   * with CKF_OS_LOCKING_OK, logs in once, and each thread signs on a session of its own.
   */
  threads?: number;
  /** Each process's set-up and each call must end within this (default 30 s). */
  timeoutSeconds?: number;
  /** The environment of the application (P11_KIT_SERVER_ADDRESS, SOFTHSM2_CONF, ...). */
  env?: NodeJS.ProcessEnv;
}

export interface SignLoopResult {
  signatures: number;
  elapsedSeconds: number;
  signaturesPerSecond: number;
  /** CPU of the application's processes over the window. */
  cpuSeconds: number;
  /** The slowest C_SignInit + C_Sign pair in the window. */
  maxSignatureMs: number;
  signatureBytes: number;
  threads: number;
  perProcess: number[];
}

export interface SignLoopHooks {
  /** The window opens: every process is set up and warmed. */
  measuring?(): void;
  /** The window closes (the processes go on signing through the cool-down). */
  measured?(): void;
}

export class SignLoopError extends Error {
  constructor(readonly status: number | null, detail: string) {
    super(detail);
    this.name = 'SignLoopError';
  }
}

/** Compiles sign-loop.c into `dir`; answers the program's path. */
export function buildSignLoop(dir: string): string {
  const binary = join(dir, 'sign-loop');
  execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-I', headers, '-o', binary, source, '-ldl'], { stdio: ['ignore', 'inherit', 'inherit'], timeout: 60_000 });
  return binary;
}

export function signLoopArguments(run: SignLoopRun): string[] {
  return [
    '--module', run.module, '--token', run.token, '--pin', run.pin, '--key', run.key, '--mechanism', run.mechanism,
    '--seconds', String(run.seconds), '--warmup', String(run.warmupSeconds),
    '--cooldown', String(run.cooldownSeconds ?? 0.25), '--processes', String(run.processes),
    '--timeout', String(run.timeoutSeconds ?? 30),
    ...(run.threads && run.threads > 1 ? ['--threads', String(run.threads)] : []),
  ];
}

/** Runs the program once; rejects with its stderr line when it fails. */
export function runSignLoop(binary: string, run: SignLoopRun, hooks: SignLoopHooks = {}): Promise<SignLoopResult> {
  const timeout = run.timeoutSeconds ?? 30;
  // Set-up of each process one by one, warm-up, window, and the end, each bounded by the program.
  const limitMs = ((timeout + 1) * (run.processes + 2) + run.warmupSeconds + run.seconds + (run.cooldownSeconds ?? 0.25)) * 1000;
  return new Promise((resolve, reject) => {
    const child = spawn(binary, signLoopArguments(run), { env: run.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let result: SignLoopResult | null = null;
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout }).on('line', (line) => {
      // A module may print on stdout too: only the program's JSON lines count.
      let event: { event?: string } & SignLoopResult;
      try {
        event = JSON.parse(line);
      } catch {
        return;
      }
      if (event.event === 'measuring') hooks.measuring?.();
      else if (event.event === 'measured') hooks.measured?.();
      else if (event.event === 'result') result = event;
    });
    child.once('error', (error) => { clearTimeout(timer); reject(error); });
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      if (status === 0 && result) resolve(result);
      else reject(new SignLoopError(status, `sign-loop ${signal ? `killed by ${signal} after ${limitMs} ms` : `exited ${status}`}: ${stderr.trim() || 'no message'}`));
    });
  });
}
