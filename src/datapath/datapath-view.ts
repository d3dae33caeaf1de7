// What the rest of the daemon (admin handlers, metrics) sees of the data path, whether it runs
// in the main process alone or on datapath worker processes too (docs/workers.md): counters and
// connections summed over all of them, and the one action that crosses them.
import type { DatapathCounters } from './statistics.js';

export interface DatapathConnections {
  /** Connections open now, authenticated or not. */
  total: number;
  /** Authenticated connections by client name. */
  byClient: Readonly<Record<string, number>>;
}

/** One process serving the TLS port, as `ntls info show` lists them. */
export interface DatapathWorker {
  index: number;
  /** The main process (index 0) or a datapath worker. */
  role: 'main' | 'worker';
  pid: number;
  connections: number;
  /** Connections it has accepted since it started. */
  connectionsTotal: number;
}

export interface DatapathView {
  /** How many processes serve the TLS port, the main one included (1: the main process alone). */
  readonly workers: number;
  statistics(): Promise<DatapathCounters>;
  resetStatistics(): Promise<void>;
  connections(): Promise<DatapathConnections>;
  /** The processes serving the TLS port now: the main process (index 0), then each worker (1, 2, ...). */
  processes(): Promise<DatapathWorker[]>;
  /** Ends a client's live connections wherever they are; resolves with how many. */
  terminateClient(client: string): Promise<number>;
}
