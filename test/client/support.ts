// A daemon in a temporary home and client config folders beside it, driven through the real
// `ntls` and `ntls-client` programs (dist/, built by `npm test`'s pretest).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { NtlsClient } from '../../src/client/ntls-client.js';
import { CKU } from '../../src/pkcs11/constants.js';
import { makeHome, repoRoot, runNtls, startDaemon, type Daemon, type RunResult } from '../support/daemon.js';

export const clientBin = join(repoRoot, 'dist/src/cli/ntls-client.js');

export const SO_PIN = 'so-pin-1';
export const CO_PIN = 'co-pin-1';

/** A home with fast PIN derivation and no idle timeout. */
export function clientTestHome(extra: Record<string, unknown> = {}): string {
  return makeHome({ hsm: { kdfCost: 1024, pinMinLength: 4 }, datapath: { receiveTimeout: 0 }, ...extra });
}

export function runClient(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30_000, input?: Buffer): Promise<RunResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [clientBin, ...args], { env: { ...process.env, NTLS_PIN: '', ...env }, stdio: [input ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    if (input) child.stdin!.end(input);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ntls-client ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('exit', (status, signal) => {
      clearTimeout(timer);
      resolveRun({ status, signal, stdout, stderr });
    });
  });
}

/** A client host: its own config folder, and `ntls-client` run against it. */
export class ClientHost {
  readonly folder: string;

  constructor(readonly name: string) {
    this.folder = mkdtempSync(join(tmpdir(), `ntls-client-${name}-`));
  }

  run(...args: string[]): Promise<RunResult> {
    return runClient([...args, '--config-dir', this.folder]);
  }

  runWith(env: NodeJS.ProcessEnv, ...args: string[]): Promise<RunResult> {
    return runClient([...args, '--config-dir', this.folder], env);
  }

  get certificateFile(): string {
    return join(this.folder, `${this.name}.pem`);
  }

  library(): NtlsClient {
    return NtlsClient.fromConfig({ folder: this.folder });
  }

  remove(): void {
    rmSync(this.folder, { recursive: true, force: true });
  }
}

export function expectOk(result: RunResult): RunResult {
  if (result.status !== 0) throw new Error(`exit ${result.status}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
  return result;
}

/** Failed with one line on stderr naming `code`. */
export function expectOneLineFailure(result: RunResult, code: string): string {
  expect(result.status, result.stdout + result.stderr).not.toBe(0);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^ntls-client: /);
  expect(lines[0]).toContain(`[${code}]`);
  // The code is said once, at the end (it was in the text as well: "no such slot (CKR_SLOT_ID_INVALID); ... [CKR_SLOT_ID_INVALID]").
  expect(lines[0]!.split(code).length - 1, lines[0]).toBe(1);
  return lines[0]!;
}

export interface Setup {
  home: string;
  daemon: Daemon;
  alice: ClientHost;
}

/** Daemon up; client alice made with create-cert, registered, given `default`, server added. */
export async function setUp(): Promise<Setup> {
  const home = clientTestHome();
  const daemon = await startDaemon(home);
  const alice = new ClientHost('alice');
  expectOk(await alice.run('create-cert', '--cn', 'alice'));
  expectOk(await runNtls(['client', 'register', '-c', 'alice', '--cert', alice.certificateFile, '--hostname', '127.0.0.1', '--home', home]));
  expectOk(await runNtls(['client', 'assign-partition', '-c', 'alice', '-p', 'default', '--home', home]));
  expectOk(await alice.run('add-server', '--host', '127.0.0.1', '--port', String(daemon.port), '--cert', join(home, 'server', 'server.pem'), '--name', 'local'));
  return { home, daemon, alice };
}

/** Initialises slot 0 as pkcs11-tool does: C_InitToken with the SO PIN, then C_InitPIN as SO. */
export async function initialiseSlot(host: ClientHost, slot = 0, label = 'default'): Promise<void> {
  const client = host.library();
  try {
    const p11 = client.server();
    await p11.initToken(slot, SO_PIN, label);
    const session = await p11.openSession(slot);
    await p11.login(session, CKU.SO, SO_PIN);
    await p11.initPin(session, CO_PIN);
    await p11.logout(session);
    await p11.closeSession(session);
  } finally {
    await client.close();
  }
}

/** Starts `ntls-client p11-relay ARGS` and waits for its "relaying" line (bounded). */
export async function startRelay(args: string[]): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, [clientBin, 'p11-relay', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let said = '';
  child.stderr.on('data', (d) => (said += d));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay did not start: ${said}`)), 20_000);
    const check = () => {
      if (said.includes('relaying')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited ${code}: ${said}`));
    });
  });
  return { child, stderr: () => said };
}
