// The software HSM: partitions (one token per slot) over the durable store, and the mechanisms
// it offers on node:crypto. It is a device of the token model (src/token/device.ts): the model
// owns sessions, logins and visibility, this does the work. Administration (create, delete and
// list partitions) and the export and import of a partition's objects (backup, restore) are its
// front doors beside the device contract.

import { NtlsError } from '../errors/ntls-error.js';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import type { AttributeValue, Template } from '../pkcs11/attributes.js';
import { CKF, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { type LibraryInfo, type MechanismInfo, type SlotInfo, type TokenInfo, type Version } from '../pkcs11/info.js';
import type { Mechanism } from '../pkcs11/mechanism.js';
import { DEFAULT_KDF, createCredential, encodeCredential, type Credential, type KdfParameters } from '../store/credential.js';
import { StoreOpenError, isStoreFull } from '../store/errors.js';
import { HsmStore, storePath } from '../store/hsm-store.js';
import { PgStore } from '../store/pg-store.js';
import {
  DEFAULT_PARTITION_POLICY, type HsmStoreBackend, type MaybePromise, type ObjectRow, type PartitionPolicy, type PartitionRow,
  type PartitionState, type Role,
} from '../store/store.js';
import { KEY_BYTES, seal, unseal } from '../store/seal.js';
import type { AttributeRead, Caller, ContextLogin, Device, DeviceToken, ObjectFacts, OperationKind } from '../token/device.js';
import { decodeAttributes, encodeAttributes } from './attribute-codec.js';
import type { Call } from './call.js';
import { changePin, credentialAad, initToken, setCredential, verifyPin } from './credentials.js';
import { copyObject, createObject, destroyObject, factsOf, find, privateByDefault, readAttributes, writeAttributes } from './objects.js';
import { deriveKey, generateKey, generateKeyPair, unwrapKey, wrapKey } from './keys.js';
import type { MechanismDescription, Mechanisms } from './mechanisms/contract.js';
import { LoginCache } from './login-cache.js';
import { HsmObject, objectAad } from './object.js';
import * as operations from './operations.js';
import { Partition } from './partition.js';
import { mechanismTable } from './policy.js';
import { DEFAULT_PIN_POLICY, checkPinLength, isLocked, pinBytes, pinFlags, type PinPolicy } from './pin-policy.js';
import { SoftwareSession } from './session.js';
import type { Vault } from './vault.js';

export interface HsmOptions {
  /** Service home; the store is `<home>/hsm/hsm.db`. */
  home: string;
  /**
   * An existing store file to open instead of the home's (a token image, src/tokens/image.ts):
   * never created, kept in rollback-journal mode so the file alone is the whole token.
   */
  storeFile?: string;
  mechanisms: Mechanisms;
  logger?: Logger;
  /** Most partitions the HSM holds (appliances: 100). */
  maxPartitions?: number;
  /** Sessions open at once on one partition, all applications together (CKR_SESSION_COUNT past it). */
  maxSessions?: number;
  /** Bytes one partition's objects may take, token objects in the store and session objects in memory (CKR_DEVICE_MEMORY past it). */
  maxPartitionBytes?: number;
  pinPolicy?: Partial<PinPolicy>;
  /** scrypt cost of PIN-derived keys; lower it only in tests. */
  kdf?: Partial<KdfParameters>;
  /** Told of every PIN check that runs the KDF (a login the login cache did not answer); for tests. */
  onKdf?: () => void;
  /**
   * The home's store in a PostgreSQL database shared by several nodes (docs/ha.md) instead of
   * its SQLite file. Ignored with storeFile.
   */
  postgres?: { url: string; poolSize?: number };
  /**
   * Mechanisms whose C_xxxUpdate is refused (raw ECDSA, RSA PKCS#1 and OAEP, key wrap). The
   * Mechanisms contract does not carry this; the software set exports it as singlePartMechanisms.
   */
  singlePartMechanisms?: ReadonlySet<number>;
  /**
   * A store with no partition (a first start) gets this one, uninitialised, before the HSM
   * reports what it holds (`Found N partitions on HSM.`). With a shared store, a node that finds
   * another made it meanwhile takes that one.
   */
  initialPartition?: string;
}

/** A partition's objects in clear, for backup and restore: every attribute, and the secret part. */
export interface ClearObject {
  attributes: Map<number, AttributeValue>;
  secret: Buffer | null;
}

/** The credential an administrator's request outside a session gives: a role's PIN. */
export interface PartitionCredential {
  role: Role;
  pin: string | Buffer;
}

export type HsmAdminErrorCode = 'NTLS_ERR_PARTITION_LIMIT' | 'NTLS_ERR_PARTITION_NOT_FOUND' | 'NTLS_ERR_PARTITION_EXISTS' | 'NTLS_ERR_LABEL_INVALID' | 'NTLS_ERR_HSM_CLOSED'
  | 'NTLS_ERR_POLICY_UNSUPPORTED';

/** A refused administrator request (not a PKCS#11 call). */
export class HsmAdminError extends NtlsError {
  declare readonly code: HsmAdminErrorCode;
  constructor(code: HsmAdminErrorCode, message: string) {
    super(code, message);
  }
}

const MANUFACTURER = 'NTLS';
/** Longest a call waits for the refresh from a shared store before it goes on with the view it has. */
const SYNC_WAIT_MS = 2000;
/** Pause before a store found unreachable is asked again. */
const SYNC_RETRY_MS = 1000;
const VERSION: Version = { major: 0, minor: 1 };
/** Sessions one partition holds open at once by default (hsm.maxSessions). */
const DEFAULT_MAX_SESSIONS = 4096;
/** Room of one partition's token objects in the store by default (hsm.maxPartitionBytes). */
const DEFAULT_MAX_PARTITION_BYTES = 64 * 1024 * 1024;
const LABEL_BYTES = 32;
const LIBRARY_INFO: LibraryInfo = {
  cryptokiVersion: { major: 2, minor: 40 }, manufacturerId: MANUFACTURER, flags: 0,
  libraryDescription: 'NTLS network HSM', libraryVersion: VERSION,
};

/** Partitions another node made or deleted, applied to this node's view (docs/ha.md). */
export interface PartitionChange {
  kind: 'added' | 'removed';
  slot: number;
}

export class SoftwareHsm implements Device<SoftwareSession>, Vault {
  readonly kind = 'software' as const;
  readonly libraryInfo = LIBRARY_INFO;
  readonly partitions = new Map<number, Partition>();
  readonly policy: PinPolicy;
  readonly kdf: KdfParameters;
  readonly logins: LoginCache;
  readonly maxPartitions: number;
  readonly maxSessions: number;
  readonly maxPartitionBytes: number;
  readonly singlePartMechanisms: ReadonlySet<number>;
  private readonly standardMechanismTable: ReadonlyMap<number, MechanismInfo>;
  private readonly legacyMechanismTable: ReadonlyMap<number, MechanismInfo>;
  private nextObject = 0;
  private lastObject = 0;
  /** The refresh from a shared store under way, and the one queued behind it (see sync). */
  private syncing: Promise<void> | null = null;
  private queuedSync: Promise<void> | null = null;
  private storeDown = false;
  private lastSyncFailure = 0;
  private closing: Promise<void> = Promise.resolve();
  private readonly changeListeners: Array<(change: PartitionChange) => void> = [];
  private nextSession = 1;
  private reservedPartitionId = 0;
  private closed = false;

  private constructor(readonly store: HsmStoreBackend, readonly mechanisms: Mechanisms, options: HsmOptions, readonly logger?: Logger) {
    this.policy = { ...DEFAULT_PIN_POLICY, ...options.pinPolicy };
    this.kdf = { ...DEFAULT_KDF, ...options.kdf };
    this.logins = new LoginCache(options.onKdf);
    this.maxPartitions = options.maxPartitions ?? 100;
    this.maxSessions = options.maxSessions ?? DEFAULT_MAX_SESSIONS;
    this.maxPartitionBytes = options.maxPartitionBytes ?? DEFAULT_MAX_PARTITION_BYTES;
    this.singlePartMechanisms = options.singlePartMechanisms ?? new Set();
    const table = new Map(mechanisms.list().map((m: MechanismDescription) => [m.type, { minKeySize: m.minKeySize, maxKeySize: m.maxKeySize, flags: m.flags }]));
    this.standardMechanismTable = mechanismTable(table, DEFAULT_PARTITION_POLICY);
    this.legacyMechanismTable = mechanismTable(table, { legacyRsa: true });
  }

  /**
   * Opens the store under the home and loads the container list. A store that cannot be read
   * logs "Fail to retrieve container list" and "Unable to load system containers!" and throws
   * StoreOpenError (code LUNA_RET_DEVICE_ERROR); the file is left as it is.
   */
  static async open(options: HsmOptions): Promise<SoftwareHsm> {
    // Settings first: a bad one is a configuration error, not a store failure.
    const cost = options.kdf?.cost ?? DEFAULT_KDF.cost;
    if (!Number.isInteger(cost) || cost < 2 || (cost & (cost - 1)) !== 0) {
      throw new RangeError(`hsm.kdfCost must be a power of two (got ${cost})`);
    }
    const policy = { ...DEFAULT_PIN_POLICY, ...options.pinPolicy };
    if (policy.minLength > policy.maxLength) {
      throw new RangeError(`hsm.pinMinLength (${policy.minLength}) is above hsm.pinMaxLength (${policy.maxLength})`);
    }
    const postgres = options.storeFile === undefined ? options.postgres : undefined;
    const path = postgres ? 'store.url' : options.storeFile ?? storePath(options.home);
    let store: HsmStoreBackend | undefined;
    let hsm: SoftwareHsm;
    try {
      store = postgres
        ? await PgStore.open(postgres.url, { poolSize: postgres.poolSize })
        : HsmStore.open(path, options.storeFile === undefined ? {} : { create: false, journal: 'delete' });
      hsm = new SoftwareHsm(store, options.mechanisms, options, options.logger);
      await hsm.load();
    } catch (error) {
      await Promise.resolve(store?.close()).catch(() => undefined);
      const failure = error instanceof StoreOpenError ? error : new StoreOpenError(path, (error as Error).message, { cause: error });
      options.logger?.log(Catalogue.containerListFailed);
      options.logger?.log(Catalogue.systemContainersLoadFailed);
      throw failure;
    }
    if (options.initialPartition !== undefined && hsm.partitions.size === 0) {
      await hsm.createInitialPartition(options.initialPartition).catch(async (error: unknown) => {
        await hsm.shutdown();
        throw error;
      });
    }
    // What the HSM holds now, the first start's partition included.
    options.logger?.log(Catalogue.partitionsFound, { count: hsm.partitions.size });
    return hsm;
  }

  private async createInitialPartition(name: string): Promise<void> {
    await this.createPartition({ name }).catch(async (error: unknown) => {
      // Nodes of a shared store starting together: one makes it, the others then find it.
      if (!(error instanceof HsmAdminError && error.code === 'NTLS_ERR_PARTITION_EXISTS') || !this.shared) throw error;
      await this.sync();
    });
  }

  private async load(): Promise<void> {
    const { partitions, objects } = this.store instanceof PgStore
      ? await this.store.snapshot()
      : { partitions: await this.store.partitions(), objects: await this.store.objects() };
    for (const row of partitions) this.partitions.set(row.slotId, new Partition(row));
    const byId = new Map([...this.partitions.values()].map((p) => [p.id, p]));
    for (const row of objects) {
      const partition = byId.get(row.partitionId);
      if (!partition) throw new Error(`object ${row.id} belongs to no partition`);
      const attributes = decodeAttributes(row.attributes);
      partition.objects.set(row.id, storedObject(row, attributes));
    }
  }

  /** Closes the store (a PostgreSQL pool ends in the background: `shutdown()` waits for it). */
  close(): void {
    if (this.closed) return;
    for (const p of this.partitions.values()) {
      endSessions(p);
      p.forget();
    }
    this.closed = true;
    this.closing = Promise.resolve(this.store.close()).catch(() => undefined);
  }

  /** close(), and the store's connections ended. */
  async shutdown(): Promise<void> {
    this.close();
    await this.closing;
  }

  /** Whether other nodes write the same store (PostgreSQL). */
  get shared(): boolean {
    return this.store.changes !== undefined;
  }

  /** Called when another node's partition appears here (after) or goes (before it is dropped). */
  onPartitionChange(listener: (change: PartitionChange) => void): void {
    this.changeListeners.push(listener);
  }

  /**
   * Brings this node's view up to the shared store: the partitions other nodes changed are
   * reloaded, made or dropped. Called before each call (the processor) and administrator request,
   * so a call sees every change acknowledged before it arrived. A sync asked for while one runs
   * waits for the next (the one running may have read before the caller's change). When the
   * store cannot be reached the view stays as it is (calls that write then fail on their own);
   * the first failure is logged, and the recovery.
   */
  sync(): Promise<void> {
    if (!this.store.changes || this.closed) return Promise.resolve();
    // A store found unreachable is tried again after a pause, not before every call.
    if (this.storeDown && Date.now() - this.lastSyncFailure < SYNC_RETRY_MS) return Promise.resolve();
    let refresh: Promise<void>;
    if (this.queuedSync) refresh = this.queuedSync;
    else if (!this.syncing) refresh = this.startSync();
    else {
      const after = this.syncing;
      refresh = this.queuedSync = after.then(() => {
        this.queuedSync = null;
        return this.startSync();
      });
    }
    // A database that does not answer (a network cut drops packets) holds a call back this long at most.
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, SYNC_WAIT_MS);
      timer.unref();
      void refresh.then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private startSync(): Promise<void> {
    const run = (async () => {
      try {
        const states = await this.store.changes!();
        if (this.storeDown) {
          this.storeDown = false;
          this.logger?.log(Catalogue.partitionsFound, { count: this.partitions.size });
        }
        for (const state of states) this.apply(state);
      } catch {
        this.lastSyncFailure = Date.now();
        if (!this.storeDown) {
          this.storeDown = true;
          this.logger?.log(Catalogue.containerListFailed);
        }
      } finally {
        this.syncing = null;
      }
    })();
    this.syncing = run;
    return run;
  }

  /** One partition as another node left it. */
  private apply(state: PartitionState): void {
    if (this.closed) return;
    const current = [...this.partitions.values()].find((p) => p.id === state.id);
    if (state.row === null) {
      if (!current) return;
      for (const listener of this.changeListeners) listener({ kind: 'removed', slot: current.slotId });
      endSessions(current);
      current.forget();
      this.logins.forget(current.id);
      this.partitions.delete(current.slotId);
      return;
    }
    let partition = current;
    if (!partition) {
      partition = new Partition(state.row);
      this.partitions.set(state.row.slotId, partition);
    } else {
      // A new SO credential is a new partition key (C_InitToken elsewhere): logins here end.
      if (partition.row.credentials.so !== null && state.row.credentials.so !== null
        && !partition.row.credentials.so.salt.equals(state.row.credentials.so.salt)) partition.forget();
      // A credential left as it was stays the same object (the login cache is bound to it); a PIN
      // changed or locked on another node drops the cached login here. The policy comes with the row.
      const credentials = { ...state.row.credentials };
      for (const role of ['so', 'co', 'cu'] as const) {
        const before = partition.row.credentials[role];
        const now = credentials[role];
        if (before !== null && now !== null && encodeCredential(before) === encodeCredential(now)) credentials[role] = before;
        else this.logins.forget(partition.id, role);
        if (isLocked(this.policy, state.row.failures[role] + partition.unstoredFailures(role))) this.logins.forget(partition.id, role);
      }
      partition.row = { ...state.row, credentials };
    }
    if (state.objects !== null) {
      const stored = new Map(state.objects.map((o) => [o.id, o]));
      for (const [handle, object] of partition.objects) {
        if (!object.isToken) continue;
        const now = stored.get(handle);
        if (now && sameStoredObject(object, now)) {
          stored.delete(handle);
          continue;
        }
        partition.objects.delete(handle);
        partition.dropUnsealed(handle);
      }
      for (const row of stored.values()) {
        partition.objects.set(row.id, storedObject(row, decodeAttributes(row.attributes)));
      }
    }
    if (!current) for (const listener of this.changeListeners) listener({ kind: 'added', slot: partition.slotId });
  }

  /**
   * A store failure in a call: the guide's device-error line, and CKR_DEVICE_ERROR to the caller
   * (CKR_DEVICE_MEMORY when the store's disk is full); nothing of the call stays.
   */
  private async stored<T>(write: () => MaybePromise<T>): Promise<T> {
    try {
      return await write();
    } catch (error) {
      this.logger?.log(Catalogue.containerListFailed);
      if (error instanceof Pkcs11Error) throw error;
      throw new Pkcs11Error(isStoreFull(error) ? CKR.DEVICE_MEMORY : CKR.DEVICE_ERROR, (error as Error).message);
    }
  }

  private checkOpen(): void {
    if (this.closed) throw new HsmAdminError('NTLS_ERR_HSM_CLOSED', 'the HSM has been closed');
  }

  // --- Administration -----------------------------------------------------------------------

  /** The partitions, by slot: the device's tokens. */
  tokens(): DeviceToken[] {
    return [...this.partitions.values()].sort((a, b) => a.slotId - b.slotId).map((p) => ({
      slot: p.slotId, serial: p.row.serial, name: p.row.name, label: p.row.label, initialized: p.initialized,
      tokenObjects: [...p.objects.values()].filter((o) => o.isToken).length,
    }));
  }

  /**
   * Creates a partition in a new slot, under the operator's name (unique; its first token label
   * too unless `label` says otherwise). With an SO PIN the token is initialised at once (as
   * C_InitToken would); without, its SO initialises it with C_InitToken.
   */
  async createPartition(options: { name?: string; label?: string; soPin?: string | Buffer } = {}): Promise<DeviceToken> {
    this.checkOpen();
    await this.sync();
    if (this.partitions.size >= this.maxPartitions) {
      throw new HsmAdminError('NTLS_ERR_PARTITION_LIMIT', `the HSM holds at most ${this.maxPartitions} partitions; delete one or raise the limit`);
    }
    const label = checkLabel(options.label ?? options.name ?? '');
    const serial = this.newSerial();
    // Unnamed (an HSM used on its own, tests): named after its serial number.
    const name = checkLabel(options.name ?? options.label ?? '') || `partition-${serial}`;
    if ([...this.partitions.values()].some((p) => p.row.name === name)) throw new HsmAdminError('NTLS_ERR_PARTITION_EXISTS', `a partition named "${name}" exists`);
    // The id is taken before the KDF runs (the SO credential is bound to it), and reserved so
    // that partitions created at the same time do not collide.
    const id = Math.max(this.reservedPartitionId, ...[...this.partitions.values()].map((p) => p.id)) + 1;
    this.reservedPartitionId = id;
    let so: Credential | null = null;
    if (options.soPin !== undefined) {
      const pin = pinBytes(options.soPin);
      checkPinLength(this.policy, pin);
      const key = randomBytes(KEY_BYTES);
      so = await createCredential(pin, key, this.kdf, credentialAad(id, 'so'));
      key.fill(0);
      this.checkOpen();
      if (this.partitions.size >= this.maxPartitions) {
        throw new HsmAdminError('NTLS_ERR_PARTITION_LIMIT', `the HSM holds at most ${this.maxPartitions} partitions; delete one or raise the limit`);
      }
    }
    const slotId = Math.max(-1, ...[...this.partitions.keys()]) + 1;
    const row: PartitionRow = {
      id, slotId, serial, name, label, initialized: so !== null,
      credentials: { so, co: null, cu: null }, failures: { so: 0, co: 0, cu: 0 }, policy: { ...DEFAULT_PARTITION_POLICY },
    };
    if (this.partitions.has(slotId) || [...this.partitions.values()].some((p) => p.id === id || p.row.name === name)) {
      throw new HsmAdminError('NTLS_ERR_PARTITION_EXISTS', 'another partition was made meanwhile; try again');
    }
    try {
      await this.store.insertPartition(row);
    } catch (error) {
      // Another node made a partition with the same slot, id or name at the same moment.
      if ((error as { code?: string }).code === '23505') throw new HsmAdminError('NTLS_ERR_PARTITION_EXISTS', 'another node made a partition with this name or slot at the same moment; try again');
      throw error;
    }
    // A refresh meanwhile may have brought it in already.
    if (this.partitions.get(slotId)?.id !== id) this.partitions.set(slotId, new Partition(row));
    return this.tokens().find((p) => p.slot === slotId)!;
  }

  /** Deletes a partition and every object in it; the token model has ended its sessions first. */
  async deletePartition(slotId: number): Promise<void> {
    this.checkOpen();
    const partition = this.partitions.get(slotId);
    if (!partition) throw new HsmAdminError('NTLS_ERR_PARTITION_NOT_FOUND', `no partition in slot ${slotId}`);
    await this.store.deletePartition(partition.id);
    if (this.partitions.get(slotId) !== partition) return;
    endSessions(partition);
    partition.forget();
    this.logins.forget(partition.id);
    this.partitions.delete(slotId);
  }

  private newSerial(): string {
    const taken = new Set([...this.partitions.values()].map((p) => p.row.serial));
    for (;;) {
      const serial = String(randomInt(100_000_000, 999_999_999)) + String(randomInt(100, 999));
      if (!taken.has(serial)) return serial;
    }
  }

  /** A partition's policy (`ntls partition show`). */
  partitionPolicy(slotId: number): PartitionPolicy {
    this.checkOpen();
    const partition = this.partitions.get(slotId);
    if (!partition) throw new HsmAdminError('NTLS_ERR_PARTITION_NOT_FOUND', `no partition in slot ${slotId}`);
    return { ...partition.row.policy };
  }

  /**
   * Changes a partition's policy (`ntls partition policy --partition P --legacy-rsa on|off`):
   * stored in its row (under the row MAC), in force for the next call on it.
   */
  async setPartitionPolicy(slotId: number, change: Partial<PartitionPolicy>): Promise<PartitionPolicy> {
    this.checkOpen();
    await this.sync();
    const partition = this.partitions.get(slotId);
    if (!partition) throw new HsmAdminError('NTLS_ERR_PARTITION_NOT_FOUND', `no partition in slot ${slotId}`);
    if (!this.store.keepsPolicies) throw new HsmAdminError('NTLS_ERR_POLICY_UNSUPPORTED', 'this token image was made before partition policies; it keeps the defaults');
    const policy = { ...partition.row.policy, ...change };
    await this.savePartition(partition, { ...partition.row, policy });
    return { ...policy };
  }

  /** One partition's summary, or CKR_SLOT_ID_INVALID. */
  token(slotId: number): DeviceToken {
    this.partition(slotId);
    return this.tokens().find((t) => t.slot === slotId)!;
  }

  /** Judges a role's PIN (a wrong one counted) as at C_Login, for a request made outside a session. */
  async checkCredential(slotId: number, credential: PartitionCredential): Promise<void> {
    (await verifyPin(this, this.partition(slotId), credential.role, pinBytes(credential.pin))).fill(0);
  }

  /**
   * Every token object of a partition in clear, in handle order: the front door of backups. The
   * credential is judged (a wrong PIN counted) as at C_Login; the caller wipes the secrets.
   */
  async exportObjects(slotId: number, credential: PartitionCredential): Promise<ClearObject[]> {
    const partition = this.partition(slotId);
    const key = await verifyPin(this, partition, credential.role, pinBytes(credential.pin));
    try {
      return tokenObjects(partition).map((object) => ({ attributes: new Map(object.attributes), secret: openSecret(key, partition.id, object) }));
    } finally {
      key.fill(0);
    }
  }

  /**
   * Adds objects to a partition, all or nothing (the front door of restores): with `replace` its
   * token objects go first; with `add` an object identical to one already there (every
   * attribute, and the secret) is skipped. `onProgress` is called as objects are prepared and
   * may throw to abandon the import before anything is written.
   */
  async importObjects(slotId: number, credential: PartitionCredential, objects: readonly ClearObject[], mode: 'replace' | 'add',
    onProgress?: (done: number, total: number) => void | Promise<void>): Promise<{ added: number; skipped: number; removed: number }> {
    const partition = this.partition(slotId);
    const key = await verifyPin(this, partition, credential.role, pinBytes(credential.pin));
    try {
      const known = new Set<string>();
      if (mode === 'add') {
        for (const object of tokenObjects(partition)) {
          const secret = openSecret(key, partition.id, object);
          known.add(sameObject({ attributes: object.attributes, secret }));
          secret?.fill(0);
        }
      }
      const made: HsmObject[] = [];
      let skipped = 0;
      for (const [i, entry] of objects.entries()) {
        if (mode === 'add' && known.has(sameObject(entry))) {
          skipped++;
        } else {
          const handle = await this.newObjectHandle();
          const sealed = entry.secret === null ? null : seal(key, entry.secret, objectAad(partition.id, handle));
          made.push(new HsmObject(handle, partition.id, new Map(entry.attributes), null, sealed, null));
        }
        if ((i + 1) % 32 === 0) await onProgress?.(i + 1, objects.length);
      }
      // The KDF and the progress calls let other requests run: the partition may be gone.
      if (this.partitions.get(slotId) !== partition) throw new Pkcs11Error(CKR.DEVICE_REMOVED, 'the partition was deleted meanwhile; nothing was imported');
      const rows: ObjectRow[] = made.map((o) => ({ id: o.handle, partitionId: partition.id, attributes: encodeAttributes(o.attributes), sealed: o.sealed }));
      await this.stored(() => (mode === 'replace' ? this.store.replaceObjects(partition.id, rows) : this.store.putObjects(rows)));
      for (const [i, object] of made.entries()) object.storedBytes = rowBytes(rows[i]!);
      let removed = 0;
      if (mode === 'replace') {
        for (const object of tokenObjects(partition)) {
          partition.objects.delete(object.handle);
          partition.dropUnsealed(object.handle);
          removed++;
        }
      }
      for (const object of made) partition.objects.set(object.handle, object);
      await onProgress?.(objects.length, objects.length);
      return { added: made.length, skipped, removed };
    } finally {
      key.fill(0);
    }
  }

  /**
   * A private key's PKCS#8, for this process's own TLS stack (keys in hardware): read past the
   * PKCS#11 rules that keep it from clients, for a holder whose login opened the partition.
   */
  ownPrivateKey(slotId: number, handle: number): Buffer {
    const partition = this.partition(slotId);
    const object = partition.objects.get(handle);
    if (!object) throw new Pkcs11Error(CKR.OBJECT_HANDLE_INVALID, 'server key vanished');
    return Buffer.from(this.secretOf(partition, object));
  }

  // --- Slot, token and mechanism information ---------------------------------------------------

  partition(slotId: number): Partition {
    if (this.closed) throw new Pkcs11Error(CKR.DEVICE_REMOVED, 'the HSM has been closed');
    const partition = this.partitions.get(slotId);
    if (!partition) throw new Pkcs11Error(CKR.SLOT_ID_INVALID);
    return partition;
  }

  slotInfo(slotId: number): SlotInfo {
    const partition = this.partition(slotId);
    return {
      slotDescription: `NTLS partition ${partition.row.serial}`, manufacturerId: MANUFACTURER,
      flags: CKF.TOKEN_PRESENT | CKF.HW_SLOT, hardwareVersion: VERSION, firmwareVersion: VERSION,
    };
  }

  tokenInfo(slotId: number): TokenInfo {
    const p = this.partition(slotId);
    let flags = CKF.RNG | CKF.LOGIN_REQUIRED | CKF.RESTORE_KEY_NOT_NEEDED;
    if (p.initialized) flags |= CKF.TOKEN_INITIALIZED;
    if (p.hasCredential('co')) flags |= CKF.USER_PIN_INITIALIZED;
    flags |= pinFlags(this.policy, 'so', p.failures('so')) | pinFlags(this.policy, 'co', p.failures('co'));
    const free = Math.max(0, this.maxPartitionBytes - storedBytesOf(p));
    return {
      label: p.row.label, manufacturerId: MANUFACTURER, model: 'NTLS partition', serialNumber: p.row.serial, flags,
      maxSessionCount: this.maxSessions, sessionCount: p.sessionCount(false), maxRwSessionCount: this.maxSessions, rwSessionCount: p.sessionCount(true),
      maxPinLen: this.policy.maxLength, minPinLen: this.policy.minLength,
      // One room for public and private objects: each figure says what either kind may still take.
      totalPublicMemory: this.maxPartitionBytes, freePublicMemory: free,
      totalPrivateMemory: this.maxPartitionBytes, freePrivateMemory: free,
      hardwareVersion: VERSION, firmwareVersion: VERSION, utcTime: utcTime(new Date()),
    };
  }

  mechanismsOf(slotId: number): ReadonlyMap<number, MechanismInfo> {
    const { policy } = this.partition(slotId).row;
    return policy.legacyRsa ? this.legacyMechanismTable : this.standardMechanismTable;
  }

  defaultPrivate(objectClass: number): boolean {
    return privateByDefault(objectClass);
  }

  // --- Tokens and PINs --------------------------------------------------------------------------

  initToken(slotId: number, soPin: Buffer, label: string): Promise<void> {
    return initToken(this, this.partition(slotId), soPin, label);
  }

  async login(slotId: number, role: Role, pin: Buffer, holder: string): Promise<void> {
    const partition = this.partition(slotId);
    const key = await verifyPin(this, partition, role, pin);
    partition.hold(holder, key);
  }

  logout(slotId: number, holder: string): void {
    this.partitions.get(slotId)?.release(holder);
  }

  setUserPin(session: SoftwareSession, role: 'co' | 'cu', pin: Buffer): Promise<void> {
    return setCredential(this, session.partition, role, pin);
  }

  changePin(session: SoftwareSession, oldPin: Buffer, newPin: Buffer, caller: Caller): Promise<void> {
    return changePin(this, session.partition, caller ?? 'co', oldPin, newPin);
  }

  // --- Sessions ---------------------------------------------------------------------------------

  openSession(slotId: number, readWrite: boolean): SoftwareSession {
    const partition = this.partition(slotId);
    if (!partition.initialized) throw new Pkcs11Error(CKR.TOKEN_NOT_RECOGNIZED);
    if (partition.sessions.size >= this.maxSessions) throw new Pkcs11Error(CKR.SESSION_COUNT, `${partition.sessions.size} sessions are open on this partition`);
    const session = new SoftwareSession(this.nextSession++, partition, readWrite);
    partition.sessions.add(session);
    return session;
  }

  assertOpen(session: SoftwareSession): void {
    if (session.closed) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
  }

  closeSession(session: SoftwareSession): void {
    session.end();
    const { partition } = session;
    partition.sessions.delete(session);
    for (const [handle, object] of partition.objects) {
      if (object.owner?.session === session.id) partition.objects.delete(handle);
    }
  }

  private call(session: SoftwareSession, role: Caller): Call {
    if (session.closed) throw new Pkcs11Error(CKR.SESSION_HANDLE_INVALID);
    return { vault: this, session, partition: session.partition, role };
  }

  // --- Objects ----------------------------------------------------------------------------------

  facts(session: SoftwareSession, handle: number): ObjectFacts | null {
    const object = session.partition.objects.get(handle);
    return object ? factsOf(object) : null;
  }

  async createObject(session: SoftwareSession, template: Template, caller: Caller): Promise<ObjectFacts> {
    return createObject(this.call(session, caller), template);
  }

  async copyObject(session: SoftwareSession, handle: number, template: Template, caller: Caller): Promise<ObjectFacts> {
    return copyObject(this.call(session, caller), handle, template);
  }

  destroyObject(session: SoftwareSession, handle: number): Promise<void> {
    return destroyObject(this.call(session, null), handle);
  }

  async readAttributes(session: SoftwareSession, handle: number, types: readonly number[], caller: Caller): Promise<AttributeRead[]> {
    return readAttributes(this.call(session, caller), handle, types);
  }

  async writeAttributes(session: SoftwareSession, handle: number, template: Template, caller: Caller): Promise<ObjectFacts> {
    return writeAttributes(this.call(session, caller), handle, template);
  }

  async find(session: SoftwareSession, template: Template, caller: Caller): Promise<ObjectFacts[]> {
    return find(this.call(session, caller), template);
  }

  // --- Keys -------------------------------------------------------------------------------------

  generateKey(session: SoftwareSession, mechanism: Mechanism, template: Template, caller: Caller): Promise<ObjectFacts> {
    return generateKey(this.call(session, caller), mechanism, template);
  }

  generateKeyPair(session: SoftwareSession, mechanism: Mechanism, publicTemplate: Template, privateTemplate: Template, caller: Caller): Promise<[ObjectFacts, ObjectFacts]> {
    return generateKeyPair(this.call(session, caller), mechanism, publicTemplate, privateTemplate);
  }

  wrapKey(session: SoftwareSession, mechanism: Mechanism, wrappingKey: number, key: number, caller: Caller): Promise<Buffer> {
    return wrapKey(this.call(session, caller), mechanism, wrappingKey, key);
  }

  unwrapKey(session: SoftwareSession, mechanism: Mechanism, unwrappingKey: number, wrapped: Buffer, template: Template, caller: Caller): Promise<ObjectFacts> {
    return unwrapKey(this.call(session, caller), mechanism, unwrappingKey, wrapped, template);
  }

  deriveKey(session: SoftwareSession, mechanism: Mechanism, baseKey: number, template: Template, caller: Caller): Promise<ObjectFacts> {
    return deriveKey(this.call(session, caller), mechanism, baseKey, template);
  }

  random(_session: SoftwareSession, length: number): Promise<Buffer> {
    return this.mechanisms.random(length);
  }

  async seedRandom(): Promise<void> {
    throw new Pkcs11Error(CKR.RANDOM_SEED_NOT_SUPPORTED);
  }

  // --- Operations -------------------------------------------------------------------------------

  async operationInit(session: SoftwareSession, kind: OperationKind, mechanism: Mechanism, key: number | null, caller: Caller): Promise<ContextLogin> {
    return operations.operationInit(this.call(session, caller), kind, mechanism, key);
  }

  /** C_Login(CKU_CONTEXT_SPECIFIC): the PIN of the caller's role, judged (and a wrong one counted) as at C_Login. */
  async contextLogin(session: SoftwareSession, pin: Buffer, caller: Role): Promise<void> {
    (await verifyPin(this, this.call(session, caller).partition, caller, pin)).fill(0);
  }

  operationUpdate(session: SoftwareSession, kind: OperationKind, data: Buffer): Promise<Buffer | null> {
    return operations.operationUpdate(session, kind, data);
  }

  operationFinal(session: SoftwareSession, kind: OperationKind): Promise<Buffer> {
    return operations.operationFinal(session, kind);
  }

  operationSingle(session: SoftwareSession, kind: OperationKind, data: Buffer): Promise<Buffer> {
    return operations.operationSingle(session, kind, data);
  }

  verify(session: SoftwareSession, data: Buffer | null, signature: Buffer): Promise<void> {
    return operations.verify(session, data, signature);
  }

  digestKey(session: SoftwareSession, key: number, caller: Caller): Promise<void> {
    return operations.digestKey(this.call(session, caller), key);
  }

  operationEnd(session: SoftwareSession, kind: OperationKind): void {
    session.operations.delete(kind);
  }

  // --- The vault: handles, persistence, secret parts ---------------------------------------------

  /** Handles come in blocks the store hands out, so that no two nodes give the same one. */
  async newObjectHandle(): Promise<number> {
    while (this.nextObject >= this.lastObject) {
      const block = await this.stored(() => this.store.reserveObjectIds());
      if (this.nextObject >= this.lastObject) {
        this.nextObject = block.first;
        this.lastObject = block.first + block.count;
      }
    }
    return this.nextObject++;
  }

  sealSecret(partition: Partition, handle: number, secret: Buffer): Buffer {
    const key = partition.partitionKey;
    if (key === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'the partition key is locked');
    return seal(key, secret, objectAad(partition.id, handle));
  }

  secretOf(partition: Partition, object: HsmObject): Buffer {
    if (object.secret !== null) return object.secret;
    if (object.sealed === null) throw new Pkcs11Error(CKR.GENERAL_ERROR, 'object has no secret part');
    const known = partition.unsealedSecret(object);
    if (known !== undefined) return known;
    const key = partition.partitionKey;
    if (key === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'the partition key is locked');
    const clear = unseal(key, object.sealed, objectAad(partition.id, object.handle));
    if (clear === null) {
      this.logger?.log(Catalogue.containerListFailed);
      throw new Pkcs11Error(CKR.DEVICE_ERROR, 'a stored secret does not open');
    }
    partition.keepUnsealed(object, clear);
    return clear;
  }

  /**
   * Writes token objects; CKR_DEVICE_MEMORY when the partition's room (maxPartitionBytes) would
   * not hold them. Session objects are never stored but take the same room in memory: without
   * it a client could fill the daemon's memory with them, without a login, for every tenant.
   */
  async persist(partition: Partition, objects: readonly HsmObject[]): Promise<void> {
    const rows = new Map(objects.filter((o) => o.isToken).map((o) => [o, {
      id: o.handle, partitionId: partition.id, attributes: encodeAttributes(o.attributes), sealed: o.sealed,
    }]));
    const bytes = objects.map((o) => {
      const row = rows.get(o);
      return row ? rowBytes(row) : encodeAttributes(o.attributes).length + (o.secret?.length ?? 0);
    });
    // An object written again (changed attributes) gives back the room it took.
    let growth = 0;
    for (const [i, object] of objects.entries()) growth += bytes[i]! - (partition.objects.get(object.handle)?.storedBytes ?? 0);
    const used = storedBytesOf(partition);
    if (growth > 0 && used + growth > this.maxPartitionBytes) {
      throw new Pkcs11Error(CKR.DEVICE_MEMORY, `the partition's objects would take ${used + growth} bytes, over hsm.maxPartitionBytes (${this.maxPartitionBytes})`);
    }
    if (rows.size > 0) await this.stored(() => this.store.putObjects([...rows.values()]));
    for (const [i, object] of objects.entries()) object.storedBytes = bytes[i]!;
  }

  async unpersist(object: HsmObject): Promise<void> {
    if (!object.isToken) return;
    await this.stored(() => this.store.deleteObject(object.handle));
  }

  async savePartition(partition: Partition, row: PartitionRow, dropObjects = false): Promise<void> {
    await this.stored(() => this.store.updatePartition(row, dropObjects));
    partition.row = row;
  }

  async recordLogin(partition: Partition, role: Role, ok: boolean): Promise<number> {
    const unstored = partition.unstoredFailures(role);
    let failures: number;
    try {
      failures = await this.stored(() => this.store.recordLogin(partition.id, role, ok, this.policy.maxFailedLogins, unstored));
    } catch (error) {
      if (ok) throw error;
      // Not stored (disk full, database down): counted here all the same, or a wrong PIN would
      // cost nothing while the store refuses writes, and the lock would never come. The caller
      // answers it as the wrong PIN it is (CKR_PIN_INCORRECT, then CKR_PIN_LOCKED), audited.
      partition.countUnstoredFailure(role);
      if (isLocked(this.policy, partition.failures(role))) this.logins.forget(partition.id, role);
      return partition.failures(role);
    }
    partition.row = { ...partition.row, failures: { ...partition.row.failures, [role]: failures } };
    partition.unstoredFailuresStored(role, unstored);
    return failures;
  }
}

/** Whether an object in memory is the stored row as it is (same attributes, same sealed secret). */
function sameStoredObject(object: HsmObject, row: ObjectRow): boolean {
  const sealedSame = object.sealed === null ? row.sealed === null : row.sealed !== null && object.sealed.equals(row.sealed);
  return sealedSame && encodeAttributes(object.attributes).equals(row.attributes);
}

function tokenObjects(partition: Partition): HsmObject[] {
  return [...partition.objects.values()].filter((o) => o.isToken).sort((a, b) => a.handle - b.handle);
}

function openSecret(key: Buffer, partitionId: number, object: HsmObject): Buffer | null {
  if (object.sealed === null) return null;
  const clear = unseal(key, object.sealed, objectAad(partitionId, object.handle));
  if (clear === null) throw new Pkcs11Error(CKR.DEVICE_ERROR, `the secret of object ${object.handle} does not open`);
  return clear;
}

/** What makes two objects the same object: every attribute, and the secret part. */
function sameObject(o: { attributes: ReadonlyMap<number, AttributeValue>; secret: Buffer | null }): string {
  const hash = createHash('sha256').update(encodeAttributes(o.attributes));
  hash.update(o.secret === null ? Buffer.from([0]) : Buffer.concat([Buffer.from([1]), o.secret]));
  return hash.digest('hex');
}

function checkLabel(label: string): string {
  const trimmed = label.replace(/ +$/, '');
  if (Buffer.byteLength(trimmed, 'utf8') > LABEL_BYTES) throw new HsmAdminError('NTLS_ERR_LABEL_INVALID', `a label has at most ${LABEL_BYTES} bytes`);
  return trimmed;
}

/** CK_TOKEN_INFO.utcTime: YYYYMMDDhhmmss00. */
function utcTime(at: Date): string {
  return at.toISOString().replace(/[-:T]/g, '').slice(0, 14) + '00';
}

/** A partition's sessions end where it goes (deleted, the HSM closed): their operations give back what they hold. */
function endSessions(partition: Partition): void {
  for (const session of partition.sessions) session.end();
  partition.sessions.clear();
}

/** What a stored row takes against its partition's room. */
function rowBytes(row: Pick<ObjectRow, 'attributes' | 'sealed'>): number {
  return row.attributes.length + (row.sealed?.length ?? 0);
}

/** A token object as the store holds it. */
function storedObject(row: ObjectRow, attributes: Map<number, AttributeValue>): HsmObject {
  const object = new HsmObject(row.id, row.partitionId, attributes, null, row.sealed, null);
  object.storedBytes = rowBytes(row);
  return object;
}

/** The room a partition's objects take: token objects in the store, session objects in memory. */
function storedBytesOf(partition: Partition): number {
  let bytes = 0;
  for (const object of partition.objects.values()) bytes += object.storedBytes;
  return bytes;
}
