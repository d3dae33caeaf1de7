// `ntls token ...`: USB-attached tokens (token images in <home>/devices), served by the processor
// that owns the HSM and the virtual token list. Failures carry a stable code and a hint.
import { randomUUID } from 'node:crypto';
import type { SoftwareHsm } from '../../hsm/index.js';
import { singlePartMechanisms, softwareMechanisms } from '../../hsm/mechanisms/index.js';
import { Catalogue } from '../../log/catalogue.js';
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';
import { backupPartition, restorePartition, type PartitionCredential, type RestoreMode } from '../../tokens/backup.js';
import { TokenError } from '../../tokens/errors.js';
import type { ImageHsmOptions } from '../../tokens/image.js';
import { VirtualTokens } from '../../tokens/virtual-tokens.js';
import type { TokenSummary } from '../../token/index.js';
import type { ProcessorAdminCommand, ProcessorContext } from '../contract.js';
import { PartitionCommandError, find as findPartition } from './partition-commands.js';

export interface TokenCommandContext {
  hsm(): SoftwareHsm;
  /** The built-in HSM's partitions as the token model has them mounted. */
  partitions(): TokenSummary[];
  tokens(): VirtualTokens;
  hsmOptions: ImageHsmOptions;
  /** The administrative partition holding the server key (keys in hardware), if any: never restored into. */
  adminPartition: string | null;
}

/** A backup or restore in progress, for `token.progress`. */
interface Running {
  operation: 'backup' | 'restore';
  token: string;
  partition: string;
  done: number;
  total: number;
  startedAt: string;
}

/** How deployed tokens and images are opened: as the home's HSM is. */
export function imageHsmOptions(config: ProcessorContext['config']): ImageHsmOptions {
  const settings = config.hsm;
  return {
    mechanisms: softwareMechanisms,
    singlePartMechanisms,
    maxPartitions: 1,
    pinPolicy: { minLength: settings.pinMinLength, maxLength: settings.pinMaxLength, maxFailedLogins: settings.maxFailedLogins },
    kdf: { cost: settings.kdfCost },
  };
}

/** Starts the virtual token list beside the HSM; a failure logs "Fail to Initialize VToken Manager" and refuses the start. */
export async function startVirtualTokens(context: ProcessorContext, hsm: SoftwareHsm): Promise<VirtualTokens> {
  try {
    return await VirtualTokens.start({
      home: context.home,
      logger: context.logger,
      hsmOptions: imageHsmOptions(context.config),
      reservedSlots: () => hsm.tokens().map((p) => p.slot),
      reservedSerials: () => hsm.tokens().map((p) => p.serial),
    });
  } catch (error) {
    context.logger.log(Catalogue.vtokenManagerInitFailed);
    throw error;
  }
}

function text(args: Record<string, unknown>, key: string, flag: string): string {
  const value = args[key];
  if (typeof value !== 'string' || value.length === 0) throw new PartitionCommandError('NTLS_ERR_ADMIN_ARGUMENT', `${flag} is missing`, `give ${flag}`);
  return value;
}

/** The partition's credential: its Crypto Officer PIN, or its SO PIN. */
function partitionCredential(args: Record<string, unknown>): PartitionCredential {
  const co = typeof args.partitionPin === 'string' && args.partitionPin !== '' ? args.partitionPin : null;
  const so = typeof args.partitionSoPin === 'string' && args.partitionSoPin !== '' ? args.partitionSoPin : null;
  if ((co === null) === (so === null)) {
    throw new PartitionCommandError('NTLS_ERR_ADMIN_ARGUMENT', 'give the partition\'s Crypto Officer PIN or its SO PIN (one of them)', 'add --partition-pin or --partition-so-pin');
  }
  return co !== null ? { role: 'co', pin: co } : { role: 'so', pin: so! };
}

function pkcs11Failure(error: unknown): never {
  if (error instanceof Pkcs11Error) {
    const hints: Record<number, string> = {
      [CKR.PIN_INCORRECT]: 'check the PIN; each wrong one counts towards the lock',
      [CKR.PIN_LOCKED]: 'the role is locked: a locked Crypto Officer PIN is set anew by the partition\'s SO (ntls-client init-pin); a locked SO PIN cannot be, the partition must be deleted and made again (ntls partition delete), its keys lost',
      [CKR.USER_PIN_NOT_INITIALIZED]: 'the Crypto Officer PIN is not set yet; give the SO PIN instead',
      [CKR.TOKEN_NOT_RECOGNIZED]: 'the partition is not initialised (it has no SO PIN yet): make it with `ntls partition create --name NAME --so-pin PIN`, or initialise it with C_InitToken (`ntls-client init-token`); nothing was changed',
    };
    throw new PartitionCommandError(error.code, error.message, hints[error.rv] ?? 'nothing was changed');
  }
  throw error;
}

export function tokenCommands(context: TokenCommandContext): ReadonlyMap<string, ProcessorAdminCommand> {
  const running = new Map<string, Running>();
  const track = (key: string, entry: Running) => {
    running.set(key, entry);
    return (done: number, total: number) => { entry.done = done; entry.total = total; };
  };
  const commands: Record<string, ProcessorAdminCommand> = {
    'token.list': async () => {
      await context.tokens().refresh();
      return context.tokens().list();
    },
    'token.show': async (args) => {
      const name = text(args, 'token', '--token');
      await context.tokens().refresh();
      const row = context.tokens().list().find((r) => r.file === name || r.file === `${name}.ntlstoken` || r.serial === name || r.label === name);
      if (!row) throw new TokenError('NTLS_ERR_UNKNOWN_TOKEN', `no token answers to "${name}"`, 'see `ntls token list`');
      return row;
    },
    'token.deploy': async (args) => {
      await context.tokens().refresh();
      return context.tokens().deploy(text(args, 'token', '--token'));
    },
    'token.undeploy': (args) => context.tokens().undeploy(text(args, 'token', '--token')),
    'token.progress': () => [...running.values()],
    'token.backup': async (args) => {
      const hsm = context.hsm();
      const partition = findPartition(context.partitions(), text(args, 'partition', '--partition'));
      const credential = partitionCredential(args);
      const tokenPin = text(args, 'tokenPin', '--token-pin');
      const token = text(args, 'token', '--token');
      const id = typeof args.id === 'string' && args.id !== '' ? args.id : randomUUID();
      await context.tokens().refresh();
      return context.tokens().withImage(token, async (image) => {
        const progress = track(image.info.serial, {
          operation: 'backup', token: image.info.label || image.info.serial, partition: partition.name, done: 0,
          total: partition.tokenObjects ?? 0, startedAt: new Date().toISOString(),
        });
        try {
          return await backupPartition({
            hsm, slot: partition.slotId, partition: credential, image, tokenPin, hsmOptions: context.hsmOptions, id, onProgress: progress,
          });
        } catch (error) {
          pkcs11Failure(error);
        } finally {
          running.delete(image.info.serial);
        }
      });
    },
    'token.restore': async (args) => {
      const hsm = context.hsm();
      const partition = findPartition(context.partitions(), text(args, 'partition', '--partition'));
      if (partition.name === context.adminPartition) {
        throw new PartitionCommandError('NTLS_ERR_ADMIN_PARTITION', `partition ${partition.name} holds the server key`, 'restore into another partition');
      }
      const credential = partitionCredential(args);
      const tokenPin = text(args, 'tokenPin', '--token-pin');
      const token = text(args, 'token', '--token');
      let mode: RestoreMode;
      if (args.mode === 'replace' || args.mode === 'add') mode = args.mode;
      else if (args.mode === undefined && partition.tokenObjects === 0) mode = 'add';
      else {
        throw new TokenError('NTLS_ERR_RESTORE_MODE', `partition ${partition.name} holds ${partition.tokenObjects} object(s)`,
          'choose --replace (they are dropped) or --add (the backup\'s objects are added)');
      }
      await context.tokens().refresh();
      return context.tokens().withImage(token, async (image) => {
        const progress = track(image.info.serial, {
          operation: 'restore', token: image.info.label || image.info.serial, partition: partition.name, done: 0,
          total: image.info.objects, startedAt: new Date().toISOString(),
        });
        try {
          return await restorePartition({
            hsm, slot: partition.slotId, partition: credential, image, tokenPin, hsmOptions: context.hsmOptions, mode, onProgress: progress,
          });
        } catch (error) {
          pkcs11Failure(error);
        } finally {
          running.delete(image.info.serial);
        }
      });
    },
  };
  return new Map(Object.entries(commands));
}
