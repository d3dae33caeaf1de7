// Where a processor suite (test/processor/*.suite.ts) runs: in this process through the harness
// (unit speed, no socket), or in the real daemon over mutual TLS with the admin CLI
// (integration). Both answer the same requests the same way; a suite written against this
// interface runs on either.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Link } from '../../src/client/link.js';
import { Daemon, link, makeClient, makeHome, registerClient, removeHome, runNtls, startDaemon, type TestClient } from './daemon.js';
import { startPostgres, type PostgresServer } from './postgres.js';
import type { RequestChannel } from './p11kit.js';
import { ProcessorHarness } from './processor-harness.js';

/** 'nodes': two daemons on one PostgreSQL store, clients spread over them (docs/ha.md). */
export type TargetKind = 'harness' | 'daemon' | 'nodes';

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
  if (kind === 'nodes') return NodesTarget.start(options);
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

/**
 * Two daemons on one private PostgreSQL store with the registry folder shared: clients are
 * registered, given and denied partitions through node 1, partitions made through the nodes in
 * turn, and every client's links served by node 2, so everything a client's calls rely on was
 * set through the other node. (Clients linked to different nodes would share session handle
 * numbers, each its own node's: a suite that tries one client's session handle from the other
 * would then hit the caller's own session, which is no leak.)
 */
export class NodesTarget implements ProcessorTarget {
  private readonly clients = new Map<string, { made: TestClient; node: number; partitions: number }>();
  private turn = 0;

  private constructor(readonly postgres: PostgresServer, readonly registry: string, readonly nodes: Daemon[]) {}

  static async start(options: TargetOptions): Promise<NodesTarget> {
    const postgres = await startPostgres();
    const url = await postgres.createDatabase('ntls');
    const registry = mkdtempSync(join(tmpdir(), 'ntls-nodes-clients-'));
    const nodes: Daemon[] = [];
    for (let i = 0; i < 2; i++) {
      const home = makeHome({ ...options.config, store: { backend: 'postgres', url }, clients: { verifyLocation: registry } });
      nodes.push(await startDaemon(home, options.env));
    }
    return new NodesTarget(postgres, registry, nodes);
  }

  async register(client: string): Promise<void> {
    const made = await makeClient(client);
    writeFileSync(join(this.registry, `${client}.json`), JSON.stringify({ host: '127.0.0.1', partitions: [] }));
    writeFileSync(join(this.registry, `${client}.pem`), made.certificatePem);
    this.clients.set(client, { made, node: 0, partitions: 0 });
  }

  private nodeOf(client: string): { made: TestClient; node: number; partitions: number } {
    const registered = this.clients.get(client);
    if (!registered) throw new Error(`client ${client} is not registered (target.register)`);
    return registered;
  }

  async assign(client: string, partition: string): Promise<void> {
    await this.ntls(this.nodeOf(client).node, ['client', 'assign-partition', '-c', client, '-p', partition]);
    this.nodeOf(client).partitions++;
  }

  async revoke(client: string, partition: string): Promise<void> {
    await this.ntls(this.nodeOf(client).node, ['client', 'revoke-partition', '-c', client, '-p', partition]);
    this.nodeOf(client).partitions--;
  }

  /** Links to node 2 once its monitor has seen the registration and assignments made through node 1 (bounded wait). */
  async connect(client: string, options: { protocolVersion?: number } = {}): Promise<Link> {
    const registered = this.nodeOf(client);
    for (let i = 0; i < 100; i++) {
      const listed = JSON.parse(await this.ntls(1, ['client', 'list', '--json'])) as Array<{ name: string; partitions: string[] }>;
      if (listed.find((c) => c.name === client)?.partitions.length === registered.partitions) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return link(this.nodes[1]!, registered.made, options);
  }

  async createPartition(label: string, soPin: string): Promise<void> {
    await this.ntls(this.turn++ % this.nodes.length, ['partition', 'create', '--label', label, '--so-pin', soPin]);
  }

  async partitionSerial(partition: string): Promise<string> {
    return (JSON.parse(await this.ntls(1, ['partition', 'show', '-p', partition, '--json'])) as { serial: string }).serial;
  }

  bodies(): string[] {
    return this.nodes.flatMap((node) => node.bodies());
  }

  async waitForLog(pattern: RegExp | string, timeoutMs = 10_000): Promise<string> {
    return Promise.any(this.nodes.map((node) => node.waitForLog(pattern, timeoutMs)));
  }

  async stop(): Promise<void> {
    for (const node of this.nodes) {
      await node.stop();
      removeHome(node.home);
    }
    await this.postgres.destroy();
    rmSync(this.registry, { recursive: true, force: true });
  }

  private async ntls(node: number, args: string[]): Promise<string> {
    const result = await runNtls([...args, '--home', this.nodes[node]!.home]);
    if (result.status !== 0) throw new Error(`ntls ${args.join(' ')} on node ${node + 1} exited ${result.status}: ${result.stderr}`);
    return result.stdout;
  }
}
