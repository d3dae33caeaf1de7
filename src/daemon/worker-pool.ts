// The daemon's datapath workers (docs/workers.md): processes beside the main one that serve TLS
// connections the main process accepted and handed to them (placement.ts says which), doing TLS,
// the identity exchange and framing; this process runs the command processor for all of them
// over one binary channel per worker, writes their log lines, sums their statistics, and
// replaces a worker that dies. A client sees one daemon whichever process holds its link.
import cluster, { type Worker } from 'node:cluster';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { Config } from '../config/schema.js';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import type { Message } from '../log/message.js';
import type { CommandProcessorModule } from '../processor/contract.js';
import { ProcessorHost, type WorkerStream } from '../workers/processor-host.js';
import { CRASH_EXIT_STATUS } from '../datapath/crash-handler.js';
import { DatapathStatistics } from '../datapath/statistics.js';
import type { MainToWorker, WorkerInit, WorkerReport, WorkerToMain } from '../workers/messages.js';
import { placeConnection } from './placement.js';

/**
 * The worker's program beside this module; when this module runs from its TypeScript source
 * (the tests' in-process daemons), the built copy (`npm test` builds first).
 */
function workerScript(): string {
  const beside = fileURLToPath(new URL('../workers/worker.js', import.meta.url));
  return existsSync(beside) ? beside : fileURLToPath(new URL('../../dist/src/workers/worker.js', import.meta.url));
}
/** Connection ids of worker i are (i+1)·2^24 + its own: unique in the daemon (the main process's are below 2^24). */
const IDS_PER_WORKER = 1 << 24;
/** A worker that dies again within this long after its start is not replaced at once. */
const RESPAWN_BACKOFF_MS = [0, 500, 2000, 10_000];
const REPLY_TIMEOUT_MS = 5000;
/** Signals whose native handler (native/daemon/crash_handler.c) writes the dump and the line itself. */
const NATIVE_FAULT_SIGNALS = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE', 'SIGABRT']);

export interface WorkerPoolOptions {
  /** Worker processes to run. */
  workers: number;
  /** Processes serving the TLS port, the main one included: the daemon-wide limits are shared among them. */
  servingProcesses: number;
  config: Config;
  logger: Logger;
  processor: CommandProcessorModule;
  serverName: string;
  verifyLocation: string;
  logDirectory: string;
  logFile: string;
  credentials: { certificatePem: string; keyPem: string };
}

interface Slot {
  index: number;
  worker: Worker | null;
  host: ProcessorHost | null;
  report: WorkerReport | null;
  started: number;
  failures: number;
  /** Serving connections handed to it. */
  serving: boolean;
  /** Connections handed to it and not yet closed. */
  assigned: number;
  /** Settles once the lines of its last worker that ended are all written (its links' ends too). */
  drained: Promise<void>;
}

/** A worker's share of a daemon-wide limit (at least 1). */
const share = (total: number, n: number) => Math.max(1, Math.floor(total / n));

/** The configuration a worker runs with: the daemon-wide limits divided among the workers, so their sum holds. */
export function workerConfig(config: Config, n: number): Config {
  const d = config.datapath;
  return {
    ...config,
    datapath: {
      ...d,
      memoryBudget: share(d.memoryBudget, n),
      maxConnections: share(d.maxConnections, n),
      maxPendingConnections: share(d.maxPendingConnections, n),
      maxPendingPerAddress: share(d.maxPendingPerAddress, n),
      ...(d.maxConnectionsPerClient == null ? {} : { maxConnectionsPerClient: share(d.maxConnectionsPerClient, n) }),
      ...(d.clientMemoryBudget == null ? {} : { clientMemoryBudget: share(d.clientMemoryBudget, n) }),
    },
  };
}

/** Sends unless the worker's channel is already closed (it is exiting); says whether it sent. */
function sendTo(worker: Worker, message: MainToWorker | WorkerInit): boolean {
  if (!worker.isConnected()) return false;
  try {
    // A worker exiting now breaks the pipe after the check: the callback takes that error (EPIPE),
    // which would otherwise be thrown at nobody.
    worker.send(message, () => undefined);
    return true;
  } catch {
    return false;
  }
}

/** How long the lines a dead worker sent may take to be read before its links are ended without them. */
const DRAIN_MS = 1000;

/** Runs `then` once the dead worker's channel has ended (its last lines read), or after DRAIN_MS. */
function whenDrained(stream: WorkerStream, then: () => void): Promise<void> {
  return new Promise((resolve) => {
    let done = false;
    const once = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      then();
      resolve();
    };
    const timer = setTimeout(once, DRAIN_MS);
    if (stream.destroyed || stream.readableEnded) once();
    else stream.once('close', once);
  });
}

export class WorkerPool {
  private readonly slots: Slot[];
  private readonly pending = new Map<number, { resolve(value: unknown): void; timer: NodeJS.Timeout }>();
  private nextReply = 1;
  private refreshing: Promise<WorkerReport[]> | null = null;
  private stopping = false;
  /** The counters of workers that have ended: the daemon's totals do not go back when one is replaced. */
  readonly retired = new DatapathStatistics();
  private credentials: { certificatePem: string; keyPem: string };

  constructor(private readonly options: WorkerPoolOptions) {
    this.credentials = options.credentials;
    this.slots = Array.from({ length: options.workers }, (_, index) => ({
      index, worker: null, host: null, report: null, started: 0, failures: 0, serving: false, assigned: 0, drained: Promise.resolve(),
    }));
    cluster.setupPrimary({
      exec: workerScript(),
      args: [],
      // fd 3: Node's IPC (control, handed connections); fd 4: the binary request channel and log lines.
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', 'pipe'],
      serialization: 'advanced',
    });
  }

  get size(): number {
    return this.slots.length;
  }

  /** Starts every worker; resolves once each serves (rejects with the first one's failure). */
  async start(): Promise<void> {
    await Promise.all(this.slots.map((slot) => this.spawn(slot)));
  }

  /**
   * A new connection of the TLS port, not read yet: handed to the least busy worker when it is
   * less busy than the main process (`main` connections); false when the main process keeps it.
   */
  handOff(socket: Socket, main: number | null): boolean {
    const index = placeConnection(main, this.slots.map((slot) => (slot.serving && slot.worker?.isConnected() ? slot.assigned : null)));
    if (index === null) return false;
    const slot = this.slots[index]!;
    try {
      slot.worker!.send({ type: 'connection' } satisfies MainToWorker, socket, { keepOpen: false }, (error) => {
        // Lost with the worker (it is exiting): the client's link fails and it connects again.
        if (error) socket.destroy();
      });
    } catch {
      return false;
    }
    slot.assigned++;
    return true;
  }

  private spawn(slot: Slot): Promise<void> {
    const { options } = this;
    const worker = cluster.fork({ NTLS_WORKER_INDEX: String(slot.index) });
    slot.worker = worker;
    slot.started = Date.now();
    // A message to a worker that is exiting fails with EPIPE (cluster's own replies too): its
    // exit is what counts, handled below; unhandled, the error would end this process.
    worker.on('error', () => undefined);
    const stream = worker.process.stdio?.[4] as unknown as WorkerStream | undefined;
    if (!stream) throw new Error('the worker has no request channel');
    slot.host = new ProcessorHost(options.processor, stream, (local) => (slot.index + 1) * IDS_PER_WORKER + local, (id, params) => this.log(id, params));
    const init: WorkerInit = {
      index: slot.index + 1, config: options.config, workerConfig: workerConfig(options.config, options.servingProcesses),
      serverName: options.serverName, verifyLocation: options.verifyLocation, logDirectory: options.logDirectory,
      logFile: options.logFile, credentials: this.credentials,
    };
    return new Promise((resolve, reject) => {
      let up = false;
      worker.on('message', (message: WorkerToMain) => {
        switch (message.type) {
          case 'ready':
            sendTo(worker, init);
            break;
          case 'serving':
            up = true;
            slot.failures = 0;
            slot.serving = true;
            resolve();
            break;
          case 'released':
            slot.assigned = Math.max(0, slot.assigned - 1);
            break;
          case 'failed':
            if (!up) reject(new Error(message.message));
            break;
          case 'reply':
            this.pending.get(message.id)?.resolve(message.value);
            break;
        }
      });
      worker.on('exit', (code, signal) => {
        // A fault its own handlers caught wrote the guide's line and dump (status 70, or the
        // native handler's signals); a worker killed outright (SIGKILL) could not: say it here.
        if (!this.stopping && up && code !== CRASH_EXIT_STATUS && signal !== null && !NATIVE_FAULT_SIGNALS.has(signal)) {
          options.logger.log(Catalogue.crashNoStackDump);
        }
        if (slot.report) this.retired.add(slot.report.statistics);
        if (slot.host) slot.drained = whenDrained(stream, slot.host.lost.bind(slot.host));
        slot.host = null;
        slot.worker = null;
        slot.report = null;
        slot.serving = false;
        slot.assigned = 0;
        if (!up) {
          // Its last messages (why it failed) are read before the channel's end.
          const failed = () => reject(new Error(`datapath worker ${slot.index + 1} ended before it served`));
          if (worker.isConnected()) worker.once('disconnect', failed);
          else failed();
          return;
        }
        if (this.stopping) return;
        // Its connections are gone; the others serve on. A new worker takes its place.
        const quick = Date.now() - slot.started < 10_000;
        slot.failures = quick ? slot.failures + 1 : 0;
        this.respawnLater(slot);
      });
    });
  }

  /** A new worker in the slot after the backoff; one that ends before it serves is tried again, later each time. */
  private respawnLater(slot: Slot): void {
    const delay = RESPAWN_BACKOFF_MS[Math.min(slot.failures, RESPAWN_BACKOFF_MS.length - 1)]!;
    setTimeout(() => {
      if (this.stopping) return;
      this.spawn(slot).catch(() => {
        slot.failures++;
        this.respawnLater(slot);
      });
    }, delay).unref();
  }

  /** A worker's log line, written by this process's logger (one lunalogs, in order). */
  private log(id: string, params: Record<string, string | number>): void {
    const known = (Catalogue as Record<string, Message>)[id];
    if (known) (this.options.logger.log as (m: Message, p: Record<string, string | number>) => void)(known, params);
  }

  private broadcast(message: MainToWorker): void {
    for (const slot of this.slots) if (slot.worker) sendTo(slot.worker, message);
  }

  /** Asks every live worker; each answer (or null after a timeout) in worker order. */
  private async ask<T>(make: (id: number) => MainToWorker): Promise<Array<T | null>> {
    return Promise.all(this.slots.map((slot) => new Promise<T | null>((resolve) => {
      if (!slot.worker) return resolve(null);
      const id = this.nextReply++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve(null);
      }, REPLY_TIMEOUT_MS);
      this.pending.set(id, { resolve: (value) => { clearTimeout(timer); this.pending.delete(id); resolve(value as T); }, timer });
      if (!sendTo(slot.worker, make(id))) {
        clearTimeout(timer);
        this.pending.delete(id);
        resolve(null);
      }
    })));
  }

  /** Fresh reports from every worker (statistics, connections by client). */
  refresh(): Promise<WorkerReport[]> {
    // Callers at the same moment (a metrics scrape reads every series) share one round.
    this.refreshing ??= this.collect().finally(() => { this.refreshing = null; });
    return this.refreshing;
  }

  private async collect(): Promise<WorkerReport[]> {
    const reports = await this.ask<WorkerReport>((id) => ({ type: 'report', id }));
    reports.forEach((report, i) => {
      if (report) this.slots[i]!.report = report;
    });
    return this.slots.map((slot) => slot.report).filter((r): r is WorkerReport => r !== null);
  }

  /** Zeroes every worker's counters. */
  async resetStatistics(): Promise<void> {
    this.retired.reset();
    await this.ask<boolean>((id) => ({ type: 'reset-statistics', id }));
  }

  /** Ends a client's connections on every worker; resolves with how many. */
  async terminateClient(client: string): Promise<number> {
    const ended = await this.ask<number>((id) => ({ type: 'terminate-client', id, client }));
    return ended.reduce<number>((sum, n) => sum + (n ?? 0), 0);
  }

  /** Registrations changed: every worker re-reads the verify location (and ends unregistered links). */
  registrationsChanged(endUnregistered: boolean): void {
    this.broadcast({ type: 'registrations', endUnregistered });
  }

  /** A new server certificate and key for new connections, on every worker. */
  credentialsChanged(credentials: { certificatePem: string; keyPem: string }): void {
    this.credentials = credentials;
    this.broadcast({ type: 'credentials', ...credentials });
  }

  setDebug(enabled: boolean): void {
    this.broadcast({ type: 'debug', enabled });
  }

  /** Connections served now, by the processor's count (every worker's). */
  get connections(): number {
    return this.slots.reduce((sum, slot) => sum + (slot.host?.connections ?? 0), 0);
  }

  /** Stops every worker: their connections end; resolves when all have exited. */
  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.slots.map((slot) => new Promise<void>((resolve) => {
      const worker = slot.worker;
      if (!worker) return resolve();
      const timer = setTimeout(() => worker.process.kill('SIGKILL'), 10_000);
      // After the worker's own exit handler (spawn): its last lines are written before the daemon's last ones.
      worker.once('exit', () => {
        clearTimeout(timer);
        void slot.drained.then(resolve);
      });
      if (!sendTo(worker, { type: 'stop' })) worker.process.kill('SIGKILL');
    })));
  }
}
