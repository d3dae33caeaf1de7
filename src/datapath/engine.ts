// The datapath engine: the listening socket, admission limits, the TLS context in force, and
// the set of live connections. It frames and delivers; the command processor decides.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { SecureContext } from 'node:tls';
import type { Config } from '../config/schema.js';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import type { CommandProcessorModule } from '../processor/contract.js';
import type { ClientRegistry } from '../registry/client-registry.js';
import { existsSync, rmSync } from 'node:fs';
import { listenOwnerOnly } from '../local-socket/listen-owner-only.js';
import { Connection, type ConnectionDependencies } from './connection.js';
import type { DatapathConnections } from './datapath-view.js';
import { plainAddress } from './peer.js';
import { DatapathStatistics } from './statistics.js';
import { ClientShares, MemoryBudget } from './memory-budget.js';
import { PendingPool } from './pending-pool.js';
import { applyTcpKeepalive } from './tcp-keepalive.js';
import { NtlsError } from '../errors/ntls-error.js';

/** How long close() waits for net.Server's own close once this process's connections have ended. */
const HANDED_OFF_CLOSE_WAIT_MS = 1000;

/** The listening socket could not be opened; `cause` is the system's error (EADDRINUSE, ...). */
export class BindError extends NtlsError {
  declare readonly code: 'RC_SOCKET_ERROR' | 'RC_SOCKET_ADDRESS_INVALID';
  declare readonly cause: NodeJS.ErrnoException;
  constructor(readonly address: string, readonly port: number, cause: NodeJS.ErrnoException) {
    super(unresolved(cause) ? 'RC_SOCKET_ADDRESS_INVALID' : 'RC_SOCKET_ERROR', `cannot listen on ${address}:${port}: ${cause.code ?? cause.message}`, { cause });
  }
}

/** server.bind named no address: a host name that does not resolve, or no IP address at all. */
function unresolved(error: NodeJS.ErrnoException): boolean {
  return error.code === 'ENOTFOUND' || error.code === 'EAI_AGAIN' || error.code === 'EAI_FAIL';
}

export interface EngineOptions {
  config: Config;
  logger: Logger;
  registry: ClientRegistry;
  /** What the datapath needs of the command processor: an instance per connection. */
  processor: Pick<CommandProcessorModule, 'cp_server_connected'>;
  serverName: string;
  secureContext: SecureContext;
  /**
   * Offered each new TCP connection of the TLS port before anything is read from it: true when
   * another process (a datapath worker) has taken it (src/daemon/placement.ts).
   */
  handOff?: (socket: Socket) => boolean;
}

/** Writes a line at most once a second, so a flood cannot flood the log. */
class RateLimitedLine {
  private last = 0;
  constructor(private readonly write: () => void) {}
  hit(): void {
    const now = Date.now();
    if (now - this.last < 1000) return;
    this.last = now;
    this.write();
  }
}

/** What one registered client may have: a quarter of the whole unless configured. */
export function clientLimits(settings: Config['datapath']): { connections: number; memoryBytes: number } {
  return {
    connections: settings.maxConnectionsPerClient ?? Math.max(1, Math.floor(settings.maxConnections / 4)),
    memoryBytes: settings.clientMemoryBudget ?? Math.floor(settings.memoryBudget / 4),
  };
}

export class DatapathEngine {
  readonly statistics = new DatapathStatistics();
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  /** Connections not yet through the identity exchange (see pending-pool.ts for who makes room for whom). */
  private readonly pending: PendingPool<Connection>;
  private readonly memory: MemoryBudget;
  private readonly clientShares: ClientShares;
  private readonly connectionsByClient = new Map<string, number>();
  private readonly perClient: { connections: number; memoryBytes: number };
  private nextId = 1;
  private context: SecureContext;
  private readonly tooManyConnections: RateLimitedLine;
  private readonly tooManyPending: RateLimitedLine;

  constructor(private readonly options: EngineOptions) {
    this.context = options.secureContext;
    this.memory = new MemoryBudget(options.config.datapath.memoryBudget);
    this.perClient = clientLimits(options.config.datapath);
    this.pending = new PendingPool({ total: options.config.datapath.maxPendingConnections, perAddress: options.config.datapath.maxPendingPerAddress });
    this.clientShares = new ClientShares(this.perClient.memoryBytes);
    // Paused: a connection handed to a worker must reach it with not a byte read here.
    this.server = createServer({ pauseOnConnect: true, noDelay: true }, (socket) => {
      if (!this.options.handOff?.(socket)) this.accept(socket);
    });
    this.tooManyConnections = new RateLimitedLine(() => options.logger.log(Catalogue.newConnectionFailed));
    this.tooManyPending = new RateLimitedLine(() => options.logger.log(Catalogue.tcpAcceptFailed));
  }

  /** Binds and listens; rejects with BindError after writing the guide's three lines. */
  listen(): Promise<AddressInfo> {
    const { bind, port } = this.options.config.server;
    const { logger } = this.options;
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        // No address to bind to is the guide's port-monitoring line; a bind that failed, its own.
        logger.log(unresolved(error) ? Catalogue.hostIpAddressUnavailable : Catalogue.listeningPortBindFailed);
        logger.log(Catalogue.serverSocketInitFailed);
        logger.log(Catalogue.initializationFailed);
        reject(new BindError(bind, port, error));
      };
      this.server.once('error', onError);
      this.server.listen({ host: bind, port, backlog: 511 }, () => {
        this.server.off('error', onError);
        // Once listening: a failed bind has the three lines above, not this one as well.
        this.server.on('error', () => logger.log(Catalogue.acceptFailed));
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /**
   * Serves the same protocol on a unix socket (owner-only) for programs on this host. Its
   * connections skip TLS and the identity exchange: the socket's permissions authenticate them.
   */
  async listenLocal(path: string): Promise<void> {
    if (existsSync(path)) rmSync(path, { force: true });
    const server = createServer((socket) => this.acceptLocal(socket));
    await listenOwnerOnly(server, path);
    this.localServer = server;
    this.localPath = path;
  }

  /** New connections use this context; live ones keep theirs. */
  replaceSecureContext(context: SecureContext): void {
    this.context = context;
  }

  /** Ends every authenticated connection of a client at once; returns how many. */
  terminateClient(name: string): number {
    let ended = 0;
    for (const connection of this.connections) {
      if (connection.authenticated && !connection.local && connection.clientName === name) {
        connection.terminate();
        ended++;
      }
    }
    return ended;
  }

  /**
   * Ends every connection whose certificate is no longer registered under the name it connected
   * as (removed from the verify location, or replaced): unregistration ends live links too.
   */
  terminateUnregistered(): number {
    let ended = 0;
    for (const connection of this.connections) {
      if (!connection.authenticated || connection.local) continue;
      const now = this.options.registry.byFingerprint(connection.certificateFingerprint);
      if (now?.name === connection.clientName) continue;
      connection.terminate();
      ended++;
    }
    return ended;
  }

  /** Request bytes held now: in all, and by one client's connections. */
  memoryInUse(client?: string): number {
    return client === undefined ? this.memory.inUse : this.clientShares.inUse(client);
  }

  liveConnections(): readonly Connection[] {
    return [...this.connections];
  }

  /** How many connections are open, and the authenticated ones by client. */
  connectionCounts(): DatapathConnections {
    const byClient: Record<string, number> = {};
    for (const connection of this.connections) {
      if (connection.authenticated && connection.clientName) byClient[connection.clientName] = (byClient[connection.clientName] ?? 0) + 1;
    }
    return { total: this.connections.size, byClient };
  }

  /** Stops accepting, ends every connection, and waits (bounded) for them to close. */
  async close(graceMs = 3000): Promise<void> {
    // server.close() calls back only once every connection has ended, so end them meanwhile.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const localClosed = this.localServer ? new Promise<void>((resolve) => this.localServer!.close(() => resolve())) : Promise.resolve();
    for (const connection of this.connections) connection.terminate();
    const deadline = Date.now() + graceMs;
    while (this.connections.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    for (const connection of this.connections) connection.raw.destroy();
    // Every connection of this process has ended. server.close() may still wait on sockets
    // handed to datapath workers: Node counts them until the worker says they closed, and a
    // server whose workers have all exited since (a worker killed, then replaced by one that got
    // none) never calls back (net.Server.close: _connections++ with no worker left to answer).
    // Those sockets are the workers' (WorkerPool.stop ends them): waited for a moment, not more.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, HANDED_OFF_CLOSE_WAIT_MS);
      void closed.then(() => { clearTimeout(timer); resolve(); });
    });
    await localClosed;
    if (this.localPath) rmSync(this.localPath, { force: true });
  }

  private connectionHook: (() => void) | null = null;
  private localServer: Server | null = null;
  private localPath: string | null = null;

  private acceptLocal(socket: Socket): void {
    const { logger, config } = this.options;
    if (this.connections.size >= config.datapath.maxConnections) {
      this.statistics.connectionsRejected++;
      this.tooManyConnections.hit();
      socket.destroy();
      return;
    }
    this.statistics.connectionsTotal++;
    const connection = new Connection(this.nextId++, socket, this.connectionDependencies(() => undefined), true);
    logger.log(Catalogue.incomingConnection, { peer: connection.peer });
    this.connections.add(connection);
    connection.start();
  }

  private connectionDependencies(onSettled: () => void): ConnectionDependencies {
    const { logger, config } = this.options;
    return {
      logger,
      memory: this.memory,
      settings: config.datapath,
      ipCheck: config.clients.ipCheck,
      serverName: this.options.serverName,
      secureContext: () => this.context,
      clientByFingerprint: (fingerprint) => this.options.registry.byFingerprint(fingerprint),
      clientShares: this.clientShares,
      admitClient: (client) => {
        const now = this.connectionsByClient.get(client) ?? 0;
        if (now >= this.perClient.connections) return false;
        this.connectionsByClient.set(client, now + 1);
        return true;
      },
      connectionRefused: () => this.tooManyConnections.hit(),
      leaveClient: (client) => {
        const left = (this.connectionsByClient.get(client) ?? 1) - 1;
        if (left <= 0) this.connectionsByClient.delete(client);
        else this.connectionsByClient.set(client, left);
      },
      processor: this.options.processor,
      statistics: this.statistics,
      onSettled,
      onClosed: (c) => this.connections.delete(c),
    };
  }

  /** A connection the main process accepted and handed to this process (a datapath worker). */
  adopt(socket: Socket): void {
    socket.setNoDelay(true);
    this.accept(socket);
  }

  /** Runs `hook` outside any handler when the next connection arrives (crash-handler tests). */
  onNextConnection(hook: () => void): void {
    this.connectionHook = hook;
  }

  private accept(socket: Socket): void {
    const { logger, config } = this.options;
    if (this.connectionHook) {
      const hook = this.connectionHook;
      this.connectionHook = null;
      setImmediate(hook);
    }
    const settings = config.datapath;
    const address = plainAddress(socket.remoteAddress);
    logger.log(Catalogue.incomingConnection, { peer: `${address}/${socket.remotePort ?? 0}` });
    this.statistics.connectionsTotal++;
    if (this.connections.size >= settings.maxConnections) {
      this.statistics.connectionsRejected++;
      this.tooManyConnections.hit();
      socket.destroy();
      return;
    }
    const admission = this.pending.admit(address);
    // The line says a pending limit was reached (once a second at most), whether room was made or not.
    if (admission !== 'room') this.tooManyPending.hit();
    if (admission === 'made-room') this.statistics.pendingEvicted++;
    if (admission === 'address-full' || admission === 'pool-full') {
      this.statistics.connectionsRejected++;
      socket.destroy();
      return;
    }
    try {
      applyTcpKeepalive(socket, config.tcpKeepalive);
    } catch {
      // The connection works without probes; the start line reported what is configured.
    }
    socket.on('error', () => { /* reported through the TLS socket */ });
    let connection: Connection;
    try {
      connection = new Connection(this.nextId++, socket, this.connectionDependencies(() => this.pending.remove(address, connection)));
    } catch {
      logger.log(Catalogue.connectionInstanceCreateFailed, { peer: `${address}/${socket.remotePort ?? 0}` });
      socket.destroy();
      return;
    }
    this.pending.add(address, connection);
    this.connections.add(connection);
    connection.start();
  }
}
