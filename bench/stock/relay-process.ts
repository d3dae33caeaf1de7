// `ntls-client p11-relay --listen SOCK` as its own process, the way a client host runs it for
// stock applications (P11_KIT_SERVER_ADDRESS=unix:path=SOCK). Started and stopped with bounded
// waits.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NtlsDaemon } from '../network/ntls-daemon.js';

/** Bookworm's p11-kit client module: what stock programs load to reach a p11-kit server, or the relay. */
export const P11KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';

export class RelayProcess {
  private stderr = '';

  private constructor(private readonly dir: string, readonly socketPath: string, private readonly child: ChildProcess) {
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
  }

  /** BENCH_RELAY_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" profiles the relay. */
  static async start(daemon: NtlsDaemon, timeoutMs = 15_000, relayArgs: string[] = []): Promise<RelayProcess> {
    const dir = mkdtempSync(join(tmpdir(), 'ntls-bench-relay-'));
    const socketPath = join(dir, 'relay.sock');
    const [node, ...args] = daemon.relayCommand(dir);
    const nodeArgs = (process.env.BENCH_RELAY_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(node!, [...nodeArgs, ...args, ...relayArgs, '--listen', socketPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    const relay = new RelayProcess(dir, socketPath, child);
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(socketPath)) {
      if (!relay.running || Date.now() > deadline) {
        await relay.stop();
        throw new Error(`ntls-client p11-relay did not listen on ${socketPath} within ${timeoutMs} ms: ${relay.stderr.trim()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    return relay;
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** What the relay wrote on stderr (its link failures), for a failure message. */
  get messages(): string {
    return this.stderr.trim();
  }

  async stop(): Promise<void> {
    if (this.running) {
      const exited = new Promise((r) => this.child.once('exit', r));
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
