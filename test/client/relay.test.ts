// `ntls-client p11-relay` on stdin/stdout, set up from client.json (server by name) or from
// flags: what p11-kit's client module writes goes to ntls and back.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameReader } from '../../src/protocol/frame.js';
import { decodeResponse, encodeRequest, outputRequest, request, serializeFrame } from '../../src/protocol/p11kit/index.js';
import { removeHome, runNtls } from '../support/daemon.js';
import { CO_PIN, ClientHost, clientBin, expectOk, initialiseSlot, setUp, startRelay, type Setup } from './support.js';

let s: Setup;

beforeAll(async () => {
  s = await setUp();
});
afterAll(async () => {
  await s?.daemon.stop();
  if (s) removeHome(s.home);
  s?.alice.remove();
});

/** Speaks p11-kit's side through a relay process: version byte, then C_GetSlotList. */
async function slotsThroughRelay(args: string[]): Promise<number[]> {
  const child = spawn(process.execPath, [clientBin, 'p11-relay', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  try {
    const reader = new FrameReader(1 << 20);
    let version: number | null = null;
    const answer = new Promise<Buffer>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        reader.push(chunk);
        version ??= reader.takeByte();
        const frame = reader.next();
        if (frame) resolve(frame.body);
      });
      child.once('exit', (code) => reject(new Error(`relay exited ${code}: ${stderr}`)));
    });
    child.stdin.write(Buffer.from([0]));
    const body = encodeRequest(request('C_GetSlotList', { tokenPresent: 1, slotList: outputRequest(16) }), { version: 0 });
    if (!body.ok) throw body.error;
    child.stdin.write(serializeFrame({ callCode: 16, options: Buffer.from('client'), body: body.value }));
    const decoded = decodeResponse(await answer, 'C_GetSlotList', { version: 0 });
    expect(version).toBe(0);
    if (!decoded.ok || decoded.value.call !== 'C_GetSlotList') throw new Error('bad answer');
    return decoded.value.args.slotList as number[];
  } finally {
    child.stdin.end();
    child.kill();
  }
}

describe('p11-relay', () => {
  it('from client.json, the server named', async () => {
    expect(await slotsThroughRelay(['--server', 'local', '--config-dir', s.alice.folder])).toEqual([0]);
  });

  it('from flags, as before', async () => {
    expect(await slotsThroughRelay([
      '--server', `127.0.0.1:${s.daemon.port}`, '--server-cert', join(s.home, 'server', 'server.pem'),
      '--cert', join(s.alice.folder, 'alice.pem'), '--key', join(s.alice.folder, 'aliceKey.pem'), '--name', 'alice',
    ])).toEqual([0]);
  });
});

const P11KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
const haveTools = existsSync(P11KIT_CLIENT) && spawnSync('pkcs11-tool', ['--help']).error === undefined;

it('the stock tools are installed (CI installs p11-kit-modules and opensc)', () => {
  expect(haveTools).toBe(true);
});

describe('p11-relay --listen from client.json, with stock pkcs11-tool', () => {
  it('lists the slot and logs in through p11-kit-client.so', async () => {
    await initialiseSlot(s.alice);
    const socket = join(s.alice.folder, 'relay.sock');
    const relay = (await startRelay(['--listen', socket, '--config-dir', s.alice.folder])).child;
    try {
      const env = { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${socket}` };
      const list = spawnSync('pkcs11-tool', ['--module', P11KIT_CLIENT, '-L'], { env, encoding: 'utf8', timeout: 20_000 });
      expect(list.stdout).toMatch(/token label\s*:\s*default/);
      const login = spawnSync('pkcs11-tool', ['--module', P11KIT_CLIENT, '--login', '--pin', CO_PIN, '-O'], { env, encoding: 'utf8', timeout: 20_000 });
      expect(login.status, login.stderr).toBe(0);
    } finally {
      relay.kill('SIGTERM');
    }
  });
});

describe('a client that links but has no partition', () => {
  let bob: ClientHost;
  beforeAll(async () => {
    bob = new ClientHost('bob');
    expectOk(await bob.run('create-cert', '--cn', 'bob'));
    expectOk(await runNtls(['client', 'register', '-c', 'bob', '--cert', bob.certificateFile, '--hostname', '127.0.0.1', '--home', s.home]));
    expectOk(await bob.run('add-server', '--host', '127.0.0.1', '--port', String(s.daemon.port), '--cert', join(s.home, 'server', 'server.pem'), '--name', 'local'));
  });
  afterAll(() => bob?.remove());

  const hint = /^ntls-client: 127\.0\.0\.1:\d+ lists no slot for client bob: no partition is assigned to it; ask its administrator to run `ntls client assign-partition --client bob --partition NAME`$/m;

  it('pkcs11-tool -L through the relay it starts: "No slots" and one line saying why', () => {
    const env = { ...process.env, P11_KIT_SERVER_ADDRESS: `|${process.execPath} ${clientBin} p11-relay --server local --config-dir ${bob.folder}` };
    const list = spawnSync('pkcs11-tool', ['--module', P11KIT_CLIENT, '-L'], { env, encoding: 'utf8', timeout: 20_000 });
    expect(list.stdout + list.stderr).toMatch(/No slots/i);
    expect(list.stderr).toMatch(hint);
    expect(list.stderr.match(new RegExp(hint.source, 'gm'))).toHaveLength(1);
  });

  it('a --listen relay without read-ahead says it on its own stderr, once a minute, and nothing for a client with a partition', async () => {
    const socket = join(bob.folder, 'relay.sock');
    const relay = await startRelay(['--listen', socket, '--no-read-ahead', '--config-dir', bob.folder]);
    try {
      const env = { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${socket}` };
      spawnSync('pkcs11-tool', ['--module', P11KIT_CLIENT, '-L'], { env, encoding: 'utf8', timeout: 20_000 });
      for (let i = 0; i < 100 && !hint.test(relay.stderr()); i++) await new Promise((r) => setTimeout(r, 50));
      expect(relay.stderr()).toMatch(hint);
      // The relay serves every program of the host: the next ones within a minute add no line.
      for (let i = 0; i < 2; i++) spawnSync('pkcs11-tool', ['--module', P11KIT_CLIENT, '-L'], { env, encoding: 'utf8', timeout: 20_000 });
      await new Promise((r) => setTimeout(r, 300));
      expect(relay.stderr().match(/lists no slot/g)).toHaveLength(1);
    } finally {
      relay.child.kill('SIGTERM');
    }
    const aliceEnv = { ...process.env, P11_KIT_SERVER_ADDRESS: `|${process.execPath} ${clientBin} p11-relay --server local --config-dir ${s.alice.folder}` };
    const list = spawnSync('pkcs11-tool', ['--module', P11KIT_CLIENT, '-L'], { env: aliceEnv, encoding: 'utf8', timeout: 20_000 });
    expect(list.stdout).toMatch(/token label/);
    expect(list.stderr).not.toMatch(/lists no slot/);
  });
});
