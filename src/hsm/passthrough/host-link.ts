// The daemon's end of one module host: starts the child process, sends requests, matches the
// answers, and notices a host that dies (the module crashed) or stops answering (the module
// hangs). Either is a device error: the guide's container-list lines are logged, the requests
// in flight fail with CKR_DEVICE_ERROR, the host is killed and started again.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Catalogue } from '../../log/catalogue.js';
import type { Logger } from '../../log/logger.js';
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { HostOp, HostOps, HostReady, HostRequest, HostResponse, HostStart } from './host-protocol.js';

/** The host's script: next to this file when built; the built copy when this runs from source (tests). */
function hostScript(): string {
  const here = fileURLToPath(new URL('./module-host.js', import.meta.url));
  if (existsSync(here)) return here;
  return here.replace(/\/src\/hsm\/passthrough\/module-host\.js$/, '/dist/src/hsm/passthrough/module-host.js');
}

export interface HostLinkOptions {
  start: HostStart;
  /** Milliseconds a request may take before the module is declared hung. */
  callTimeoutMs: number;
  logger?: Logger;
  /** The host went away (crash, hang, or close): every module handle it gave is void. */
  onLost(reason: string): void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

type Result<K extends HostOp> = Awaited<ReturnType<HostOps[K]>>;

export class HostLink {
  private child: ChildProcess | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closing = false;
  /** Why the host is down, while it is. */
  private down: string | null = 'not started';

  constructor(private readonly options: HostLinkOptions) {}

  get available(): boolean {
    return this.down === null;
  }

  /** Starts the host and the token in it; throws Pkcs11Error when the module cannot be used. */
  async start(): Promise<HostReady> {
    const child = fork(hostScript(), [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000); });
    child.on('message', (message: HostResponse) => this.settle(message));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = null;
      const reason = signal ? `the module host was killed by ${signal}` : `the module host exited with status ${code}`;
      this.lost(stderr.trim() ? `${reason}: ${stderr.trim().split('\n').pop()}` : reason);
    });
    this.down = null;
    try {
      return await this.request('start', this.options.start);
    } catch (error) {
      // A module that cannot be loaded or has no such token: this host is of no use.
      this.down = error instanceof Error ? error.message : String(error);
      if (this.child === child) this.child = null;
      child.kill('SIGKILL');
      throw error;
    }
  }

  request<K extends HostOp>(op: K, ...args: Parameters<HostOps[K]>): Promise<Result<K>> {
    const child = this.child;
    if (!child || this.down !== null) return Promise.reject(new Pkcs11Error(CKR.DEVICE_ERROR, this.down ?? 'the module host is down'));
    const id = this.nextId++;
    return new Promise<Result<K>>((resolve, reject) => {
      const timer = setTimeout(() => this.hung(op), this.options.callTimeoutMs);
      this.pending.set(id, { resolve: resolve, reject, timer });
      const request: HostRequest = { id, op, args };
      child.send(request, (error) => {
        if (error) this.fail(id, new Pkcs11Error(CKR.DEVICE_ERROR, `cannot reach the module host: ${error.message}`));
      });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (!child) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.disconnect();
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await exited;
    clearTimeout(timer);
  }

  private settle(message: HostResponse): void {
    const pending = this.pending.get(message.id);
    if (!pending) return;
    this.pending.delete(message.id);
    clearTimeout(pending.timer);
    // The 'advanced' serialization brings Buffers back as Buffers.
    if (message.ok) pending.resolve(message.value);
    else pending.reject(new Pkcs11Error(message.rv, message.message));
  }

  private fail(id: number, error: Error): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    this.pending.delete(id);
    clearTimeout(pending.timer);
    pending.reject(error);
  }

  private hung(op: HostOp): void {
    const child = this.child;
    this.child = null;
    child?.kill('SIGKILL');
    this.lost(`the module did not answer ${op} within ${this.options.callTimeoutMs} ms`);
  }

  private lost(reason: string): void {
    this.down = reason;
    for (const id of [...this.pending.keys()]) this.fail(id, new Pkcs11Error(CKR.DEVICE_ERROR, reason));
    if (this.closing) return;
    this.options.logger?.log(Catalogue.containerListFailed);
    this.options.logger?.log(Catalogue.systemContainersLoadFailed);
    this.options.onLost(reason);
  }
}
