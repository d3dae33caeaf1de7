// Where a processor suite (test/processor/*.suite.ts) runs: in this process through the harness
// (unit speed, no socket), or in the real daemon over mutual TLS with the admin CLI
// (integration). Both answer the same requests the same way; a suite written against this
// interface runs on either.
import type { Link } from '../../src/client/link.js';
import { Daemon, link, makeClient, makeHome, registerClient, removeHome, runNtls, startDaemon, type TestClient } from './daemon.js';
import type { RequestChannel } from './p11kit.js';
import { ProcessorHarness } from './processor-harness.js';

export type TargetKind = 'harness' | 'daemon';

export interface TargetLink extends RequestChannel {
  readonly protocolVersion: number;
  close(): Promise<void>;
}

export interface ProcessorTarget {
  /** Registers a client (a certificate in the verify location). */
  register(client: string): void | Promise<void>;
  /** `ntls client assign-partition` / `revoke-partition`. */
  assign(client: string, partition: string): Promise<void>;
  revoke(client: string, partition: string): Promise<void>;
  connect(client: string, options?: { protocolVersion?: number }): Promise<TargetLink>;
  /** `ntls partition create` (the software HSM). */
  createPartition(label: string, soPin: string): Promise<void>;
  /** `ntls partition show`'s serial number. */
  partitionSerial(partition: string): Promise<string>;
  /** Texts of the log lines written so far. */
  bodies(): string[];
  waitForLog(pattern: RegExp | string, timeoutMs?: number): Promise<string>;
  stop(): Promise<void>;
}

export interface TargetOptions {
  /** The home's ntls.json. */
  config: Record<string, unknown>;
  /** The environment the HSM backend needs (SOFTHSM2_CONF). */
  env: NodeJS.ProcessEnv;
}

export async function startTarget(kind: TargetKind, options: TargetOptions): Promise<ProcessorTarget> {
  if (kind === 'daemon') return DaemonTarget.start(options);
  return ProcessorHarness.start(options);
}

/** The real daemon in a temporary home; clients link over mutual TLS, the admin CLI does the rest. */
export class DaemonTarget implements ProcessorTarget {
  private readonly clients = new Map<string, TestClient>();

  private constructor(readonly daemon: Daemon) {}

  static async start(options: TargetOptions): Promise<DaemonTarget> {
    const home = makeHome(options.config);
    try {
      return new DaemonTarget(await startDaemon(home, options.env));
    } catch (error) {
      removeHome(home);
      throw error;
    }
  }

  get home(): string {
    return this.daemon.home;
  }

  async register(client: string): Promise<void> {
    const made = await makeClient(client);
    registerClient(this.home, made);
    this.clients.set(client, made);
  }

  async assign(client: string, partition: string): Promise<void> {
    await this.ntls(['client', 'assign-partition', '-c', client, '-p', partition]);
  }

  async revoke(client: string, partition: string): Promise<void> {
    await this.ntls(['client', 'revoke-partition', '-c', client, '-p', partition]);
  }

  connect(client: string, options: { protocolVersion?: number } = {}): Promise<Link> {
    const registered = this.clients.get(client);
    if (!registered) throw new Error(`client ${client} is not registered (target.register)`);
    return link(this.daemon, registered, options);
  }

  async createPartition(label: string, soPin: string): Promise<void> {
    await this.ntls(['partition', 'create', '--label', label, '--so-pin', soPin]);
  }

  async partitionSerial(partition: string): Promise<string> {
    return (JSON.parse(await this.ntls(['partition', 'show', '-p', partition, '--json'])) as { serial: string }).serial;
  }

  bodies(): string[] {
    return this.daemon.bodies();
  }

  waitForLog(pattern: RegExp | string, timeoutMs?: number): Promise<string> {
    return this.daemon.waitForLog(pattern, timeoutMs);
  }

  async stop(): Promise<void> {
    await this.daemon.stop();
    removeHome(this.home);
  }

  /** Runs an admin command on this daemon's home; its stdout, or an error with its stderr. */
  private async ntls(args: string[]): Promise<string> {
    const result = await runNtls([...args, '--home', this.home]);
    if (result.status !== 0) throw new Error(`ntls ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
    return result.stdout;
  }
}
