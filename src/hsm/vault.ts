// What the software HSM's call modules need of it: the mechanisms, the PIN policy, object
// handles, and the store with its sealing. SoftwareHsm implements it; the call modules see only
// this, so they and the HSM do not import each other.
import type { KdfParameters } from '../store/credential.js';
import type { PartitionRow, Role } from '../store/store.js';
import type { Mechanisms } from './mechanisms/contract.js';
import type { LoginCache } from './login-cache.js';
import type { HsmObject } from './object.js';
import type { Partition } from './partition.js';
import type { PinPolicy } from './pin-policy.js';

export interface Vault {
  readonly mechanisms: Mechanisms;
  readonly policy: PinPolicy;
  readonly kdf: KdfParameters;
  /** PINs that already opened a role's credential since start (checked without the KDF). */
  readonly logins: LoginCache;
  /** A handle no other node of a shared store gives (the store hands them out in blocks). */
  newObjectHandle(): Promise<number>;
  /** Seals a token object's secret part; needs the partition key (some login on the partition). */
  sealSecret(partition: Partition, handle: number, secret: Buffer): Buffer;
  /** The secret part in clear: from memory (session objects) or unsealed (token objects). */
  secretOf(partition: Partition, object: HsmObject): Buffer;
  /** Writes token objects (all of them in one transaction); session objects are not stored. */
  persist(partition: Partition, objects: readonly HsmObject[]): Promise<void>;
  unpersist(object: HsmObject): Promise<void>;
  /** Writes a partition's new row, and only then takes it as the partition's state. */
  savePartition(partition: Partition, row: PartitionRow, dropObjects?: boolean): Promise<void>;
  /**
   * Records a login judged, in the stored count (atomic across nodes), before the call returns:
   * a failure adds one, a success clears it unless the role is locked. Returns the count after.
   * A failure the store cannot take is counted in memory (Partition.failures) and that count
   * returned; a success it cannot take throws the store's error.
   */
  recordLogin(partition: Partition, role: Role, ok: boolean): Promise<number>;
}
