// The built-in command processor: PKCS#11 over the p11-kit RPC protocol, served from the
// software HSM in the service home. Each client sees only its assigned partitions.
import { Hsm, HsmAdminError, PassthroughHsm, type HsmBackend, type PartitionSummary } from '../../hsm/index.js';
import { CompositeBackend } from '../../hsm/composite.js';
import { singlePartMechanisms, softwareMechanisms } from '../../hsm/mechanisms/index.js';
import type { Logger } from '../../log/logger.js';
import type {
  CommandProcessorModule, ConnectionInfo, ProcessorAdminCommand, ProcessorContext, ProcessorInstance, RegistrationEvent,
  ServerKey, ServerKeyRequest,
} from '../contract.js';
import { DATAPATH_CONTRACT_VERSION } from '../contract.js';
import { ClientInstance } from './client-instance.js';
import { SlotView } from './slot-view.js';
import { PartitionCommandError, partitionCommands } from './partition-commands.js';
import { CallStatistics } from './call-statistics.js';
import { ApplicationIds } from './application-ids.js';
import { serverKeyFromPartition } from './server-key.js';
import { imageHsmOptions, startVirtualTokens, tokenCommands } from './token-commands.js';
import type { VirtualTokens } from '../../tokens/virtual-tokens.js';

export const PROCESSOR_NAME = 'NTLS PKCS#11 Command Processor';
export const PROCESSOR_VERSION = '1.0';

interface Live {
  connection: ConnectionInfo;
  view: SlotView;
  instance: ClientInstance;
}

/** Finds a partition by label or serial number. */
export function findPartition(partitions: readonly PartitionSummary[], name: string): PartitionSummary | undefined {
  return partitions.find((p) => p.serial === name) ?? partitions.find((p) => p.label === name);
}

export function createPkcs11Processor(): CommandProcessorModule {
  /** What clients are served: the partitions, and deployed USB tokens beside them. */
  let backend: HsmBackend | undefined;
  let hsm: Hsm | undefined;
  let passthrough: PassthroughHsm | undefined;
  let context: ProcessorContext | undefined;
  let logger: Logger | undefined;
  let statistics: CallStatistics | undefined;
  let applicationIds: ApplicationIds | undefined;
  /** USB-attached tokens; deployed() are the ones clients may be shown. */
  let virtualTokens: VirtualTokens | undefined;
  const live = new Map<number, Live>();

  const viewFor = (client: string, local = false): SlotView => {
    const partitions = backend!.listPartitions();
    if (local) return new SlotView(partitions.map((p) => p.slotId));
    const slots = context!.assignedPartitions(client)
      .map((name) => findPartition(partitions, name)?.slotId)
      .filter((slot): slot is number => slot !== undefined);
    return new SlotView(slots);
  };

  /** Applies a client's new assignments to its live connections: revoked partitions' sessions end. */
  const reassign = (client: string) => {
    for (const entry of live.values()) {
      if (entry.connection.client !== client) continue;
      const next = viewFor(client, entry.connection.local);
      entry.instance.revokeSlots(entry.view.hsmSlots().filter((slot) => !next.includes(slot)));
      entry.view = next;
    }
  };

  return {
    cp_get_supported_versions: () => [DATAPATH_CONTRACT_VERSION],
    cp_get_processor_name_p: () => ({ name: PROCESSOR_NAME, version: PROCESSOR_VERSION }),
    async cp_initialize_p(ctx: ProcessorContext) {
      context = ctx;
      logger = ctx.logger;
      statistics = new CallStatistics(ctx.metrics);
      const settings = ctx.config.hsm;
      if (settings.backend === 'pkcs11') {
        passthrough = await PassthroughHsm.open({
          module: settings.pkcs11.module!,
          tokens: settings.pkcs11.tokens.map((t) => ({ partition: t.partition, label: t.label ?? null, serial: t.serial ?? null, pin: t.pin ?? null })),
          callTimeoutMs: settings.pkcs11.callTimeout * 1000,
          maxFailedLogins: settings.maxFailedLogins,
          logger,
        });
        backend = passthrough;
        applicationIds = new ApplicationIds(backend, logger);
        return;
      }
      hsm = await Hsm.open({
        home: ctx.home,
        mechanisms: softwareMechanisms,
        singlePartMechanisms,
        logger,
        maxPartitions: settings.maxPartitions,
        pinPolicy: { minLength: settings.pinMinLength, maxLength: settings.pinMaxLength, maxFailedLogins: settings.maxFailedLogins },
        kdf: { cost: settings.kdfCost },
      });
      const composite = new CompositeBackend(hsm, () => virtualTokens?.deployed().map((t) => ({ slot: t.slot, backend: t.hsm, memberSlot: 0 })) ?? []);
      backend = composite;
      applicationIds = new ApplicationIds(composite, logger);
      // First start: one partition, uninitialised, for its SO to initialise (C_InitToken).
      if (hsm.listPartitions().length === 0) await hsm.createPartition({ label: 'default' });
      virtualTokens = await startVirtualTokens(ctx, hsm);
      virtualTokens.onChange((change) => {
        if (change.kind === 'undeployed' || change.kind === 'ejected') {
          // Before the token's HSM closes: its sessions end, clients lose the slot.
          const gone = virtualTokens?.deployed().find((t) => t.slot === change.slot);
          for (const entry of live.values()) if (entry.view.includes(change.slot)) entry.instance.revokeSlots([change.slot]);
          if (gone) composite.removed(gone.hsm);
        }
        for (const client of new Set([...live.values()].map((entry) => entry.connection.client))) reassign(client);
      });
    },
    cp_configure: () => ({ workers: context!.config.processor.workers }),
    cp_client_registration_observer(event: RegistrationEvent) {
      if (event.operation === 'assignments-changed' || event.operation === 'registered') reassign(event.client);
    },
    cp_server_connected(connection: ConnectionInfo): ProcessorInstance {
      if (!backend || !logger) throw new Error('command processor used before cp_initialize_p');
      const entry: Live = {
        connection,
        view: viewFor(connection.client, connection.local),
        instance: undefined as never,
      };
      entry.instance = new ClientInstance({
        hsm: backend, logger, connection, statistics: statistics!, applicationIds: applicationIds!,
        view: () => entry.view,
        maxOutputBytes: context!.config.datapath.maxFrameBytes,
        commandKeepalive: context!.config.processor.commandKeepalive,
        onClose: () => live.delete(connection.id),
      });
      live.set(connection.id, entry);
      return entry.instance;
    },
    async cp_server_key(request: ServerKeyRequest): Promise<ServerKey> {
      if (!hsm) throw new Error('command processor used before cp_initialize_p');
      return serverKeyFromPartition(hsm, request);
    },
    cp_admin_commands(): ReadonlyMap<string, ProcessorAdminCommand> {
      const commands = new Map(partitionCommands({
        backend: () => {
          // The partitions' own backend: the built-in HSM or the module.
          const partitions = hsm ?? passthrough;
          if (!partitions) throw new HsmAdminError('HSM_CLOSED', 'the HSM is not open');
          return partitions;
        },
        assignable: () => {
          if (!backend) throw new HsmAdminError('HSM_CLOSED', 'the HSM is not open');
          return backend;
        },
        hsm: () => {
          if (passthrough) {
            throw new PartitionCommandError('NTLS_ERR_PKCS11_BACKEND', 'the partitions are the tokens of the PKCS#11 module (hsm.backend pkcs11)',
              'map partitions in hsm.pkcs11.tokens and restart; create tokens with the module\'s own tools');
          }
          if (!hsm) throw new HsmAdminError('HSM_CLOSED', 'the HSM is not open');
          return hsm;
        },
        liveClients: () => [...live.values()].map((l) => ({ client: l.connection.client, view: l.view })),
        adminPartition: context!.config.server.keysInHardware ? context!.config.server.adminPartition : null,
        revokeEverywhere: (slot: number) => {
          for (const entry of live.values()) if (entry.view.includes(slot)) entry.instance.revokeSlots([slot]);
        },
      }));
      const noTokens = () => new PartitionCommandError('NTLS_ERR_PKCS11_BACKEND', 'USB tokens need the built-in HSM (hsm.backend software)',
        'back up and restore keys with the PKCS#11 module\'s own tools');
      for (const [name, command] of tokenCommands({
        hsm: () => {
          if (passthrough) throw noTokens();
          if (!hsm) throw new HsmAdminError('HSM_CLOSED', 'the HSM is not open');
          return hsm;
        },
        tokens: () => {
          if (!virtualTokens) throw noTokens();
          return virtualTokens;
        },
        hsmOptions: imageHsmOptions(context!.config),
        adminPartition: context!.config.server.keysInHardware ? context!.config.server.adminPartition : null,
      })) commands.set(name, command);
      commands.set('processor.statistics', () => statistics!.snapshot());
      commands.set('processor.application-ids', () => applicationIds!.list());
      commands.set('processor.statistics.reset', () => {
        statistics!.reset();
        return { reset: true };
      });
      return commands;
    },
    async cp_shutdown() {
      for (const entry of [...live.values()]) entry.instance.close();
      await virtualTokens?.close();
      virtualTokens = undefined;
      hsm?.close();
      await passthrough?.close();
      hsm = undefined;
      passthrough = undefined;
      backend = undefined;
    },
  };
}
