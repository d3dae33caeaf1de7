// The command processor in this process, driven as the datapath drives it
// (src/datapath/connection.ts) but with no socket and no daemon, in the spirit of fastify's
// inject(). Only the contract is used (src/processor/contract.ts): the datapath's own loader
// loads and initialises the processor in a temporary home; each client connection is a
// cp_server_connected instance, its version byte goes to negotiateVersion, and its requests go
// in as frames and come out as frames, one at a time per connection as the datapath serves
// them. What the daemon's registry does for the processor (which partitions a client is
// assigned, announced through cp_client_registration_observer) is a map here, and the log lines
// the processor writes are kept in memory.
import { createHash } from 'node:crypto';
import { Registry } from 'prom-client';
import { LinkError } from '../../src/client/link.js';
import { loadConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { Logger } from '../../src/log/logger.js';
import {
  DATAPATH_CONTRACT_VERSION, type CommandProcessorModule, type ProcessorInstance, type RegistrationEvent,
} from '../../src/processor/contract.js';
import { loadProcessor } from '../../src/processor/loader.js';
import type { Frame } from '../../src/protocol/frame.js';
import { makeHome, removeHome, sleep } from './daemon.js';

const EMPTY = Buffer.alloc(0);

export interface HarnessOptions {
  /** The home's ntls.json, as for makeHome (the daemon's tests write the same). */
  config?: Record<string, unknown>;
  /** Set in this process's environment while the harness runs (SOFTHSM2_CONF for the pkcs11 backend). */
  env?: NodeJS.ProcessEnv;
}

export interface ConnectOptions {
  /** The command protocol version the client offers (p11-kit: 0 for 0.24.1). */
  protocolVersion?: number;
  /** A connection on the home's local socket: it sees every partition. */
  local?: boolean;
}

/** One client connection to the processor: requests in, answers out, in order. */
export class HarnessLink {
  readonly protocolVersion: number;
  private nextCallCode = 1;
  private queue: Promise<unknown> = Promise.resolve();
  private ended = false;

  private readonly instance: ProcessorInstance;

  /** `connect` makes the processor's instance (cp_server_connected), given how it ends this link. */
  constructor(
    connect: (terminate: () => void) => ProcessorInstance,
    offeredVersion: number,
    private readonly maxFrameBytes: number,
    private readonly onEnd: (link: HarnessLink) => void,
  ) {
    this.instance = connect(() => this.end());
    this.protocolVersion = this.instance.negotiateVersion(offeredVersion);
  }

  get closed(): boolean {
    return this.ended;
  }

  /** Sends one request body; answers come back in order, as over a link. */
  request(body: Buffer, options: Buffer = EMPTY): Promise<Frame> {
    const frame: Frame = { callCode: this.nextCallCode++, options, body };
    const answer = this.queue.then(() => this.serve(frame));
    this.queue = answer.catch(() => undefined);
    return answer;
  }

  /** Ends the connection, as the client closing its link does. */
  async close(): Promise<void> {
    await this.queue;
    this.end();
  }

  /** The datapath's side of an ending connection: the instance is closed once. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.instance.close();
    this.onEnd(this);
  }

  private async serve(frame: Frame): Promise<Frame> {
    if (this.ended) throw closedError('the connection has ended');
    if (frame.options.length + frame.body.length > this.maxFrameBytes) {
      // The datapath's frame reader refuses such a header and ends the connection.
      this.end();
      throw closedError(`a frame of ${frame.options.length + frame.body.length} bytes exceeds datapath.maxFrameBytes`);
    }
    let response: Frame;
    try {
      response = await this.instance.process(frame);
    } catch {
      // The datapath ends a connection whose request the processor failed.
      this.end();
      throw closedError('the processor failed the request');
    }
    if (this.ended) throw closedError('the connection ended while the request was processed');
    return { ...response, callCode: frame.callCode };
  }
}

function closedError(detail: string): LinkError {
  return new LinkError('NTLS_ERR_LINK_CLOSED', detail, { stage: 'open' });
}

export class ProcessorHarness {
  /** Every log line written, in the guide's shape. */
  readonly lines: string[] = [];
  private module!: CommandProcessorModule;
  private readonly registered = new Set<string>();
  private readonly assignments = new Map<string, string[]>();
  private readonly links = new Set<HarnessLink>();
  private nextConnectionId = 0;
  private stopped = false;

  private constructor(
    readonly home: string,
    readonly config: Config,
    readonly logger: Logger,
    private readonly restoreEnv: () => void,
  ) {
    logger.onLine((line) => this.lines.push(line));
  }

  /** Loads and initialises the processor in a new temporary home (configuration from `options.config`). */
  static async start(options: HarnessOptions = {}): Promise<ProcessorHarness> {
    const home = makeHome(options.config);
    const restoreEnv = setEnv(options.env ?? {});
    try {
      const config = loadConfig(home);
      const harness = new ProcessorHarness(home, config, new Logger({ debug: config.log.debug }), restoreEnv);
      const loaded = await loadProcessor(config.processor.module, {
        home, config, logger: harness.logger, datapathVersion: DATAPATH_CONTRACT_VERSION, metrics: new Registry(),
        assignedPartitions: (client) => harness.assignments.get(client) ?? [],
      });
      harness.module = loaded.module;
      return harness;
    } catch (error) {
      restoreEnv();
      removeHome(home);
      throw error;
    }
  }

  /** Registers a client, as a certificate dropped into the verify location does. */
  register(client: string): void {
    this.registered.add(client);
    this.announce({ operation: 'registered', client });
  }

  /** `ntls client delete`: the client and its assignments go. */
  remove(client: string): void {
    this.registered.delete(client);
    this.assignments.delete(client);
    this.announce({ operation: 'removed', client });
  }

  /** `ntls client assign-partition`: the partition (label or serial) is resolved by the processor. */
  async assign(client: string, partition: string): Promise<void> {
    const serial = await this.resolve(client, partition);
    const current = this.assignments.get(client) ?? [];
    if (current.includes(serial)) throw new Error(`partition ${partition} is already assigned to ${client}`);
    this.assignments.set(client, [...current, serial]);
    this.announce({ operation: 'assignments-changed', client });
  }

  /** `ntls client revoke-partition`. */
  async revoke(client: string, partition: string): Promise<void> {
    const serial = await this.resolve(client, partition);
    const current = this.assignments.get(client) ?? [];
    if (!current.includes(serial)) throw new Error(`partition ${partition} is not assigned to ${client}`);
    this.assignments.set(client, current.filter((s) => s !== serial));
    this.announce({ operation: 'assignments-changed', client });
  }

  /** One of the processor's admin commands (`ntls partition ...`: 'partition.create', 'partition.show' ...). */
  async admin(command: string, args: Record<string, unknown> = {}): Promise<unknown> {
    const handler = this.module.cp_admin_commands?.().get(command);
    if (!handler) throw new Error(`the processor has no admin command ${command}`);
    return await handler(args);
  }

  /** `ntls partition create`, through the processor's admin command. */
  async createPartition(label: string, soPin: string): Promise<void> {
    await this.admin('partition.create', { label, soPin });
  }

  /** `ntls partition show`'s serial number. */
  async partitionSerial(partition: string): Promise<string> {
    return ((await this.admin('partition.show', { partition })) as { serial: string }).serial;
  }

  /** A registered client's new connection: cp_server_connected, then the version byte. */
  connect(client: string, options: ConnectOptions = {}): Promise<HarnessLink> {
    if (this.stopped) throw new Error('the harness is stopped');
    if (!options.local && !this.registered.has(client)) throw new Error(`client ${client} is not registered (harness.register)`);
    const id = ++this.nextConnectionId;
    const link = new HarnessLink(
      (terminate) => this.module.cp_server_connected({
        id, client, peer: `127.0.0.1/${40000 + id}`, local: options.local ?? false,
        fingerprint: options.local ? '' : createHash('sha256').update(client).digest('hex'),
        terminate,
      }),
      options.protocolVersion ?? 0, this.config.datapath.maxFrameBytes, (ended) => this.links.delete(ended),
    );
    this.links.add(link);
    return Promise.resolve(link);
  }

  /** Texts of the log lines (what follows "NTLS [pid]: "), as Daemon.bodies() gives them. */
  bodies(): string[] {
    return this.lines.map((line) => line.slice(line.indexOf(']: ') + 3));
  }

  /** The first log line matching, waiting (bounded) for it to be written. */
  async waitForLog(pattern: RegExp | string, timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines.find((l) => (typeof pattern === 'string' ? l.includes(pattern) : pattern.test(l)));
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no log line matching ${pattern} within ${timeoutMs} ms; log:\n${this.lines.join('\n')}`);
      await sleep(20);
    }
  }

  /** Ends every connection, shuts the processor down (cp_shutdown) and removes the home. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    try {
      for (const link of [...this.links]) link.end();
      await this.module.cp_shutdown();
      await this.logger.close();
    } finally {
      this.restoreEnv();
      removeHome(this.home);
    }
  }

  private async resolve(client: string, partition: string): Promise<string> {
    if (!this.registered.has(client)) throw new Error(`client ${client} is not registered (harness.register)`);
    return ((await this.admin('partition.resolve', { partition })) as { serial: string }).serial;
  }

  private announce(event: RegistrationEvent): void {
    this.module.cp_client_registration_observer(event);
  }
}

/** Sets variables in process.env; returns what puts them back. */
function setEnv(env: NodeJS.ProcessEnv): () => void {
  const before = Object.entries(env).map(([key]) => [key, process.env[key]] as const);
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  return () => {
    for (const [key, value] of before) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
}
