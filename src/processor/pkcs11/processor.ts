// The built-in command processor: PKCS#11 over the p11-kit RPC protocol, served by the token
// model over the HSM's device (the software HSM in the service home, or a PKCS#11 module) and
// the USB tokens deployed beside it. Each client sees only its assigned partitions.
import { LineBudget } from '../../log/line-budget.js';
import { PassthroughDevice, SoftwareHsm, HsmAdminError } from '../../hsm/index.js';
import { operationMemory, singlePartMechanisms, softwareMechanisms } from '../../hsm/mechanisms/index.js';
import type { VirtualTokens } from '../../tokens/virtual-tokens.js';
import { ClientSlots, TokenModel, type Device, type TokenSummary } from '../../token/index.js';
import type {
  CommandProcessorModule, ConnectionInfo, ProcessorAdminCommand, ProcessorConfiguration, ProcessorContext, ProcessorInstance,
  ProcessorName, RegistrationEvent, ServerKey, ServerKeyRequest,
} from '../contract.js';
import { DATAPATH_CONTRACT_VERSION } from '../contract.js';
import { ApplicationIds } from './application-ids.js';
import { CallStatistics } from './call-statistics.js';
import { ClientInstance, closeSessionsOn } from './client-instance.js';
import { PartitionCommandError, partitionCommands } from './partition-commands.js';
import { serverKeyFromPartition } from './server-key.js';
import { imageHsmOptions, startVirtualTokens, tokenCommands } from './token-commands.js';

export const PROCESSOR_NAME = 'NTLS PKCS#11 Command Processor';
export const PROCESSOR_VERSION = '1.0';

interface Live {
  connection: ConnectionInfo;
  view: ClientSlots;
  instance: ClientInstance;
}

/** What runs between cp_initialize_p and cp_shutdown. */
interface Running {
  context: ProcessorContext;
  model: TokenModel;
  /** The device whose tokens are the partitions. */
  partitions: SoftwareHsm | PassthroughDevice;
  statistics: CallStatistics;
  applicationIds: ApplicationIds;
  /** USB-attached tokens (built-in HSM only); the deployed ones are mounted in the model. */
  virtualTokens: VirtualTokens | null;
  live: Map<number, Live>;
  /** `Client attempted unsupported command` lines, per client. */
  unsupportedLines: LineBudget;
}

/**
 * The token a client's assignment names: assignments record serial numbers (older ones a name).
 * Never a token label: another client's SO could set its own label to the word recorded.
 */
export function findPartition(tokens: readonly TokenSummary[], name: string): TokenSummary | undefined {
  return tokens.find((p) => p.serial === name) ?? tokens.find((p) => p.name === name);
}

export class Pkcs11Processor implements CommandProcessorModule {
  private running: Running | null = null;

  constructor() {
    // The datapath may call an entry point detached from the object.
    for (const name of Object.getOwnPropertyNames(Pkcs11Processor.prototype)) {
      if (name.startsWith('cp_')) Object.defineProperty(this, name, { value: (this[name as keyof this] as (...a: unknown[]) => unknown).bind(this) });
    }
  }

  private get state(): Running {
    if (!this.running) throw new HsmAdminError('NTLS_ERR_HSM_CLOSED', 'the command processor is not initialised');
    return this.running;
  }

  cp_get_supported_versions(): readonly string[] {
    return [DATAPATH_CONTRACT_VERSION];
  }

  cp_get_processor_name_p(): ProcessorName {
    return { name: PROCESSOR_NAME, version: PROCESSOR_VERSION };
  }

  async cp_initialize_p(context: ProcessorContext): Promise<void> {
    const { logger } = context;
    const settings = context.config.hsm;
    const statistics = new CallStatistics(context.metrics);
    let partitions: SoftwareHsm | PassthroughDevice;
    if (settings.backend === 'pkcs11') {
      partitions = await PassthroughDevice.open({
        module: settings.pkcs11.module!,
        tokens: settings.pkcs11.tokens.map((t) => ({ partition: t.partition, label: t.label ?? null, serial: t.serial ?? null, pin: t.pin ?? null })),
        callTimeoutMs: settings.pkcs11.callTimeout * 1000,
        maxFailedLogins: settings.maxFailedLogins,
        logger,
      });
    } else {
      operationMemory.limit = settings.operationMemoryBudget;
      const hsm = await SoftwareHsm.open({
        home: context.home,
        mechanisms: softwareMechanisms,
        singlePartMechanisms,
        logger,
        maxPartitions: settings.maxPartitions,
        maxSessions: settings.maxSessions,
        maxPartitionBytes: settings.maxPartitionBytes,
        pinPolicy: { minLength: settings.pinMinLength, maxLength: settings.pinMaxLength, maxFailedLogins: settings.maxFailedLogins },
        kdf: { cost: settings.kdfCost },
        postgres: context.config.store.backend === 'postgres' ? { url: context.config.store.url!, poolSize: context.config.store.poolSize } : undefined,
        // First start: one partition, uninitialised, for its SO to initialise (C_InitToken).
        initialPartition: 'default',
      });
      partitions = hsm;
    }
    const model = new TokenModel(partitions.libraryInfo);
    model.mountAll(partitions);
    this.running = {
      context, model, partitions, statistics, applicationIds: new ApplicationIds(model, logger, context.config.processor.maxAppIdsPerClient), virtualTokens: null, live: new Map(),
      unsupportedLines: new LineBudget(),
    };
    if (partitions instanceof SoftwareHsm) {
      this.followPartitions(partitions, model);
      this.running.virtualTokens = await this.startTokens(context, partitions, model);
    }
  }

  /**
   * A store shared with other nodes: partitions they make are mounted here, those they delete
   * unmounted (their sessions here end), and every live client's slots worked out again.
   */
  private followPartitions(hsm: SoftwareHsm, model: TokenModel): void {
    hsm.onPartitionChange((change) => {
      if (change.kind === 'removed') model.unmount(change.slot);
      else if (model.slots.find(change.slot) === undefined) model.mount(change.slot, hsm, change.slot);
      this.tokensChanged();
    });
  }

  /** What runs before each call and administrator request: the shared store's changes (none for SQLite). */
  private sync(): Promise<void> {
    const partitions = this.running?.partitions;
    return partitions instanceof SoftwareHsm ? partitions.sync() : Promise.resolve();
  }

  /** The USB tokens: a deployed one is a software device mounted at its slot while deployed. */
  private async startTokens(context: ProcessorContext, hsm: SoftwareHsm, model: TokenModel): Promise<VirtualTokens> {
    const tokens = await startVirtualTokens(context, hsm);
    for (const token of tokens.deployed()) model.mount(token.slot, token.hsm, 0);
    tokens.onChange((change) => {
      if (change.kind === 'undeployed' || change.kind === 'ejected') {
        // Before the token's HSM closes: its sessions end, clients lose the slot.
        model.unmount(change.slot);
      } else if (model.slots.find(change.slot) === undefined) {
        const deployed = tokens.deployed().find((t) => t.slot === change.slot);
        if (deployed) model.mount(deployed.slot, deployed.hsm, 0);
      }
      this.tokensChanged();
    });
    return tokens;
  }

  cp_configure(): ProcessorConfiguration {
    return { workers: this.state.context.config.processor.workers };
  }

  cp_client_registration_observer(event: RegistrationEvent): void {
    if (event.operation === 'removed') this.state.applicationIds.removeClient(event.client);
    this.reassign(event.client);
  }

  cp_server_connected(connection: ConnectionInfo): ProcessorInstance {
    const { context, model, statistics, applicationIds, live, unsupportedLines } = this.state;
    const entry: Live = { connection, view: this.viewFor(connection.client, connection.local), instance: undefined as never };
    entry.instance = new ClientInstance({
      model, logger: context.logger, connection, statistics, applicationIds, unsupportedLines,
      view: () => entry.view,
      maxOutputBytes: context.config.datapath.maxFrameBytes,
      commandKeepalive: context.config.processor.commandKeepalive,
      beforeCall: this.state.partitions instanceof SoftwareHsm && this.state.partitions.shared ? () => this.sync() : undefined,
      onClose: () => live.delete(connection.id),
      audit: context.audit ? (event) => context.audit!(event) : undefined,
    });
    live.set(connection.id, entry);
    return entry.instance;
  }

  async cp_server_key(request: ServerKeyRequest): Promise<ServerKey> {
    const { partitions, model } = this.state;
    if (!(partitions instanceof SoftwareHsm)) throw new Error('keys in hardware need the built-in HSM (hsm.backend software)');
    return serverKeyFromPartition(partitions, model, request);
  }

  cp_admin_commands(): ReadonlyMap<string, ProcessorAdminCommand> {
    const software = (): SoftwareHsm => {
      const { partitions } = this.state;
      if (partitions instanceof SoftwareHsm) return partitions;
      throw new PartitionCommandError('NTLS_ERR_PKCS11_BACKEND', 'the partitions are the tokens of the PKCS#11 module (hsm.backend pkcs11)',
        'map partitions in hsm.pkcs11.tokens and restart; create tokens with the module\'s own tools');
    };
    const adminPartition = () => (this.state.context.config.server.keysInHardware ? this.state.context.config.server.adminPartition : null);
    const commands = new Map(partitionCommands({
      model: () => this.state.model,
      partitions: (): Device => this.state.partitions,
      software,
      adminPartition: adminPartition(),
      liveClients: () => [...this.state.live.values()].map((l) => ({ client: l.connection.client, view: l.view })),
      tokensChanged: () => this.tokensChanged(),
    }));
    const noTokens = () => new PartitionCommandError('NTLS_ERR_PKCS11_BACKEND', 'USB tokens need the built-in HSM (hsm.backend software)',
      'back up and restore keys with the PKCS#11 module\'s own tools');
    for (const [name, command] of tokenCommands({
      hsm: () => {
        try {
          return software();
        } catch {
          throw noTokens();
        }
      },
      partitions: () => this.state.model.tokens(software()),
      tokens: () => {
        const { virtualTokens } = this.state;
        if (!virtualTokens) throw noTokens();
        return virtualTokens;
      },
      hsmOptions: imageHsmOptions(this.state.context.config),
      adminPartition: adminPartition(),
    })) commands.set(name, command);
    // `ntls home backup`: a consistent copy of the store while it serves (SQLite's online backup).
    commands.set('store.backup', async (args) => {
      if (typeof args.file !== 'string' || !args.file) throw new PartitionCommandError('NTLS_ERR_ADMIN_ARGUMENT', 'a file is missing', 'give the file');
      const store = software().store;
      if (!store.backup) throw new PartitionCommandError('NTLS_ERR_STORE_BACKUP', `the store is ${store.engine}: ntls home backup copies a SQLite store`, 'back up a PostgreSQL store with pg_dump (docs/ha.md)');
      await store.backup(args.file);
      return { file: args.file };
    });
    // Another node may have changed the partitions: this node's view first.
    for (const [name, command] of commands) {
      commands.set(name, async (...args: Parameters<ProcessorAdminCommand>) => {
        await this.sync();
        return command(...args);
      });
    }
    commands.set('processor.statistics', () => this.state.statistics.snapshot());
    commands.set('processor.application-ids', () => this.state.applicationIds.list());
    commands.set('processor.statistics.reset', () => {
      this.state.statistics.reset();
      return { reset: true };
    });
    return commands;
  }

  async cp_shutdown(): Promise<void> {
    const running = this.running;
    if (!running) return;
    for (const entry of [...running.live.values()]) entry.instance.close();
    running.model.close();
    await running.virtualTokens?.close();
    if (running.partitions instanceof SoftwareHsm) await running.partitions.shutdown();
    else await running.partitions.close();
    this.running = null;
  }

  /** What a client sees: its assigned partitions and tokens, in assignment order (a local connection: all). */
  private viewFor(client: string, local = false): ClientSlots {
    const { model, context } = this.state;
    const tokens = model.tokens();
    if (local) return new ClientSlots(tokens.map((t) => t.slotId));
    const slots = context.assignedPartitions(client)
      .map((name) => findPartition(tokens, name)?.slotId)
      .filter((slot): slot is number => slot !== undefined);
    return new ClientSlots(slots);
  }

  /**
   * Applies a client's new assignments to its live connections and to its application ids,
   * connected or not: revoked partitions' sessions end.
   */
  private reassign(client: string): void {
    for (const entry of this.state.live.values()) {
      if (entry.connection.client !== client) continue;
      const next = this.viewFor(client, entry.connection.local).keepingNumbersOf(entry.view);
      entry.instance.revokeSlots(entry.view.modelSlots().filter((slot) => !next.includes(slot)));
      entry.view = next;
    }
    const view = this.viewFor(client);
    const lost = this.state.model.tokens().map((t) => t.slotId).filter((slot) => !view.includes(slot));
    for (const app of this.state.applicationIds.applicationsOf(client)) closeSessionsOn(app, lost);
  }

  /** Tokens were mounted or unmounted: every live client's slots are worked out again. */
  private tokensChanged(): void {
    if (!this.running) return;
    for (const client of new Set([...this.running.live.values()].map((entry) => entry.connection.client))) this.reassign(client);
  }
}

export function createPkcs11Processor(): CommandProcessorModule {
  return new Pkcs11Processor();
}
