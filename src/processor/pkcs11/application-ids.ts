// Application IDs: a client process may name itself with an application id (major, minor) so
// that its sessions and login state belong to that id rather than to one connection. Several
// connections of the same client with the same id share them. A mapping is transient (removed,
// with its sessions, when its last connection ends) until OpenAccess makes it persistent: then
// it survives disconnects, so a login survives a reconnecting process, until CloseAccess.
import { Catalogue } from '../../log/catalogue.js';
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import type { Logger } from '../../log/logger.js';
import type { Application, TokenModel } from '../../token/index.js';
import type { ApplicationId } from './calls.js';

interface Mapping {
  key: string;
  id: ApplicationId;
  app: Application;
  persistent: boolean;
  connections: Set<number>;
}

const PERSISTENT_BIT = 0x80000000;
const DEFAULT_MAX_PERSISTENT = 256;

export interface AppIdSummary {
  client: string;
  major: number;
  minor: number;
  persistent: boolean;
  connections: number;
}

export class ApplicationIds {
  /** The owner of the local socket's application ids: '@' is in no client name (client-registry.ts). */
  static readonly LOCAL_OWNER = '@local';

  private readonly mappings = new Map<string, Mapping>();

  /** `maxPersistentPerClient`: persistent ids one client may hold (processor.maxAppIdsPerClient); they outlive its links. */
  constructor(private readonly model: TokenModel, private readonly logger: Logger, private readonly maxPersistentPerClient = DEFAULT_MAX_PERSISTENT) {}

  private static key(client: string, id: ApplicationId): string {
    return `appid:${client}:${id.major}:${id.minor}`;
  }

  private static shown(id: ApplicationId, connections: number): string {
    return `${id.major.toString(16)} : ${id.minor} : ${connections}`;
  }

  /** The application a connection uses once it names its id; counts the connection. */
  attach(client: string, id: ApplicationId, connection: number, peer: string): Application {
    const key = ApplicationIds.key(client, id);
    let mapping = this.mappings.get(key);
    if (mapping) {
      this.logger.log(Catalogue.appIdMappingExists, { appId: ApplicationIds.shown(id, mapping.connections.size), mapping: `${connection} : ${mapping.connections.size}`, peer });
    } else {
      mapping = { key, id, app: this.model.application(key, client), persistent: false, connections: new Set() };
      this.mappings.set(key, mapping);
      this.logger.log(Catalogue.transientAppIdCreated, { appId: ApplicationIds.shown(id, 0), mapping: `${connection} : 0`, peer });
    }
    mapping.connections.add(connection);
    this.logger.log(Catalogue.openSessionAppId, { appId: ApplicationIds.shown(id, mapping.connections.size), mapping: `${connection} : ${mapping.connections.size}`, peer });
    return mapping.app;
  }

  /** CKR_DEVICE_MEMORY when OpenAccess of this id would pass the client's most persistent ids. */
  checkOpenAccess(client: string, id: ApplicationId): void {
    if (!this.mappings.get(ApplicationIds.key(client, id))?.persistent && this.persistentCount(client) >= this.maxPersistentPerClient) {
      throw new Pkcs11Error(CKR.DEVICE_MEMORY, `client ${client} holds ${this.maxPersistentPerClient} persistent application ids`);
    }
  }

  /** OpenAccess: the mapping outlives its connections. */
  openAccess(client: string, id: ApplicationId, connection: number, peer: string): Application {
    this.checkOpenAccess(client, id);
    const app = this.attach(client, id, connection, peer);
    const mapping = this.mappings.get(ApplicationIds.key(client, id))!;
    this.logger.log(Catalogue.openAccess, { appId: ApplicationIds.shown(id, mapping.connections.size), minor: id.minor, peer });
    if (!mapping.persistent) {
      mapping.persistent = true;
      this.logger.log(Catalogue.appIdMadePersistent, {
        mapping: `${connection} : ${mapping.connections.size}`,
        persistent: `${((PERSISTENT_BIT | connection) >>> 0).toString(16)} : ${mapping.connections.size}`, peer,
      });
    }
    return app;
  }

  /** CloseAccess: the mapping ends with its sessions and login state. */
  closeAccess(client: string, id: ApplicationId, connection: number, peer: string): void {
    const key = ApplicationIds.key(client, id);
    const mapping = this.mappings.get(key);
    this.logger.log(Catalogue.closingAccess, { appId: ApplicationIds.shown(id, mapping?.connections.size ?? 0), peer });
    if (!mapping) return;
    if (!mapping.persistent) {
      this.logger.log(Catalogue.closeAccessAppIdNotPersistent, { major: id.major.toString(16), mapping: `${connection} : ${mapping.connections.size}`, peer });
    }
    this.remove(mapping, connection, peer);
  }

  /** A connection ended: a transient mapping without connections left goes with it. */
  detach(key: string, connection: number, peer: string): void {
    const mapping = this.mappings.get(key);
    if (!mapping) return;
    mapping.connections.delete(connection);
    if (mapping.persistent || mapping.connections.size > 0) return;
    mapping.app.finalize();
    this.mappings.delete(key);
    this.logger.log(Catalogue.transientAppIdRemoved, { mapping: `${connection} / ${connection} : 0`, peer });
  }

  list(): AppIdSummary[] {
    return [...this.mappings.values()].map((m) => ({
      client: m.key.split(':')[1]!, major: m.id.major, minor: m.id.minor, persistent: m.persistent, connections: m.connections.size,
    }));
  }

  private persistentCount(client: string): number {
    return this.of(client).filter((mapping) => mapping.persistent).length;
  }

  private of(client: string): Mapping[] {
    const prefix = `appid:${client}:`;
    return [...this.mappings.values()].filter((mapping) => mapping.key.startsWith(prefix));
  }

  /** The applications of a client's ids, connected or not (persistent ids outlive their links). */
  applicationsOf(client: string): Application[] {
    return this.of(client).map((mapping) => mapping.app);
  }

  /** The client was removed from the registry: its ids end with their sessions and logins. */
  removeClient(client: string): void {
    for (const mapping of this.of(client)) {
      mapping.app.finalize();
      this.mappings.delete(mapping.key);
    }
  }

  private remove(mapping: Mapping, connection: number, peer: string): void {
    mapping.app.finalize();
    this.mappings.delete(mapping.key);
    this.logger.log(Catalogue.appIdMappingRemoved, { appId: ApplicationIds.shown(mapping.id, mapping.connections.size), mapping: `${connection} : 0`, peer });
  }

  static keyOf(client: string, id: ApplicationId): string {
    return ApplicationIds.key(client, id);
  }
}
