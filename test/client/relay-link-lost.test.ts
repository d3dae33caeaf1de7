// A link lost under a stock program (p11-kit-client.so through `ntls-client p11-relay --listen`):
// the program's calls answer CKR_DEVICE_ERROR and it lives on. Before, the relay closed the
// program's socket, and p11-kit's client, which writes without MSG_NOSIGNAL, died of SIGPIPE at
// its next call (exit 141).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ntlsClientBin, waitFor } from '../support/e2e.js';
import { buildModuleCheck, moduleWorld, P11KIT_CLIENT, PIN, type ModuleWorld } from '../module/support.js';

let world: ModuleWorld;
let check: string;

beforeAll(async () => {
  world = await moduleWorld('gina', { initialize: true });
  check = await buildModuleCheck(join(world.work, 'bin'));
});
afterAll(async () => {
  await world?.close();
});

/** `ntls-client p11-relay --listen` on the world's client.json, its stderr kept. */
async function listeningRelay(socket: string): Promise<{ child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, [ntlsClientBin, 'p11-relay', '--listen', socket, '--config-dir', world.folder], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(`the relay on ${socket} (stderr: ${stderr})`, () => stderr.includes('relaying'), 15_000);
  return { child, stderr: () => stderr };
}

/**
 * module-check until-error on p11-kit-client.so: signs until a call fails, then prints that
 * call's rv, the next call's and C_Finalize's. `interrupt` runs once the first signature is made.
 */
async function signUntilError(socket: string, interrupt: () => Promise<void> | void): Promise<{ out: string; status: number | null; signal: string | null }> {
  return signUntilErrorAt(`unix:path=${socket}`, interrupt);
}

/** The same, with P11_KIT_SERVER_ADDRESS as given (`|command` runs the relay on the program's pipes). */
async function signUntilErrorAt(address: string, interrupt: () => Promise<void> | void): Promise<{ out: string; status: number | null; signal: string | null }> {
  const child = spawn(check, [P11KIT_CLIENT, 'until-error', '0', PIN, '90'], {
    env: { ...process.env, P11_KIT_SERVER_ADDRESS: address }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const closed = new Promise<{ status: number | null; signal: string | null }>((r) => child.once('close', (status, signal) => r({ status, signal })));
  // Killed well within the test's own bound, so that a hang fails with the program's output.
  const guard = setTimeout(() => child.kill('SIGKILL'), 45_000);
  try {
    await waitFor(`the first signature (output: ${out})`, () => out.includes('ready'), 30_000);
    await interrupt();
    // Read `out` only once the program has closed: `{ out, ...(await closed) }` took it before.
    const ended = await closed;
    return { out, ...ended };
  } finally {
    clearTimeout(guard);
  }
}

const value = (out: string, name: string) => new RegExp(`^${name}=(\\S+)`, 'm').exec(out)?.[1];

describe('the link ends under a program signing through p11-kit-client.so', () => {
  it('the server answers nothing (paused) for the receive timeout: the calls answer CKR_DEVICE_ERROR, the program lives on', async () => {
    const config = join(world.folder, 'client.json');
    const original = readFileSync(config, 'utf8');
    writeFileSync(config, JSON.stringify({ ...JSON.parse(original) as object, receiveTimeout: 2 }, null, 2));
    const socket = join(world.work, 'paused.sock');
    const relay = await listeningRelay(socket);
    const daemon = world.daemon.child;
    try {
      const r = await signUntilError(socket, async () => {
        daemon.kill('SIGSTOP');
        await waitFor('the relay giving the link up', () => relay.stderr().includes('answered nothing'), 30_000);
        daemon.kill('SIGCONT');
      });
      expect(r.signal, r.out).toBe(null);
      expect(r.status, r.out).toBe(0);
      expect(value(r.out, 'failed'), r.out).toBe('CKR_DEVICE_ERROR');
      expect(value(r.out, 'next'), r.out).toBe('CKR_DEVICE_ERROR');
      expect(relay.stderr()).toMatch(/^ntls-client: the link to 127\.0\.0\.1:\d+ answered nothing within 2 s; the program's calls answer CKR_DEVICE_ERROR until it initialises again/m);
      // The program's next start links anew through the same relay.
      const again = spawnSync(check, [P11KIT_CLIENT, 'sign-loop', '0', PIN, '1'], {
        env: { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${socket}` }, encoding: 'utf8', timeout: 60_000,
      });
      expect(again.status, again.stdout + again.stderr).toBe(0);
    } finally {
      daemon.kill('SIGCONT');
      relay.child.kill('SIGTERM');
      writeFileSync(config, original);
    }
  });

  it('the relay p11-kit-client.so starts on its pipes (remote: |ntls-client p11-relay) does the same, and says so on the program\'s stderr', async () => {
    const config = join(world.folder, 'client.json');
    const original = readFileSync(config, 'utf8');
    writeFileSync(config, JSON.stringify({ ...JSON.parse(original) as object, receiveTimeout: 2 }, null, 2));
    const daemon = world.daemon.child;
    try {
      const r = await signUntilErrorAt(`|${process.execPath} ${ntlsClientBin} p11-relay --config-dir ${world.folder}`, async () => {
        daemon.kill('SIGSTOP');
        await new Promise((resolve) => setTimeout(resolve, 3000));
        daemon.kill('SIGCONT');
      });
      expect(r.signal, r.out).toBe(null);
      expect(r.status, r.out).toBe(0);
      expect(value(r.out, 'failed'), r.out).toBe('CKR_DEVICE_ERROR');
      expect(r.out).toMatch(/^ntls-client: the link to 127\.0\.0\.1:\d+ answered nothing within 2 s/m);
    } finally {
      daemon.kill('SIGCONT');
      writeFileSync(config, original);
    }
  });

  it('the server goes (killed): the call under way and the next answer CKR_DEVICE_ERROR at once, C_Finalize returns, no SIGPIPE', { timeout: 90_000 }, async () => {
    const socket = join(world.work, 'stopped.sock');
    const relay = await listeningRelay(socket);
    try {
      // SIGKILL: the kernel closes the link at once, whatever the daemon was doing.
      const r = await signUntilError(socket, async () => {
        await world.daemon.stop('SIGKILL');
      });
      expect(r.signal, r.out).toBe(null);
      expect(r.status, r.out).toBe(0);
      expect(value(r.out, 'failed'), r.out).toBe('CKR_DEVICE_ERROR');
      expect(value(r.out, 'next'), r.out).toBe('CKR_DEVICE_ERROR');
      expect(value(r.out, 'finalize'), r.out).toBeDefined();
      expect(relay.stderr()).toMatch(/^ntls-client: the link to 127\.0\.0\.1:\d+ ended; the program's calls answer CKR_DEVICE_ERROR until it initialises again/m);
    } finally {
      relay.child.kill('SIGTERM');
    }
  });
});
