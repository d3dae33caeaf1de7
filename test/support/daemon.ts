// Starts the real ntls daemon (the built dist/ under `npm test`) in a temporary home on a free
// loopback port, and reads its lunalogs. Every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSelfSignedCertificate, type CertificateAndKey } from '../../src/certificates/self-signed.js';
import { openLink, type Link, type LinkOptions } from '../../src/client/link.js';

export const repoRoot = resolve(fileURLToPath(new URL('../..', import.meta.url)));
export const ntlsBin = join(repoRoot, 'dist/src/cli/ntls.js');

export function makeHome(config: Record<string, unknown> = {}): string {
  const home = mkdtempSync(join(tmpdir(), 'ntls-test-'));
  const base = {
    server: { bind: '127.0.0.1', port: 0 },
    ...config,
  };
  writeFileSync(join(home, 'ntls.json'), JSON.stringify(base, null, 2));
  return home;
}

export function removeHome(home: string): void {
  rmSync(home, { recursive: true, force: true });
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `ntls <args>` to completion (bounded). */
export function runNtls(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [ntlsBin, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ntls ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    // 'close' comes once stdout and stderr are read to their end: at 'exit' a loaded machine may
    // still hold the tail of the output (a --help without its examples). A descendant keeping the
    // pipes open does not hold the result back for more than two seconds after the exit.
    let exit: { status: number | null; signal: NodeJS.Signals | null } | null = null;
    const done = () => {
      clearTimeout(timer);
      resolveRun({ ...exit!, stdout, stderr });
    };
    child.on('exit', (status, signal) => {
      exit = { status, signal };
      setTimeout(done, 2000).unref();
    });
    child.on('close', (status: number | null, signal: NodeJS.Signals | null) => {
      exit ??= { status, signal };
      done();
    });
  });
}

export class Daemon {
  exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;
  stdout = '';
  stderr = '';

  constructor(readonly home: string, readonly child: ChildProcess, readonly port: number) {
    this.exited = new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r({ status: child.exitCode, signal: child.signalCode });
      else child.once('exit', (status, signal) => r({ status, signal }));
    });
  }

  get logFile(): string {
    return join(this.home, 'logs', 'lunalogs');
  }

  log(): string[] {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8').split('\n').filter(Boolean) : [];
  }

  /** Texts of the log lines (what follows "NTLS [pid]: "). */
  bodies(): string[] {
    return this.log().map((line) => line.slice(line.indexOf(']: ') + 3));
  }

  async waitForLog(pattern: RegExp | string, timeoutMs = 10_000, from = 0): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.log().slice(from).find((l) => (typeof pattern === 'string' ? l.includes(pattern) : pattern.test(l)));
      if (found) return found;
      await sleep(50);
    }
    throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms; log:\n${this.log().slice(from).join('\n')}`);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 15_000): Promise<{ status: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}

/**
 * The start-up line on the datapath's workers, as a daemon started by these tests writes it: the
 * processes serving the TLS port (datapath.inboundWorkers: the cores, or NTLS_WORKERS; 0 is the main process
 * alone, reported as 1) and the main process's libuv thread pool (4 unless set).
 */
export function workersLine(inbound = Number(process.env.NTLS_WORKERS || availableParallelism())): string {
  return `info : 0 : NTLS data path configured with ${Math.max(inbound, 1)} inbound worker threads and ${Number(process.env.UV_THREADPOOL_SIZE) || 4} outbound worker threads`;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Starts the daemon and waits for "online on host:port" on its stdout. */
export function startDaemon(home: string, env: NodeJS.ProcessEnv = {}, extraArgs: string[] = []): Promise<Daemon> {
  return new Promise((resolveStart, reject) => {
    const child = spawn(process.execPath, [ntlsBin, 'start', '--home', home, '--quiet', ...extraArgs], {
      env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`daemon did not come online in 20 s\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, 20_000);
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.on('data', (d) => {
      stdout += d;
      const match = /online on (\S+):(\d+)/.exec(stdout);
      if (match) {
        clearTimeout(timer);
        const daemon = new Daemon(home, child, Number(match[2]));
        child.stdout.on('data', (more) => (daemon.stdout += more));
        child.stderr.on('data', (more) => (daemon.stderr += more));
        daemon.stdout = stdout;
        daemon.stderr = stderr;
        resolveStart(daemon);
      }
    });
    child.once('exit', (status) => {
      clearTimeout(timer);
      reject(Object.assign(new Error(`daemon exited with ${status} before coming online\nstdout: ${stdout}\nstderr: ${stderr}`), { status, stderr }));
    });
  });
}

export interface TestClient extends CertificateAndKey {
  name: string;
}

export async function makeClient(name: string, options: { notBefore?: Date; notAfter?: Date } = {}): Promise<TestClient> {
  const made = await createSelfSignedCertificate({ commonName: name, keyType: 'ecdsa-p256', usage: 'client', dnsNames: [name], ...options });
  return { name, ...made };
}

/**
 * Registers by dropping the certificate into the verify location, with the host it connects
 * from (127.0.0.1 unless told: the ip check is on by default; `host: null` registers none).
 */
export function registerClient(home: string, client: TestClient, meta: { host?: string | null } = {}): void {
  const folder = join(home, 'clients');
  mkdirSync(folder, { recursive: true });
  writeFileSync(join(folder, `${client.name}.json`), JSON.stringify({ host: meta.host === undefined ? '127.0.0.1' : meta.host, partitions: [] }));
  writeFileSync(join(folder, `${client.name}.pem`), client.certificatePem);
}

/** Links, retrying while the daemon's monitor has not yet picked up a new registration. */
export async function linkWhenRegistered(daemon: Daemon, client: TestClient, timeoutMs = 5000): Promise<Link> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await link(daemon, client);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(100);
    }
  }
}

export function unregisterClient(home: string, client: TestClient): void {
  rmSync(join(home, 'clients', `${client.name}.pem`), { force: true });
}

export function serverCertificate(home: string): string {
  return readFileSync(join(home, 'server', 'server.pem'), 'utf8');
}

export function link(daemon: Daemon, client: TestClient, extra: Partial<LinkOptions> = {}): Promise<Link> {
  return openLink({
    host: '127.0.0.1', port: daemon.port, clientName: client.name,
    certificatePem: client.certificatePem, keyPem: client.keyPem,
    serverCertificatePem: serverCertificate(daemon.home), timeoutMs: 8000, ...extra,
  });
}

/** A keepalive request body: NTLS private call id, empty signature. */
export function keepaliveBody(): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(0x4e540001, 0);
  return body;
}
