// `ntls partition ...`: the HSM administrator's requests, served by the processor that owns the
// HSM. Failures carry a stable code and a hint, which the admin channel passes on.
import { Hsm, HsmAdminError, type HsmBackend, type PartitionSummary } from '../../hsm/index.js';
import { Pkcs11Error } from '../../pkcs11/constants.js';
import type { ProcessorAdminCommand } from '../contract.js';
import type { SlotView } from './slot-view.js';

export class PartitionCommandError extends Error {
  constructor(readonly code: string, message: string, readonly hint?: string) {
    super(message);
    this.name = 'PartitionCommandError';
  }
}

export interface PartitionCommandContext {
  /** The partitions' backend. */
  backend(): HsmBackend;
  /** What clients may be assigned: the partitions and, beside them, deployed USB tokens. */
  assignable(): HsmBackend;
  /** The built-in HSM, for what only it can do (create and delete partitions). */
  hsm(): Hsm;
  /** The administrative partition holding the server key (keys in hardware), if any. */
  adminPartition: string | null;
  liveClients(): Array<{ client: string; view: SlotView }>;
  revokeEverywhere(hsmSlot: number): void;
}

function name(args: Record<string, unknown>): string {
  const value = args.partition;
  if (typeof value !== 'string' || !value) throw new PartitionCommandError('NTLS_ERR_ADMIN_ARGUMENT', 'a partition (label or serial number) is missing', 'give --partition');
  return value;
}

/** A partition by serial or label, or NTLS_ERR_UNKNOWN_PARTITION. */
export function find(hsm: HsmBackend, partition: string): PartitionSummary {
  const all = hsm.listPartitions();
  const found = all.find((p) => p.serial === partition) ?? all.find((p) => p.label === partition);
  if (!found) throw new PartitionCommandError('NTLS_ERR_UNKNOWN_PARTITION', `no partition labelled or numbered "${partition}"`, 'see `ntls partition list`');
  return found;
}

function adminFailure(error: unknown): never {
  if (error instanceof HsmAdminError) {
    const hints: Record<string, string> = {
      PARTITION_LIMIT: 'delete a partition or raise hsm.maxPartitions',
      LABEL_INVALID: 'a label is 1-32 bytes of printable text',
    };
    throw new PartitionCommandError(`NTLS_ERR_${error.code}`, error.message, hints[error.code]);
  }
  if (error instanceof Pkcs11Error) throw new PartitionCommandError(error.code, error.message, 'check the SO PIN against the PIN policy (hsm.pinMinLength ...)');
  throw error;
}

export function partitionCommands(context: PartitionCommandContext): ReadonlyMap<string, ProcessorAdminCommand> {
  const describe = (p: PartitionSummary) => {
    const clients = context.liveClients().filter((c) => c.view.includes(p.slotId)).map((c) => c.client);
    return { ...p, sessions: context.backend().sessionCount(p.slotId), connectedClients: [...new Set(clients)] };
  };
  const commands: Record<string, ProcessorAdminCommand> = {
    'partition.list': () => context.backend().listPartitions().map(describe),
    'partition.show': (args) => describe(find(context.backend(), name(args))),
    'partition.resolve': (args) => {
      const found = find(context.assignable(), name(args));
      if (found.label === context.adminPartition) {
        throw new PartitionCommandError('NTLS_ERR_ADMIN_PARTITION', `partition ${found.label} holds the server key and is not for clients`, 'assign another partition');
      }
      return found;
    },
    'partition.create': async (args) => {
      const label = typeof args.label === 'string' ? args.label : '';
      if (!label) throw new PartitionCommandError('NTLS_ERR_ADMIN_ARGUMENT', 'a label is missing', 'give --label');
      const hsm = context.hsm();
      if (hsm.listPartitions().some((p) => p.label === label)) {
        throw new PartitionCommandError('NTLS_ERR_PARTITION_EXISTS', `a partition labelled "${label}" exists`, 'choose another label');
      }
      try {
        return describe(await hsm.createPartition({ label, soPin: typeof args.soPin === 'string' ? args.soPin : undefined }));
      } catch (error) {
        adminFailure(error);
      }
    },
    'partition.delete': (args) => {
      const hsm = context.hsm();
      const partition = find(hsm, name(args));
      if (partition.label === context.adminPartition) {
        throw new PartitionCommandError('NTLS_ERR_ADMIN_PARTITION', `partition ${partition.label} holds the server key`, 'turn server.keysInHardware off and restart first');
      }
      context.revokeEverywhere(partition.slotId);
      try {
        hsm.deletePartition(partition.slotId);
      } catch (error) {
        adminFailure(error);
      }
      return { deleted: partition.label, serial: partition.serial, objects: partition.tokenObjects };
    },
  };
  return new Map(Object.entries(commands));
}
