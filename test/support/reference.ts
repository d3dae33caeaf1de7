// The reference stack of conformance tests: `p11-kit server` (Debian package p11-kit) fronting
// SoftHSM2 with a fresh token in a temporary folder, on a unix socket; applications reach it
// through the same p11-kit-client.so as they reach ntls. A missing tool fails, never skips.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SOFTHSM_MODULE, SoftHsm, type SoftHsmToken } from './softhsm.js';
import { waitForUnixListener } from './unix-socket.js';

export class ReferenceServer {
  private constructor(readonly softhsm: SoftHsm, readonly token: SoftHsmToken, readonly socketPath: string, private readonly child: ChildProcess,
    private readonly stderr: () => string) {}

  /** A SoftHSM2 token initialised with these PINs, served alone by `p11-kit server` on a socket. */
  static async start(label: string, soPin: string, userPin: string): Promise<ReferenceServer> {
    if (!existsSync(SOFTHSM_MODULE)) throw new Error(`${SOFTHSM_MODULE} is missing: apt-get install softhsm2 p11-kit`);
    const softhsm = new SoftHsm();
    const token = softhsm.initToken(label, soPin, userPin);
    const socketPath = join(softhsm.dir, 'p11kit.sock');
    const child = spawn('p11-kit', ['server', '--provider', SOFTHSM_MODULE, '-f', '-n', socketPath, `pkcs11:token=${encodeURIComponent(label)}`],
      { env: { ...process.env, ...softhsm.env }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    if (!(await waitForUnixListener(socketPath, () => child.exitCode === null, 10_000))) {
      child.kill('SIGKILL');
      softhsm.remove();
      throw new Error(`p11-kit server did not listen on its socket: ${stderr}`);
    }
    return new ReferenceServer(softhsm, token, socketPath, child, () => stderr);
  }

  get log(): string {
    return this.stderr();
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    this.softhsm.remove();
  }
}
