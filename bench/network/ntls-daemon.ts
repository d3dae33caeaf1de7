// The real ntls daemon (built dist/) in a temporary home on a loopback port, set up as an
// operator would: a partition, a registered client assigned to it, the user PIN set through
// the wire. The partition is made by ntls (the built-in software HSM), or is a PKCS#11 module's
// token mapped in the hsm configuration passed in (backend pkcs11). Every wait is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createSelfSignedCertificate, type CertificateAndKey } from '../../src/certificates/self-signed.js';
import { openLink } from '../../src/client/link.js';
import { CKF, CKU } from '../../src/pkcs11/constants.js';
import { request } from '../../src/protocol/p11kit/index.js';
import { linkChannel, ok, unixSocketChannel, type RpcChannel } from './rpc-channel.js';
import { initialize } from './token.js';

// dist/bench/network/ntls-daemon.js → dist/src/cli/ntls.js
const ntlsBin = fileURLToPath(new URL('../../src/cli/ntls.js', import.meta.url));
const ntlsClientBin = fileURLToPath(new URL('../../src/cli/ntls-client.js', import.meta.url));

const CLIENT = 'bench-client';
/** The partition the bench client is assigned; with backend pkcs11, map a token to this name. */
export const NTLS_PARTITION = 'bench';
/** The partition's SO PIN; with backend pkcs11, the mapped token's. */
export const NTLS_SO_PIN = 'bench-so-pin';
export const NTLS_USER_PIN = 'bench-user-pin';

export interface NtlsDaemonOptions {
  /** Also serve the p11-kit protocol on the home's unix socket (no TLS), for comparison. */
  localSocket?: boolean;
  /**
   * Merged over the bench's hsm configuration. With `backend: 'pkcs11'` the partition is the
   * module token mapped to NTLS_PARTITION (SO PIN NTLS_SO_PIN): ntls does not create it.
   */
  hsm?: Record<string, unknown>;
  /** Added to the environment of the daemon (its module hosts inherit it) and of its CLI runs. */
  env?: NodeJS.ProcessEnv;
}

function run(args: string[], env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [ntlsBin, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (status) => {
      clearTimeout(timer);
      if (status === 0) resolve(output);
      else reject(new Error(`ntls ${args.join(' ')} exited ${status}: ${output}`));
    });
  });
}

export class NtlsDaemon {
  private constructor(readonly home: string, private readonly child: ChildProcess, readonly port: number, private readonly client: CertificateAndKey) {}

  static async start(options: NtlsDaemonOptions = {}): Promise<NtlsDaemon> {
    const home = mkdtempSync(join(tmpdir(), 'ntls-bench-'));
    // BENCH_DAEMON_THREADPOOL=N: the daemon's libuv thread pool alone (UV_THREADPOOL_SIZE), not this process's.
    const pool = process.env.BENCH_DAEMON_THREADPOOL ? { UV_THREADPOOL_SIZE: process.env.BENCH_DAEMON_THREADPOOL } : {};
    const env = { ...process.env, ...pool, ...options.env };
    const mappedToken = options.hsm?.backend === 'pkcs11';
    writeFileSync(join(home, 'ntls.json'), JSON.stringify({
      server: { bind: '127.0.0.1', port: 0 },
      hsm: { kdfCost: 1024, pinMinLength: 4, ...options.hsm },
      datapath: { receiveTimeout: 0, maxPendingPerAddress: 128 },
      log: { debug: false },
      ...(options.localSocket ? { localSocket: { enabled: true, path: 'p11kit.sock' } } : {}),
    }, null, 2));
    // BENCH_DAEMON_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the daemon under load.
    const nodeArgs = (process.env.BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, ntlsBin, 'start', '--home', home, '--quiet'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const port = await new Promise<number>((resolve, reject) => {
      let output = '';
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`ntls did not come online in 30 s: ${output}`)); }, 30_000);
      const onOutput = (d: Buffer) => {
        output += d.toString();
        const match = /online on (\S+):(\d+)/.exec(output);
        if (match) {
          clearTimeout(timer);
          child.stdout.off('data', onOutput);
          resolve(Number(match[2]));
        }
      };
      child.stdout.on('data', onOutput);
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.once('exit', (status) => { clearTimeout(timer); reject(new Error(`ntls exited ${status} before coming online: ${output}`)); });
    });
    child.stdout.resume();
    child.stderr.resume();
    const client = await createSelfSignedCertificate({ commonName: CLIENT, keyType: 'ecdsa-p256', usage: 'client', dnsNames: [CLIENT] });
    const daemon = new NtlsDaemon(home, child, port, client);
    try {
      writeFileSync(join(home, `${CLIENT}.pem`), client.certificatePem);
      await run(['client', 'register', '-c', CLIENT, '--cert', join(home, `${CLIENT}.pem`), '--hostname', '127.0.0.1', '--home', home], env);
      if (!mappedToken) await run(['partition', 'create', '--label', NTLS_PARTITION, '--so-pin', NTLS_SO_PIN, '--home', home], env);
      await run(['client', 'assign-partition', '-c', CLIENT, '-p', NTLS_PARTITION, '--home', home], env);
      // The security officer sets the user PIN.
      const setup = await daemon.connect();
      const slot = await initialize(setup);
      const { session } = await ok(setup, request('C_OpenSession', { slotId: slot, flags: CKF.SERIAL_SESSION | CKF.RW_SESSION }));
      await ok(setup, request('C_Login', { session, userType: CKU.SO, pin: Buffer.from(NTLS_SO_PIN) }));
      await ok(setup, request('C_InitPIN', { session, pin: Buffer.from(NTLS_USER_PIN) }));
      await ok(setup, request('C_Logout', { session }));
      await setup.close();
    } catch (error) {
      await daemon.stop();
      throw error;
    }
    return daemon;
  }

  /** A new NTLS link (mutual TLS, identity exchange, version byte) as a channel. */
  async connect(): Promise<RpcChannel> {
    const link = await openLink({
      host: '127.0.0.1', port: this.port, clientName: CLIENT,
      certificatePem: this.client.certificatePem, keyPem: this.client.keyPem,
      serverCertificatePem: readFileSync(join(this.home, 'server', 'server.pem'), 'utf8'), timeoutMs: 15_000,
    });
    return linkChannel(link);
  }

  /**
   * The command line of `ntls-client p11-relay` for the bench client (node, script, options;
   * add `--listen PATH` or nothing for stdin/stdout). Its certificate and key are written to
   * `dir`, which is also its config folder (its log goes there).
   */
  relayCommand(dir: string): string[] {
    const cert = join(dir, `${CLIENT}.pem`);
    const key = join(dir, `${CLIENT}Key.pem`);
    writeFileSync(cert, this.client.certificatePem);
    writeFileSync(key, this.client.keyPem, { mode: 0o600 });
    return [
      process.execPath, ntlsClientBin, 'p11-relay', '--server', `127.0.0.1:${this.port}`,
      '--server-cert', join(this.home, 'server', 'server.pem'), '--cert', cert, '--key', key, '--name', CLIENT,
      '--config-dir', dir,
    ];
  }

  /**
   * `dir` as the bench client's ntls-client config folder, the way `create-cert` and `add-server`
   * leave one: client.json naming its certificate and key (written there, the key 0600) and this
   * server (its certificate copied there). For libntls-pkcs11.so's own relay (NTLS_CLIENT_HOME).
   */
  writeClientFolder(dir: string): void {
    this.relayCommand(dir);
    writeFileSync(join(dir, 'server.pem'), readFileSync(join(this.home, 'server', 'server.pem')));
    writeFileSync(join(dir, 'client.json'), JSON.stringify({
      client: { name: CLIENT, certificate: `${CLIENT}.pem`, key: `${CLIENT}Key.pem` },
      servers: [{ name: 'bench', host: '127.0.0.1', port: this.port, certificate: 'server.pem' }],
    }, null, 2), { mode: 0o600 });
  }

  /** A connection on the home's unix socket (when started with `localSocket`): the same frames without TLS. */
  connectLocal(): Promise<RpcChannel> {
    return unixSocketChannel(join(this.home, 'p11kit.sock'));
  }

  /** Process id, for CPU accounting. */
  get pid(): number {
    return this.child.pid!;
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.home, { recursive: true, force: true });
  }
}
