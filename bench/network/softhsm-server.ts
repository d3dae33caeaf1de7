// The reference server: `p11-kit server` (Debian package p11-kit) fronting SoftHSM2 (softhsm2)
// with a fresh token in a temporary folder, on a unix socket. p11-kit server forks a
// p11-kit-remote process per accepted connection, which loads SoftHSM2 and serves that
// connection alone: the reference gets one process per connection.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unixSocketChannel, type RpcChannel } from './rpc-channel.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
/** The token's label, for applications that find their slot by label. */
export const SOFTHSM_TOKEN = 'bench';
export const SOFTHSM_USER_PIN = '1234';
const SO_PIN = '1234';

export class SoftHsmServer {
  private constructor(readonly dir: string, readonly socketPath: string, private readonly child: ChildProcess) {}

  static async start(): Promise<SoftHsmServer> {
    if (!existsSync(SOFTHSM_MODULE)) throw new Error(`${SOFTHSM_MODULE} is missing: apt-get install softhsm2 p11-kit`);
    const dir = mkdtempSync(join(tmpdir(), 'ntls-bench-softhsm-'));
    mkdirSync(join(dir, 'tokens'));
    writeFileSync(join(dir, 'softhsm2.conf'), `directories.tokendir = ${dir}/tokens\nobjectstore.backend = file\nlog.level = ERROR\n`);
    const env = { ...process.env, SOFTHSM2_CONF: join(dir, 'softhsm2.conf') };
    const init = spawnSync('softhsm2-util', ['--init-token', '--free', '--label', SOFTHSM_TOKEN, '--so-pin', SO_PIN, '--pin', SOFTHSM_USER_PIN], { env });
    if (init.status !== 0) throw new Error(`softhsm2-util failed: ${init.stderr?.toString() ?? init.error}`);
    const socketPath = join(dir, 'p11kit.sock');
    const child = spawn('p11-kit', ['server', '--provider', SOFTHSM_MODULE, '-f', '-n', socketPath, `pkcs11:token=${SOFTHSM_TOKEN}`], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    for (let i = 0; i < 200 && !existsSync(socketPath) && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
    if (!existsSync(socketPath)) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`p11-kit server did not create its socket: ${stderr}`);
    }
    return new SoftHsmServer(dir, socketPath, child);
  }

  /** `p11-kit server`'s process id; its per-connection processes are its children. */
  get pid(): number {
    return this.child.pid!;
  }

  connect(): Promise<RpcChannel> {
    return unixSocketChannel(this.socketPath);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
