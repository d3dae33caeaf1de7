// Capture of real p11-kit RPC traffic: a unix-socket relay between p11-kit-client.so (driven by
// pkcs11-tool) and `p11-kit server` fronting SoftHSM2, recording the version bytes and every
// frame in both directions. It splits frames with its own few lines, not with the codec under
// test. Used by the live test and, through `main`, to (re)write the committed fixtures:
//
//   NTLS_P11KIT_CAPTURE=write npx vite-node test/protocol/p11kit/capture/capture.ts   # rewrite fixtures
//
// Debian packages relied on: p11-kit (p11-kit server), p11-kit-modules (p11-kit-client.so),
// opensc (pkcs11-tool), softhsm2 (libsofthsm2.so, softhsm2-util).

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitForUnixListener } from '../../../support/unix-socket.js';

export const P11KIT_CLIENT_MODULE = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
export const PIN = '1234';
export const SO_PIN = '1234';

export interface RawFrame {
  code: number;
  options: string; // hex
  body: string; // hex
}

export interface Exchange {
  request: RawFrame;
  response: RawFrame | null;
}

export interface CapturedSession {
  clientVersion: number | null;
  serverVersion: number | null;
  exchanges: Exchange[];
}

/** Splits one direction of a connection: a version byte, then frames. */
class DirectionSplitter {
  version: number | null = null;
  private buf = Buffer.alloc(0);
  constructor(private readonly onFrame: (f: RawFrame) => void) {}

  push(chunk: Buffer): void {
    this.buf = Buffer.concat([this.buf, chunk]);
    if (this.version === null && this.buf.length > 0) {
      this.version = this.buf[0]!;
      this.buf = this.buf.subarray(1);
    }
    while (this.buf.length >= 12) {
      const olen = this.buf.readUInt32BE(4);
      const blen = this.buf.readUInt32BE(8);
      if (this.buf.length < 12 + olen + blen) break;
      this.onFrame({
        code: this.buf.readUInt32BE(0),
        options: this.buf.subarray(12, 12 + olen).toString('hex'),
        body: this.buf.subarray(12 + olen, 12 + olen + blen).toString('hex'),
      });
      this.buf = this.buf.subarray(12 + olen + blen);
    }
  }
}

export interface Relay {
  socketPath: string;
  sessions: CapturedSession[];
  close(): Promise<void>;
}

export function startRelay(listenPath: string, upstreamPath: string): Promise<Relay> {
  const sessions: CapturedSession[] = [];
  const server = net.createServer((client) => {
    const session: CapturedSession = { clientVersion: null, serverVersion: null, exchanges: [] };
    sessions.push(session);
    const upstream = net.createConnection(upstreamPath);
    const pending: Exchange[] = [];
    const fromClient = new DirectionSplitter((f) => {
      const ex: Exchange = { request: f, response: null };
      session.exchanges.push(ex);
      pending.push(ex);
    });
    const fromServer = new DirectionSplitter((f) => {
      const ex = pending.shift();
      if (ex) ex.response = f;
    });
    client.on('data', (d) => {
      fromClient.push(d);
      session.clientVersion = fromClient.version;
      upstream.write(d);
    });
    upstream.on('data', (d) => {
      fromServer.push(d);
      session.serverVersion = fromServer.version;
      client.write(d);
    });
    client.on('close', () => upstream.end());
    upstream.on('close', () => client.end());
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPath, () => {
      resolve({
        socketPath: listenPath,
        sessions,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

export interface SoftHsmServer {
  dir: string;
  socketPath: string;
  env: NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

/** Whether the real tools are installed (the live test skips without them). */
export function toolsAvailable(): boolean {
  return existsSync(P11KIT_CLIENT_MODULE) && existsSync(SOFTHSM_MODULE) &&
    spawnSync('p11-kit', ['--help']).status !== null && spawnSync('pkcs11-tool', ['--help']).status !== null &&
    spawnSync('softhsm2-util', ['--help']).status !== null;
}

/** A fresh SoftHSM2 with one initialised token "t" (PINs 1234), served by `p11-kit server`. */
export async function startSoftHsmServer(): Promise<SoftHsmServer> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ntls-p11kit-'));
  mkdirSync(path.join(dir, 'tokens'));
  writeFileSync(path.join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { ...process.env, SOFTHSM2_CONF: path.join(dir, 'softhsm2.conf') };
  const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', 't', '--so-pin', SO_PIN, '--pin', PIN], { env });
  if (init.status !== 0) throw new Error(`softhsm2-util failed: ${init.stderr.toString()}`);
  const socketPath = path.join(dir, 'p11kit.sock');
  const child = spawn('p11-kit', ['server', '--provider', SOFTHSM_MODULE, '-f', '-n', socketPath, 'pkcs11:'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (!(await waitForUnixListener(socketPath, () => child.exitCode === null, 5000))) {
    child.kill();
    throw new Error('p11-kit server did not listen on its socket');
  }
  return {
    dir,
    socketPath,
    env,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs pkcs11-tool through p11-kit-client.so against the socket at `socketPath`. */
export function runPkcs11Tool(socketPath: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('pkcs11-tool', ['--module', P11KIT_CLIENT_MODULE, ...args], {
      cwd,
      env: { ...env, P11_KIT_SERVER_ADDRESS: `unix:path=${socketPath}` },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

export interface Scenario {
  name: string;
  args: string[];
  /** Expected pkcs11-tool exit status (wrong-PIN scenarios fail on purpose). */
  status?: number;
}

// Run in order against one token: later scenarios use keys made by earlier ones.
export const SCENARIOS: Scenario[] = [
  { name: 'list-slots', args: ['-L'] },
  { name: 'info', args: ['-I'] },
  { name: 'list-token-slots', args: ['-T'] },
  { name: 'list-mechanisms', args: ['-M'] },
  { name: 'login-wrong-pin', args: ['--login', '--pin', '9999', '-O'], status: 1 },
  { name: 'keygen-rsa', args: ['--login', '--pin', PIN, '--keypairgen', '--key-type', 'rsa:2048', '--id', '01', '--label', 'rsa1', '--usage-sign', '--usage-decrypt'] },
  { name: 'keygen-ec', args: ['--login', '--pin', PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--id', '02', '--label', 'ec1'] },
  { name: 'keygen-aes', args: ['--login', '--pin', PIN, '--keygen', '--key-type', 'AES:32', '--id', '03', '--label', 'aes1', '--usage-decrypt'] },
  { name: 'list-objects', args: ['--login', '--pin', PIN, '-O'] },
  { name: 'sign-rsa-pkcs', args: ['--login', '--pin', PIN, '--sign', '-m', 'SHA256-RSA-PKCS', '--id', '01', '-i', 'data.bin', '-o', 'sig.bin'] },
  { name: 'sign-rsa-pss', args: ['--login', '--pin', PIN, '--sign', '-m', 'RSA-PKCS-PSS', '--hash-algorithm', 'SHA256', '--mgf', 'MGF1-SHA256', '--id', '01', '-i', 'digest.bin', '-o', 'pss.bin'] },
  { name: 'sign-ecdsa', args: ['--login', '--pin', PIN, '--sign', '-m', 'ECDSA', '--id', '02', '-i', 'digest.bin', '-o', 'ecsig.bin'] },
  { name: 'verify-rsa-pkcs', args: ['--verify', '-m', 'SHA256-RSA-PKCS', '--id', '01', '-i', 'data.bin', '--signature-file', 'sig.bin'] },
  // SoftHSM refuses OAEP with SHA-256 at C_DecryptInit (an ERROR answer worth having); with
  // SHA-1 the init succeeds and C_Decrypt fails on data that is no ciphertext.
  { name: 'decrypt-rsa-oaep-sha256', args: ['--login', '--pin', PIN, '--decrypt', '-m', 'RSA-PKCS-OAEP', '--hash-algorithm', 'SHA256', '--mgf', 'MGF1-SHA256', '--id', '01', '-i', 'rsa256.bin'], status: 1 },
  { name: 'decrypt-rsa-oaep-sha1', args: ['--login', '--pin', PIN, '--decrypt', '-m', 'RSA-PKCS-OAEP', '--hash-algorithm', 'SHA-1', '--mgf', 'MGF1-SHA1', '--id', '01', '-i', 'rsa256.bin'], status: 1 },
  { name: 'encrypt-aes-ecb', args: ['--login', '--pin', PIN, '--encrypt', '-m', 'AES-ECB', '--id', '03', '-i', 'block.bin', '-o', 'block.enc'] },
  { name: 'hash-sha256', args: ['--hash', '-m', 'SHA256', '-i', 'data.bin', '-o', 'hash.bin'] },
  { name: 'generate-random', args: ['--generate-random', '32', '-o', 'random.bin'] },
  { name: 'read-pubkey', args: ['--read-object', '--type', 'pubkey', '--id', '01', '-o', 'pub.der'] },
  { name: 'delete-ec-privkey', args: ['--login', '--pin', PIN, '--delete-object', '--type', 'privkey', '--id', '02'] },
  { name: 'init-token-slot2', args: ['--slot-index', '1', '--init-token', '--label', 'second', '--so-pin', SO_PIN] },
  { name: 'init-pin-slot2', args: ['--slot-index', '1', '--login', '--login-type', 'so', '--so-pin', SO_PIN, '--init-pin', '--pin', '5678'] },
  { name: 'change-pin-slot2', args: ['--slot-index', '1', '--login', '--pin', '5678', '--change-pin', '--new-pin', '8765'] },
];

export interface ScenarioCapture {
  scenario: string;
  args: string[];
  status: number | null;
  sessions: CapturedSession[];
}

/** Runs all scenarios through a relay in front of a fresh SoftHSM-backed p11-kit server. */
export async function captureAll(scenarios: Scenario[] = SCENARIOS): Promise<ScenarioCapture[]> {
  const hsm = await startSoftHsmServer();
  const work = path.join(hsm.dir, 'work');
  mkdirSync(work);
  writeFileSync(path.join(work, 'data.bin'), 'ntls p11-kit capture\n');
  writeFileSync(path.join(work, 'digest.bin'), Buffer.alloc(32, 0x5a));
  writeFileSync(path.join(work, 'block.bin'), Buffer.alloc(32, 0xa5));
  writeFileSync(path.join(work, 'rsa256.bin'), Buffer.alloc(256, 0x33));
  const out: ScenarioCapture[] = [];
  try {
    for (const s of scenarios) {
      const relay = await startRelay(path.join(hsm.dir, `relay-${s.name}.sock`), hsm.socketPath);
      const r = await runPkcs11Tool(relay.socketPath, s.args, work, hsm.env);
      await new Promise((res) => setTimeout(res, 50));
      await relay.close();
      out.push({ scenario: s.name, args: s.args, status: r.status, sessions: relay.sessions });
    }
  } finally {
    await hsm.stop();
  }
  return out;
}

async function main(): Promise<void> {
  const fixtures = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'fixtures');
  mkdirSync(fixtures, { recursive: true });
  const captures = await captureAll();
  for (const c of captures) {
    const file = path.join(fixtures, `${c.scenario}.json`);
    writeFileSync(file, JSON.stringify({ source: 'pkcs11-tool (opensc 0.23.0) -> p11-kit-client.so 0.24.1 -> p11-kit server 0.24.1 -> SoftHSM 2.6.1', ...c }, null, 1) + '\n');
    const n = c.sessions.reduce((a, s) => a + s.exchanges.length, 0);
    console.log(`${c.scenario}: status ${c.status}, ${c.sessions.length} session(s), ${n} exchanges -> ${path.relative(process.cwd(), file)}`);
  }
}

if (process.env.NTLS_P11KIT_CAPTURE === 'write') {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
