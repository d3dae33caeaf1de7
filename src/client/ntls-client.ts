// NtlsClient: the client library's entry point. It holds this client's credentials and one
// connection per server; `server(name)` gives that server's PKCS#11 API, `openToken` a logged-in
// session of the convenience layer. Connections open on first use and again after a loss.
import { CKF } from '../pkcs11/constants.js';
import type { Logger } from '../log/logger.js';
import { clientHome, loadClientConfig, type ClientConfig } from './config.js';
import { loadClientCredentials, loadServerEndpoint } from './credentials.js';
import { ClientError } from './errors.js';
import { Pkcs11Remote } from './pkcs11-remote.js';
import { RpcConnection, type ClientCredentials, type ConnectionSettings, type ServerEndpoint } from './rpc-connection.js';
import { TokenSession, type TokenSessionOptions } from './token-session.js';

export interface NtlsClientOptions extends ClientCredentials, ConnectionSettings {
  /** The servers, each with its registered certificate; the first is the default. */
  servers: ServerEndpoint[];
}

export interface FromConfigOptions {
  /** Config folder (default: $NTLS_CLIENT_HOME, $XDG_CONFIG_HOME/ntls-client, ~/.config/ntls-client). */
  folder?: string;
  /** Only this server (default: every configured one). */
  server?: string;
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

  constructor(readonly options: NtlsClientOptions) {
    if (options.servers.length === 0) throw new ClientError('NTLS_ERR_UNKNOWN_SERVER', 'no server given', 'give at least one server');
    for (const endpoint of options.servers) {
      this.remotes.set(endpoint.name, new Pkcs11Remote(new RpcConnection(endpoint, options, options)));
    }
  }

  /** A client for the servers of a client configuration folder (client.json). */
  static fromConfig(options: FromConfigOptions = {}): NtlsClient {
    const folder = options.folder ?? clientHome();
    const config: ClientConfig = loadClientConfig(folder);
    const credentials = loadClientCredentials(folder, config, options.logger);
    const names = options.server !== undefined ? [options.server] : config.servers.map((s) => s.name);
    const servers = (names.length ? names : [undefined]).map((name) => loadServerEndpoint(folder, config, name, options.logger));
    return new NtlsClient({
      ...credentials, servers,
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

  /** A session on a slot of a server, logged in when a PIN is given. */
  openToken(options: TokenSessionOptions & { server?: string } = {}): Promise<TokenSession> {
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
    await Promise.all([...this.remotes.values()].map((r) => r.connection.close()));
  }
}
