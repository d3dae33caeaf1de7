// `ntls partition ...`: the HSM administrator's requests, served by the processor that owns the
// HSM. Failures carry a stable code and a hint, which the admin channel passes on.
import { NtlsError } from '../../errors/ntls-error.js';
import { HsmAdminError, type SoftwareHsm } from '../../hsm/index.js';
import { Pkcs11Error } from '../../pkcs11/constants.js';
import type { ClientSlots, Device, TokenModel, TokenSummary } from '../../token/index.js';
import type { ProcessorAdminCommand } from '../contract.js';

export class PartitionCommandError extends NtlsError {
  constructor(code: string, message: string, hint?: string) {
    super(code, message, { hint });
  }
}

export interface PartitionCommandContext {
  model(): TokenModel;
  /** The device whose tokens are the partitions: the built-in HSM or the PKCS#11 module. */
  partitions(): Device;
  /** The built-in HSM, for what only it can do (create and delete partitions). */
  software(): SoftwareHsm;
  /** The administrative partition holding the server key (keys in hardware), if any. */
  adminPartition: string | null;
  liveClients(): Array<{ client: string; view: ClientSlots }>;
  /** The mounted tokens changed: every live client's slots are worked out again. */
  tokensChanged(): void;
}

function name(args: Record<string, unknown>): string {
  const value = args.partition;
  if (typeof value !== 'string' || !value) throw new PartitionCommandError('NTLS_ERR_ADMIN_ARGUMENT', 'a partition (name or serial number) is missing', 'give --partition');
  return value;
}

/**
 * A token by its operator name or serial number (docs/operations.md, "Words"):
 * NTLS_ERR_AMBIGUOUS_PARTITION when a name of one is the serial of another ("0"),
 * NTLS_ERR_UNKNOWN_PARTITION when none answers. Never by its token label: the partition's SO
 * (a client) sets that, so it could make an operator's command land on its own partition, or
 * on none. A word that is only a label says whose, so the operator can give the name.
 */
export function find(tokens: readonly TokenSummary[], partition: string): TokenSummary {
  const named = [...new Set(tokens.filter((p) => p.name === partition || p.serial === partition))];
  if (named.length > 1) {
    throw new PartitionCommandError('NTLS_ERR_AMBIGUOUS_PARTITION',
      `"${partition}" answers to ${named.length} partitions: ${named.map((p) => `${p.name} (serial ${p.serial})`).join(', ')}`, 'give the serial number, or the name of one that is not another\'s serial');
  }
  if (named.length === 1) return named[0]!;
  const labelled = tokens.filter((p) => p.label === partition);
  if (labelled.length) {
    throw new PartitionCommandError('NTLS_ERR_UNKNOWN_PARTITION',
      `no partition is named or numbered "${partition}"; it is the token label of ${labelled.map((p) => `${p.name} (serial ${p.serial})`).join(', ')}`,
      'give the partition\'s name or serial: a token label is set by the partition\'s SO, not by the operator');
  }
  throw new PartitionCommandError('NTLS_ERR_UNKNOWN_PARTITION', `no partition is named or numbered "${partition}"`, 'see `ntls partition list`');
}

function adminFailure(error: unknown): never {
  if (error instanceof HsmAdminError) {
    const hints: Partial<Record<string, string>> = {
      NTLS_ERR_PARTITION_LIMIT: 'delete a partition or raise hsm.maxPartitions',
      NTLS_ERR_LABEL_INVALID: 'a name or label is 1-32 bytes of printable text',
      NTLS_ERR_PARTITION_EXISTS: 'choose another name',
    };
    throw new PartitionCommandError(error.code, error.message, hints[error.code]);
  }
  if (error instanceof Pkcs11Error) throw new PartitionCommandError(error.code, error.message, 'check the SO PIN against the PIN policy (hsm.pinMinLength ...)');
  throw error;
}

/**
 * Failed logins in a row and lock state of each role (SO, Crypto Officer, Crypto User), for the
 * built-in HSM (a PKCS#11 module's token keeps its own, not readable here).
 */
function loginState(context: PartitionCommandContext, partition: TokenSummary): Record<string, unknown> {
  let hsm: SoftwareHsm;
  try {
    hsm = context.software();
  } catch {
    return {};
  }
  // The stored counts and those the store could not take (disk full): the lock holds on both.
  const held = hsm.partition(partition.slotId);
  const failures = { so: held.failures('so'), co: held.failures('co'), cu: held.failures('cu') };
  const max = hsm.policy.maxFailedLogins;
  return {
    failedLogins: failures,
    locked: { so: failures.so >= max, co: failures.co >= max, cu: failures.cu >= max },
    maxFailedLogins: max,
  };
}

export function partitionCommands(context: PartitionCommandContext): ReadonlyMap<string, ProcessorAdminCommand> {
  const partitions = () => context.model().tokens(context.partitions());
  /** The partition's policy; null on a PKCS#11 module's token, whose module has its own. */
  const legacyRsa = (p: TokenSummary): boolean | null => {
    const device = context.partitions();
    return device.kind === 'software' ? context.software().partitionPolicy(p.slotId).legacyRsa : null;
  };
  const describe = (p: TokenSummary) => {
    const clients = context.liveClients().filter((c) => c.view.includes(p.slotId)).map((c) => c.client);
    return { ...p, connectedClients: [...new Set(clients)], legacyRsa: legacyRsa(p) };
  };
  const commands: Record<string, ProcessorAdminCommand> = {
    'partition.list': () => partitions().map(describe),
    'partition.show': (args) => {
      const partition = find(partitions(), name(args));
      return { ...describe(partition), ...loginState(context, partition) };
    },
    'partition.resolve': (args) => {
      const found = find(context.model().tokens(), name(args));
      if (found.name === context.adminPartition) {
        throw new PartitionCommandError('NTLS_ERR_ADMIN_PARTITION', `partition ${found.label} holds the server key and is not for clients`, 'assign another partition');
      }
      return found;
    },
    'partition.create': async (args) => {
      const partitionName = typeof args.name === 'string' && args.name ? args.name : typeof args.label === 'string' ? args.label : '';
      const label = typeof args.label === 'string' && args.label ? args.label : partitionName;
      if (!partitionName) throw new PartitionCommandError('NTLS_ERR_ADMIN_ARGUMENT', 'a name is missing', 'give --name');
      const hsm = context.software();
      // A new name may not be any partition's name, serial or label: it must find this partition alone.
      if (context.model().tokens().some((p) => p.name === partitionName || p.serial === partitionName || p.label === partitionName)) {
        throw new PartitionCommandError('NTLS_ERR_PARTITION_EXISTS', `a partition answers to "${partitionName}" already`, 'choose another name');
      }
      try {
        const made = await hsm.createPartition({ name: partitionName, label, soPin: typeof args.soPin === 'string' ? args.soPin : undefined });
        if (context.model().slots.find(made.slot) === undefined) context.model().mount(made.slot, hsm, made.slot);
        context.tokensChanged();
        return describe(find(partitions(), made.serial));
      } catch (error) {
        adminFailure(error);
      }
    },
    /** `ntls partition policy --partition P --legacy-rsa on|off`: in force for the partition's next call. */
    'partition.policy': async (args) => {
      const hsm = context.software();
      const partition = find(partitions(), name(args));
      const value = args.legacyRsa;
      if (value !== 'on' && value !== 'off') throw new PartitionCommandError('NTLS_ERR_ADMIN_ARGUMENT', `--legacy-rsa takes on or off (got ${String(value)})`, 'give --legacy-rsa on or --legacy-rsa off');
      try {
        await hsm.setPartitionPolicy(partition.slotId, { legacyRsa: value === 'on' });
      } catch (error) {
        adminFailure(error);
      }
      return describe(find(partitions(), partition.serial));
    },
    'partition.delete': async (args) => {
      const hsm = context.software();
      const partition = find(partitions(), name(args));
      if (partition.name === context.adminPartition) {
        throw new PartitionCommandError('NTLS_ERR_ADMIN_PARTITION', `partition ${partition.name} holds the server key`, 'turn server.keysInHardware off and restart first');
      }
      // Every application's sessions on it end before it goes.
      context.model().unmount(partition.slotId);
      try {
        await hsm.deletePartition(partition.slotId);
      } catch (error) {
        // Still there (the store refused): it serves again.
        if (hsm.tokens().some((t) => t.slot === partition.slotId)) context.model().mount(partition.slotId, hsm, partition.slotId);
        adminFailure(error);
      } finally {
        context.tokensChanged();
      }
      return { deleted: partition.name, serial: partition.serial, objects: partition.tokenObjects };
    },
  };
  return new Map(Object.entries(commands));
}
