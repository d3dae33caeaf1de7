// End-to-end helpers: the real daemon, the real relay, and the stock PKCS#11 tools
// (pkcs11-tool, p11tool, openssl with libengine-pkcs11-openssl) through p11-kit's client module.
// Every process is bounded by a timeout. A missing tool is a failure, never a skip.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, makeHome, repoRoot, runNtls, sleep, startDaemon } from './daemon.js';
import type { TestBackend } from './backends.js';

export const P11KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
export const P11KIT_PROXY = '/usr/lib/x86_64-linux-gnu/p11-kit-proxy.so';
export const PKCS11_ENGINE = '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so';
export const ntlsClientBin = join(repoRoot, 'dist/src/cli/ntls-client.js');

export const E2E_CONFIG = {
  hsm: { kdfCost: 1024, pinMinLength: 4 },
  localSocket: { enabled: true },
};

export interface ToolResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The command line, for failure messages. */
  command: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  input?: string | Buffer;
  timeoutMs?: number;
  uid?: number;
  gid?: number;
}

/** Runs a program to completion with a bounded time; a program that cannot start is an error. */
export function run(file: string, args: string[], options: RunOptions = {}): Promise<ToolResult> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const command = [file, ...args].map((a) => (/[\s;?&|]/.test(a) ? JSON.stringify(a) : a)).join(' ');
  return new Promise((resolve, reject) => {
    const spawnOptions: SpawnOptions = {
      env: { ...process.env, ...options.env },
      cwd: options.cwd,
      stdio: ['pipe', 'pipe', 'pipe'],
      uid: options.uid,
      gid: options.gid,
    };
    const child = spawn(file, args, spawnOptions);
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not finish in ${timeoutMs} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file} (is it installed? .ci/run installs it): ${error.message}`));
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(options.input ?? '');
    child.once('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr, command });
    });
  });
}

/** A readable failure message for expect(...).toBe(0). */
export function explain(r: ToolResult): string {
  return `${r.command}\nexit ${r.status}${r.signal ? ` (${r.signal})` : ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

export function mustSucceed(r: ToolResult): ToolResult {
  if (r.status !== 0) throw new Error(`command failed:\n${explain(r)}`);
  return r;
}

/** The environment that points p11-kit-client.so at a p11-kit server address (unix socket or |command). */
export function p11kitEnv(address: string): NodeJS.ProcessEnv {
  return { P11_KIT_SERVER_ADDRESS: address.startsWith('|') ? address : `unix:path=${address}` };
}

/** pkcs11-tool --module p11-kit-client.so, talking to `address` (a socket path or "|command"). */
export function pkcs11Tool(address: string, args: string[], options: RunOptions = {}): Promise<ToolResult> {
  return run('pkcs11-tool', ['--module', P11KIT_CLIENT, ...args], {
    ...options, env: { ...p11kitEnv(address), ...options.env },
  });
}

export function openssl(args: string[], options: RunOptions = {}): Promise<ToolResult> {
  return run('openssl', args, options);
}

export function tempDir(prefix = 'ntls-e2e-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startE2eDaemon(extra: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
  const home = makeHome({ ...E2E_CONFIG, ...extra });
  return startDaemon(home, env);
}

/** The daemon of an end-to-end suite on this backend: E2E_CONFIG, its hsm section (merged over `hsm`) and environment. */
export function startBackendDaemon(backend: TestBackend, hsm: Record<string, unknown> = E2E_CONFIG.hsm): Promise<Daemon> {
  return startE2eDaemon({ hsm: backend.hsmConfig(hsm) }, backend.env);
}

/** `ntls <args> --home H`, required to succeed. */
export async function admin(daemon: Daemon, ...args: string[]): Promise<ToolResult> {
  const r = await runNtls([...args, '--home', daemon.home]);
  return mustSucceed({ ...r, command: `ntls ${args.join(' ')} --home ${daemon.home}` });
}

export interface PartitionRow {
  slotId: number;
  serial: string;
  label: string;
  initialized: boolean;
  tokenObjects: number;
  sessions: number;
  connectedClients: string[];
}

export async function partitions(daemon: Daemon): Promise<PartitionRow[]> {
  return JSON.parse((await admin(daemon, 'partition', 'list', '--json')).stdout) as PartitionRow[];
}

export async function createPartition(daemon: Daemon, label: string): Promise<PartitionRow> {
  await admin(daemon, 'partition', 'create', '--label', label);
  const row = (await partitions(daemon)).find((p) => p.label === label);
  if (!row) throw new Error(`partition ${label} not listed after create`);
  return row;
}

/**
 * A partition of an end-to-end suite: created blank (uninitialised) on the software HSM; on
 * pkcs11 the SoftHSM2 token the backend mapped under this name (initialised by softhsm2-util).
 */
export async function backendPartition(daemon: Daemon, backend: TestBackend, label: string): Promise<PartitionRow> {
  if (backend.kind === 'software') return createPartition(daemon, label);
  await backend.createPartition(daemon.home, label);
  const row = (await partitions(daemon)).find((p) => p.label === label);
  if (!row) throw new Error(`partition ${label} not listed by the pkcs11 backend`);
  return row;
}

export interface ListedSlot {
  slot: string;
  description: string;
  serial: string | null;
  label: string | null;
}

/** The slots of `pkcs11-tool -L`: "Slot N (0x..): DESCRIPTION" and the token's serial and label under it. */
export function listedSlots(listing: string): ListedSlot[] {
  const slots: ListedSlot[] = [];
  for (const block of listing.split(/^(?=Slot \d+ \(0x[0-9a-f]+\): )/m)) {
    const head = /^Slot (\d+) \(0x[0-9a-f]+\): (.*?)\s*$/m.exec(block);
    if (!head) continue;
    slots.push({
      slot: head[1]!, description: head[2]!,
      serial: /^\s+serial num\s+: (.*?)\s*$/m.exec(block)?.[1] ?? null,
      label: /^\s+token label\s+: (.*?)\s*$/m.exec(block)?.[1] ?? null,
    });
  }
  return slots;
}

export interface ClientFiles {
  name: string;
  dir: string;
  cert: string;
  key: string;
}

/** `ntls-client create-cert --cn NAME --out DIR`. */
export async function createClientCert(name: string, dir: string): Promise<ClientFiles> {
  // A config folder of its own: the test runner's own (~/.config/ntls-client) is never written.
  mustSucceed(await run(process.execPath, [ntlsClientBin, 'create-cert', '--cn', name, '--out', dir, '--config-dir', join(dir, `.${name}-config`)]));
  const files = { name, dir, cert: join(dir, `${name}.pem`), key: join(dir, `${name}Key.pem`) };
  if (!existsSync(files.cert) || !existsSync(files.key)) throw new Error(`create-cert did not write ${files.cert} and ${files.key}`);
  return files;
}

/** Registers the client with the admin CLI and assigns it the partitions (label or serial). */
export async function registerClient(daemon: Daemon, client: ClientFiles, ...partitionIds: string[]): Promise<void> {
  await admin(daemon, 'client', 'register', '-c', client.name, '--cert', client.cert, '--hostname', '127.0.0.1');
  for (const p of partitionIds) await admin(daemon, 'client', 'assign-partition', '-c', client.name, '-p', p);
}

/** The arguments of `ntls-client p11-relay` for this client and daemon (without --listen). */
export function relayArgs(daemon: Daemon, client: ClientFiles): string[] {
  return [
    ntlsClientBin, 'p11-relay', '--server', `127.0.0.1:${daemon.port}`,
    '--server-cert', join(daemon.home, 'server', 'server.pem'),
    '--cert', client.cert, '--key', client.key, '--name', client.name,
  ];
}

/** The exec transport p11-kit understands: `|node ntls-client.js p11-relay ...`. */
export function relayCommand(daemon: Daemon, client: ClientFiles): string {
  return `|${[process.execPath, ...relayArgs(daemon, client)].join(' ')}`;
}

export class Relay {
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;

  constructor(readonly socketPath: string, readonly child: ChildProcess) {
    child.stdout!.on('data', (d) => (this.stdout += d));
    child.stderr!.on('data', (d) => (this.stderr += d));
    this.exited = new Promise((r) => {
      if (child.exitCode !== null || child.signalCode !== null) r({ status: child.exitCode, signal: child.signalCode });
      else child.once('exit', (status, signal) => r({ status, signal }));
    });
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /**
   * Waits (bounded) until the relay listens on its socket; throws with its output if it does not.
   * The relay's socket file appears only once it accepts (test/local-socket), so the file is enough.
   */
  async listening(timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(this.socketPath) && this.running && Date.now() < deadline) await sleep(20);
    if (existsSync(this.socketPath) && this.running) return;
    const exited = !this.running;
    await this.stop();
    throw new Error(`relay ${exited ? 'exited before listening' : `did not listen on ${this.socketPath} within ${timeoutMs} ms`}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
  }

  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(timer);
  }
}

/** `ntls-client p11-relay --listen SOCKET`, waiting (bounded) until the socket exists. */
export async function startRelay(daemon: Daemon, client: ClientFiles, socketPath: string, timeoutMs = 15_000): Promise<Relay> {
  const child = spawn(process.execPath, [...relayArgs(daemon, client), '--listen', socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  const relay = new Relay(socketPath, child);
  await relay.listening(timeoutMs);
  return relay;
}

/** An openssl config loading the pkcs11 engine on p11-kit-client.so (or on `module`). */
export function writeEngineConfig(dir: string, extra = '', module = P11KIT_CLIENT): string {
  const file = join(dir, 'openssl-pkcs11.cnf');
  writeFileSync(file, [
    'openssl_conf = openssl_init',
    '[openssl_init]',
    'engines = engine_section',
    '[engine_section]',
    'pkcs11 = pkcs11_section',
    '[pkcs11_section]',
    'engine_id = pkcs11',
    `dynamic_path = ${PKCS11_ENGINE}`,
    `MODULE_PATH = ${module}`,
    extra,
    'init = 0',
    '',
  ].join('\n'));
  return file;
}

export function read(file: string): Buffer {
  return readFileSync(file);
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/**
 * pkcs11-tool reading its input from stdin, kept open: the tool opens its session, logs in and
 * then waits for the data, so the session stays live until `finish` writes the input.
 */
export interface HeldTool {
  child: ChildProcess;
  stderrSoFar(): string;
  finish(input: string | Buffer, timeoutMs?: number): Promise<ToolResult>;
}

export function holdPkcs11Tool(address: string, args: string[], options: RunOptions = {}): HeldTool {
  const command = ['pkcs11-tool', '--module', P11KIT_CLIENT, ...args].join(' ');
  const child = spawn('pkcs11-tool', ['--module', P11KIT_CLIENT, ...args], {
    env: { ...process.env, ...p11kitEnv(address), ...options.env }, cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  child.stdin.on('error', () => undefined);
  const closed = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('close', (status, signal) => resolve({ status, signal }));
    child.once('error', (error) => { stderr += `cannot run pkcs11-tool: ${error.message}`; resolve({ status: -1, signal: null }); });
  });
  // Never leave it behind: bounded even if finish is never called.
  const guard = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  guard.unref();
  return {
    child,
    stderrSoFar: () => stderr,
    async finish(input, timeoutMs = 20_000) {
      child.stdin.end(input);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const { status, signal } = await closed;
      clearTimeout(timer);
      clearTimeout(guard);
      return { status, signal, stdout, stderr, command };
    },
  };
}

/** Polls `check` (bounded) until it returns true. */
export async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}
