// NtlsClient: the client library's entry point. It holds this client's credentials and one
// connection per server; `server(name)` gives that server's PKCS#11 API, `openToken` a logged-in
// session of the convenience layer. Connections open on first use and again after a loss.
import { CKF } from '../pkcs11/constants.js';
import type { Logger } from '../log/logger.js';
import { openClientLog } from './client-log.js';
import { clientHome, findGroup, loadClientConfig, type ClientConfig, type HaGroupEntry } from './config.js';
import { loadClientCredentials, loadServerEndpoint } from './credentials.js';
import { ClientError } from './errors.js';
import { HaConnection } from './ha-connection.js';
import { HaGroup, type GroupStatus, type HaGroupSettings } from './ha-group.js';
import { StatusPublisher } from './ha-status.js';
import { Pkcs11Remote } from './pkcs11-remote.js';
import { RpcConnection, type ClientCredentials, type ConnectionSettings, type ServerEndpoint } from './rpc-connection.js';
import { TokenSession, type TokenSessionOptions } from './token-session.js';

export interface NtlsClientOptions extends ClientCredentials, ConnectionSettings {
  /** The servers, each with its registered certificate; the first is the default. */
  servers: ServerEndpoint[];
  /** HA groups: each one virtual slot over its members (docs/ha.md). */
  groups?: HaGroupSettings[];
  /** Where HA group events are logged (member lost, recovered, failover). */
  logger?: Logger;
  /** Config folder where the groups' state is published for `ntls-client ha show`. */
  statusFolder?: string;
}

/** An HA group's settings from client.json: its members' addresses and certificates. */
export function groupSettings(folder: string, config: ClientConfig, entry: HaGroupEntry, logger?: Logger): HaGroupSettings {
  return {
    name: entry.name, partition: entry.partition, haOnly: entry.haOnly,
    recoveryIntervalMs: entry.recoveryInterval * 1000, recoveryRetries: entry.recoveryRetries,
    members: entry.members.map((name) => loadServerEndpoint(folder, config, name, logger)),
  };
}

export interface FromConfigOptions {
  /** Config folder (default: $NTLS_CLIENT_HOME, $XDG_CONFIG_HOME/ntls-client, ~/.config/ntls-client). */
  folder?: string;
  /** Only this server (default: every configured one). */
  server?: string;
  /** Only this HA group (default: every configured one). */
  group?: string;
  /** Where file problems are logged in the guide's words. */
  logger?: Logger;
}

/** One slot as `verify` lists it. */
export interface SlotSummary {
  server: string;
  slot: number;
  label: string;
  serial: string;
  model: string;
  tokenInitialized: boolean;
  userPinInitialized: boolean;
}

export class NtlsClient {
  private readonly remotes = new Map<string, Pkcs11Remote>();
  private readonly groups = new Map<string, { group: HaGroup; remote: Pkcs11Remote<HaConnection>; publisher: StatusPublisher | null }>();

  constructor(readonly options: NtlsClientOptions) {
    if (options.servers.length === 0) throw new ClientError('NTLS_ERR_UNKNOWN_SERVER', 'no server given', 'give at least one server');
    for (const endpoint of options.servers) {
      this.remotes.set(endpoint.name, new Pkcs11Remote(new RpcConnection(endpoint, options, options)));
    }
    for (const settings of options.groups ?? []) {
      const group = new HaGroup(settings, options, options, options.logger);
      const publisher = options.statusFolder ? new StatusPublisher(options.statusFolder, group) : null;
      this.groups.set(settings.name, { group, remote: new Pkcs11Remote(new HaConnection([group], options, options)), publisher });
    }
  }

  /** A client for the servers of a client configuration folder (client.json). */
  static fromConfig(options: FromConfigOptions = {}): NtlsClient {
    const folder = options.folder ?? clientHome();
    const config: ClientConfig = loadClientConfig(folder);
    const credentials = loadClientCredentials(folder, config, options.logger);
    const names = options.server !== undefined ? [options.server] : config.servers.map((s) => s.name);
    const servers = (names.length ? names : [undefined]).map((name) => loadServerEndpoint(folder, config, name, options.logger));
    const entries = options.group !== undefined ? [findGroup(config, options.group)] : config.haGroups;
    const logger = options.logger ?? (entries.length ? openClientLog(folder) : undefined);
    const groups = entries.map((entry) => groupSettings(folder, config, entry, logger));
    return new NtlsClient({
      ...credentials, servers, groups, logger, statusFolder: folder,
      timeoutMs: config.receiveTimeout * 1000,
      tcpKeepalive: { enabled: config.tcpKeepalive.enabled, idleSeconds: config.tcpKeepalive.idle },
    });
  }

  get serverNames(): string[] {
    return [...this.remotes.keys()];
  }

  /** The PKCS#11 API of one server (default: the first). */
  server(name?: string): Pkcs11Remote {
    const remote = name === undefined ? this.remotes.values().next().value : this.remotes.get(name);
    if (!remote) throw new ClientError('NTLS_ERR_UNKNOWN_SERVER', `no server named "${name}"`, `known: ${this.serverNames.join(', ')}`);
    return remote;
  }

  get groupNames(): string[] {
    return [...this.groups.keys()];
  }

  /**
   * The PKCS#11 API of an HA group: slot 0 is the group's virtual slot (then, unless the group
   * is HA-only, its members' own slots). Calls are balanced over the members and fail over.
   */
  group(name: string): Pkcs11Remote<HaConnection> {
    return this.haGroup(name).remote;
  }

  /** Each member's state, load, calls and last error, as this client sees them now. */
  groupStatus(name: string): GroupStatus {
    return this.haGroup(name).group.status();
  }

  /** A session on a slot of a server (or of an HA group's virtual slot), logged in when a PIN is given. */
  openToken(options: TokenSessionOptions & { server?: string; group?: string } = {}): Promise<TokenSession> {
    if (options.group !== undefined) return TokenSession.open(this.group(options.group), options);
    return TokenSession.open(this.server(options.server), options);
  }

  /** The slots one server shows this client, with their partitions' labels and serials. */
  async listSlots(serverName?: string): Promise<SlotSummary[]> {
    const remote = this.server(serverName);
    const slots = await remote.getSlotList(true);
    const infos = await Promise.all(slots.map((slot) => remote.getTokenInfo(slot)));
    return slots.map((slot, i) => ({
      server: remote.serverName, slot, label: infos[i]!.label, serial: infos[i]!.serialNumber, model: infos[i]!.model,
      tokenInitialized: (infos[i]!.flags & CKF.TOKEN_INITIALIZED) !== 0,
      userPinInitialized: (infos[i]!.flags & CKF.USER_PIN_INITIALIZED) !== 0,
    }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.groups.values()].map(async ({ group, remote, publisher }) => {
      await remote.connection.close();
      group.close();
      publisher?.close();
    }));
    await Promise.all([...this.remotes.values()].map((r) => r.connection.close()));
  }

  private haGroup(name: string): { group: HaGroup; remote: Pkcs11Remote<HaConnection>; publisher: StatusPublisher | null } {
    const found = this.groups.get(name);
    if (!found) throw new ClientError('NTLS_ERR_UNKNOWN_GROUP', `no HA group named "${name}"`, `known: ${this.groupNames.join(', ') || 'none'}`);
    return found;
  }
}
