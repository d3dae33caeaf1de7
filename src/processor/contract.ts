// The contract between the datapath and a command processor module. The datapath loads the
// module at start (built-in default, or a path from configuration) and checks that it exports
// every entry point below — the names are the guide's, so its failure lines can name them —
// and that it supports the datapath's contract version.

import type { Frame } from '../protocol/frame.js';
import type { Logger } from '../log/logger.js';
import type { Config } from '../config/schema.js';
import type { Registry } from 'prom-client';
import type { AuditEvent } from '../audit/audit-log.js';

/** Version of this contract, as the datapath speaks it. */
export const DATAPATH_CONTRACT_VERSION = '1.0';

/** The entry points the guide names: one missing is its `... function not found ...` line. */
export const GUIDE_ENTRY_POINTS = [
  'cp_get_supported_versions',
  'cp_initialize_p',
  'cp_get_processor_name_p',
  'cp_shutdown',
  'cp_client_registration_observer',
  'cp_configure',
] as const;
/** Every entry point; the ones the guide does not name, missing, fail the module's initialisation. */
export const ENTRY_POINTS = [...GUIDE_ENTRY_POINTS, 'cp_server_connected'] as const;
export type EntryPoint = (typeof ENTRY_POINTS)[number];

export interface ProcessorContext {
  home: string;
  config: Config;
  logger: Logger;
  datapathVersion: string;
  /** Where the processor registers its Prometheus metrics. */
  metrics: Registry;
  /** The partitions assigned to a registered client, in assignment order (labels or serials). */
  assignedPartitions(client: string): readonly string[];
  /** Writes an audit record (failed logins, locked roles); absent in harnesses. */
  audit?(event: AuditEvent): void;
}

export interface ServerKeyRequest {
  /** Label of the administrative partition. */
  partition: string;
  /** Its SO and Crypto Officer PIN. */
  pin: string;
  regenerate?: boolean;
}

export interface ServerKey {
  /** PKCS#8 PEM, for the TLS stack of this process only. */
  privateKeyPem: string;
  /** True when the key was made by this call. */
  created: boolean;
}

/** An admin request a processor serves beside the datapath's own (`ntls partition ...`). */
export type ProcessorAdminCommand = (args: Record<string, unknown>) => unknown;

export interface ProcessorName {
  name: string;
  version: string;
}

export interface ProcessorConfiguration {
  workers: number;
}

/** What the datapath knows of an authenticated connection. */
export interface ConnectionInfo {
  /** Connection id, unique for the daemon's life. */
  id: number;
  /** Registered client name. */
  client: string;
  /** "address/port" as the guide prints peers. */
  peer: string;
  /** SHA-256 fingerprint of the client certificate, hex ('' for a local connection). */
  fingerprint: string;
  /** A connection on the home's unix socket, from this host: it sees every partition. */
  local: boolean;
  /** Ends the connection from the processor's side (the datapath writes its closing lines). */
  terminate(): void;
}

export type RegistrationEvent =
  | { operation: 'registered'; client: string }
  | { operation: 'removed'; client: string }
  | { operation: 'assignments-changed'; client: string };

/** One client's processor instance, made by cp_server_connected. */
export interface ProcessorInstance {
  /** Answers the command protocol's version byte (p11-kit: the lower of the two). */
  negotiateVersion(clientVersion: number): number;
  /** Handles one request frame; the response frame echoes its call code. */
  process(request: Frame): Promise<Frame>;
  /** The answer to a request the datapath could not hold (memory budget exhausted). */
  refuse(request: Frame): Frame;
  /** The connection is gone; release everything it held. */
  close(): void;
}

export interface CommandProcessorModule {
  cp_get_supported_versions(): readonly string[];
  cp_initialize_p(context: ProcessorContext): Promise<void>;
  cp_get_processor_name_p(): ProcessorName;
  cp_shutdown(): Promise<void>;
  cp_client_registration_observer(event: RegistrationEvent): void;
  cp_configure(): ProcessorConfiguration;
  cp_server_connected(connection: ConnectionInfo): ProcessorInstance;
  /**
   * Optional: the server's TLS private key held in the HSM's administrative partition (keys in
   * hardware), made there on first use, or anew with `regenerate`.
   */
  cp_server_key?(request: ServerKeyRequest): Promise<ServerKey>;
  /** Optional: admin commands of the processor, by name ("partition.list" ...). */
  cp_admin_commands?(): ReadonlyMap<string, ProcessorAdminCommand>;
}
