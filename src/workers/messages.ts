// The control messages between the daemon's main process and its datapath workers, over Node's
// IPC channel (the requests and answers themselves travel on the binary channel, channel.ts).
import type { Config } from '../config/schema.js';
import type { DatapathCounters } from '../datapath/statistics.js';

export interface WorkerInit {
  index: number;
  /** The daemon's configuration. */
  config: Config;
  /** The same, with this worker's share of the daemon-wide limits (memory, connections). */
  workerConfig: Config;
  serverName: string;
  verifyLocation: string;
  logDirectory: string;
  logFile: string;
  credentials: { certificatePem: string; keyPem: string };
}

/** Counters and connections of one worker, summed by the main process. */
export interface WorkerReport {
  statistics: DatapathCounters;
  connections: number;
  index: number;
  pid: number;
  /** Authenticated connections by client. */
  clients: Record<string, number>;
}

export type MainToWorker =
  /** A TLS-port connection to serve, sent with its socket (src/daemon/placement.ts). */
  | { type: 'connection' }
  | { type: 'registrations'; endUnregistered: boolean }
  | { type: 'credentials'; certificatePem: string; keyPem: string }
  | { type: 'debug'; enabled: boolean }
  | { type: 'terminate-client'; id: number; client: string }
  | { type: 'report'; id: number }
  | { type: 'reset-statistics'; id: number }
  | { type: 'stop' };

export type WorkerToMain =
  /** Loaded, listening for its init (a message sent before would be lost). */
  | { type: 'ready' }
  /** Initialised: connections handed to it are served. */
  | { type: 'serving' }
  /** A connection handed to it has closed. */
  | { type: 'released' }
  | { type: 'failed'; message: string }
  | { type: 'reply'; id: number; value: unknown };
