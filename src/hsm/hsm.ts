// The HSM: partitions (one token per slot) over the durable store, the mechanisms it offers,
// and the applications using it. Administration (create/delete/list partitions) is here; the
// PKCS#11 calls are made through an HsmApplication, one per client application, which owns
// its sessions and login state.

import { randomBytes, randomInt } from 'node:crypto';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import { CKF, CKR, Pkcs11Error } from '../pkcs11/constants.js';
import { DEFAULT_KDF, createCredential, type Credential, type KdfParameters } from '../store/credential.js';
import { StoreOpenError } from '../store/errors.js';
import { HsmStore, storePath, type PartitionRow, type Role } from '../store/hsm-store.js';
import { KEY_BYTES, seal, unseal } from '../store/seal.js';
import { decodeAttributes, encodeAttributes } from './attributes.js';
import type { MechanismInfo, Mechanisms } from './mechanisms/contract.js';
import { HsmObject, objectAad } from './object.js';
import { Partition } from './partition.js';
import { DEFAULT_PIN_POLICY, checkPinLength, pinBytes, pinFlags, type PinPolicy } from './pin-policy.js';
import { HsmApplication } from './application.js';
import { credentialAad } from './login.js';
import type { HsmBackend } from './backend.js';

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
  pinPolicy?: Partial<PinPolicy>;
  /** scrypt cost of PIN-derived keys; lower it only in tests. */
  kdf?: Partial<KdfParameters>;
  /**
   * Mechanisms whose C_xxxUpdate is refused (raw ECDSA, RSA PKCS#1 and OAEP, key wrap). The
   * Mechanisms contract does not carry this; the software set exports it as singlePartMechanisms.
   */
  singlePartMechanisms?: ReadonlySet<number>;
}

export interface Version { major: number; minor: number }

export interface LibraryInfo {
  cryptokiVersion: Version;
  manufacturerID: string;
  flags: number;
  libraryDescription: string;
  libraryVersion: Version;
}

export interface SlotInfo {
  slotDescription: string;
  manufacturerID: string;
  flags: number;
  hardwareVersion: Version;
  firmwareVersion: Version;
}

/** CK_TOKEN_INFO; strings unpadded (the wire codec pads them); null = CK_UNAVAILABLE_INFORMATION. */
export interface TokenInfo {
  label: string;
  manufacturerID: string;
  model: string;
  serialNumber: string;
  flags: number;
  maxSessionCount: number;
  sessionCount: number;
  maxRwSessionCount: number;
  rwSessionCount: number;
  maxPinLen: number;
  minPinLen: number;
  totalPublicMemory: number | null;
  freePublicMemory: number | null;
  totalPrivateMemory: number | null;
  freePrivateMemory: number | null;
  hardwareVersion: Version;
  firmwareVersion: Version;
  utcTime: string;
}

export interface PartitionSummary {
  slotId: number;
  serial: string;
  label: string;
  initialized: boolean;
  /** null when the backend cannot count them (a PKCS#11 module's token). */
  tokenObjects: number | null;
}

export type HsmAdminErrorCode = 'PARTITION_LIMIT' | 'PARTITION_NOT_FOUND' | 'LABEL_INVALID' | 'HSM_CLOSED';

/** A refused administrator request (not a PKCS#11 call). */
export class HsmAdminError extends Error {
  constructor(readonly code: HsmAdminErrorCode, message: string) {
    super(message);
    this.name = 'HsmAdminError';
  }
}

const MANUFACTURER = 'NTLS';
const VERSION: Version = { major: 0, minor: 1 };
const LABEL_BYTES = 32;

export class Hsm implements HsmBackend {
  readonly kind = 'software' as const;
  readonly partitions = new Map<number, Partition>();
  readonly policy: PinPolicy;
  readonly kdf: KdfParameters;
  readonly maxPartitions: number;
  readonly singlePart: ReadonlySet<number>;
  private readonly mechanismTable: Map<number, MechanismInfo>;
  private readonly applications = new Map<string, HsmApplication>();
  private nextObject: number;
  private nextSession = 1;
  private reservedPartitionId = 0;
  private closed = false;

  private constructor(readonly store: HsmStore, readonly mechanisms: Mechanisms, options: HsmOptions, readonly logger?: Logger) {
    this.policy = { ...DEFAULT_PIN_POLICY, ...options.pinPolicy };
    this.kdf = { ...DEFAULT_KDF, ...options.kdf };
    this.maxPartitions = options.maxPartitions ?? 100;
    this.singlePart = options.singlePartMechanisms ?? new Set();
    this.mechanismTable = new Map(mechanisms.list().map((m) => [m.type, m]));
    this.nextObject = store.maxObjectId() + 1;
  }

  /**
   * Opens the store under the home and loads the container list. A store that cannot be read
   * logs "Fail to retrieve container list" and "Unable to load system containers!" and throws
   * StoreOpenError (code LUNA_RET_DEVICE_ERROR); the file is left as it is.
   */
  static async open(options: HsmOptions): Promise<Hsm> {
    // Settings first: a bad one is a configuration error, not a store failure.
    const cost = options.kdf?.cost ?? DEFAULT_KDF.cost;
    if (!Number.isInteger(cost) || cost < 2 || (cost & (cost - 1)) !== 0) {
      throw new RangeError(`hsm.kdfCost must be a power of two (got ${cost})`);
    }
    const policy = { ...DEFAULT_PIN_POLICY, ...options.pinPolicy };
    if (policy.minLength > policy.maxLength) {
      throw new RangeError(`hsm.pinMinLength (${policy.minLength}) is above hsm.pinMaxLength (${policy.maxLength})`);
    }
    const path = options.storeFile ?? storePath(options.home);
    let store: HsmStore | undefined;
    try {
      store = HsmStore.open(path, options.storeFile === undefined ? {} : { create: false, journal: 'delete' });
      const hsm = new Hsm(store, options.mechanisms, options, options.logger);
      hsm.load();
      options.logger?.log(Catalogue.partitionsFound, { count: hsm.partitions.size });
      return hsm;
    } catch (error) {
      store?.close();
      const failure = error instanceof StoreOpenError ? error : new StoreOpenError(path, (error as Error).message, { cause: error });
      options.logger?.log(Catalogue.containerListFailed);
      options.logger?.log(Catalogue.systemContainersLoadFailed);
      throw failure;
    }
  }

  private load(): void {
    for (const row of this.store.partitions()) this.partitions.set(row.slotId, new Partition(row));
    const byId = new Map([...this.partitions.values()].map((p) => [p.id, p]));
    for (const row of this.store.objects()) {
      const partition = byId.get(row.partitionId);
      if (!partition) throw new Error(`object ${row.id} belongs to no partition`);
      const attributes = decodeAttributes(row.attributes);
      partition.objects.set(row.id, new HsmObject(row.id, row.partitionId, attributes, null, row.sealed, null));
    }
  }

  /** The view of one client application: its sessions and login state are its own. */
  application(id: string): HsmApplication {
    this.checkOpen();
    let app = this.applications.get(id);
    if (!app) {
      app = new HsmApplication(this, id);
      this.applications.set(id, app);
    }
    return app;
  }

  /** Called by HsmApplication.finalize(): forgets an application that has closed everything. */
  dropApplication(id: string): void {
    this.applications.delete(id);
  }

  /**
   * A finalized application opens a session again. Refused (CKR_CRYPTOKI_NOT_INITIALIZED) when
   * another view took its id meanwhile: two views of one id would share session objects.
   */
  adoptApplication(app: HsmApplication): void {
    this.checkOpenForCalls();
    const other = this.applications.get(app.id);
    if (other !== undefined && other !== app) throw new Pkcs11Error(CKR.CRYPTOKI_NOT_INITIALIZED);
    this.applications.set(app.id, app);
  }

  private checkOpenForCalls(): void {
    if (this.closed) throw new Pkcs11Error(CKR.DEVICE_REMOVED, 'the HSM has been closed');
  }

  close(): void {
    if (this.closed) return;
    for (const app of [...this.applications.values()]) app.finalize();
    for (const p of this.partitions.values()) p.forget();
    this.store.close();
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new HsmAdminError('HSM_CLOSED', 'the HSM has been closed');
  }

  // --- Administration -----------------------------------------------------------------------

  listPartitions(): PartitionSummary[] {
    return [...this.partitions.values()].sort((a, b) => a.slotId - b.slotId).map((p) => ({
      slotId: p.slotId, serial: p.row.serial, label: p.row.label, initialized: p.initialized,
      tokenObjects: [...p.objects.values()].filter((o) => o.isToken).length,
    }));
  }

  /**
   * Creates a partition in a new slot. With an SO PIN the token is initialised at once (as
   * C_InitToken would); without, its SO initialises it with C_InitToken.
   */
  async createPartition(options: { label?: string; soPin?: string | Buffer } = {}): Promise<PartitionSummary> {
    this.checkOpen();
    if (this.partitions.size >= this.maxPartitions) {
      throw new HsmAdminError('PARTITION_LIMIT', `the HSM holds at most ${this.maxPartitions} partitions; delete one or raise the limit`);
    }
    const label = checkLabel(options.label ?? '');
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
        throw new HsmAdminError('PARTITION_LIMIT', `the HSM holds at most ${this.maxPartitions} partitions; delete one or raise the limit`);
      }
    }
    const slotId = Math.max(-1, ...[...this.partitions.keys()]) + 1;
    const row: PartitionRow = {
      id, slotId, serial: this.newSerial(), label, initialized: so !== null,
      credentials: { so, co: null, cu: null }, failures: { so: 0, co: 0, cu: 0 },
    };
    this.store.insertPartition(row);
    const partition = new Partition(row);
    this.partitions.set(slotId, partition);
    return this.listPartitions().find((p) => p.slotId === slotId)!;
  }

  /** Deletes a partition and every object in it; its open sessions end. */
  deletePartition(slotId: number): void {
    this.checkOpen();
    const partition = this.partitions.get(slotId);
    if (!partition) throw new HsmAdminError('PARTITION_NOT_FOUND', `no partition in slot ${slotId}`);
    this.store.deletePartition(partition.id);
    for (const app of this.applications.values()) app.dropPartition(partition);
    partition.forget();
    this.partitions.delete(slotId);
  }

  private newSerial(): string {
    const taken = new Set([...this.partitions.values()].map((p) => p.row.serial));
    for (;;) {
      const serial = String(randomInt(100_000_000, 999_999_999)) + String(randomInt(100, 999));
      if (!taken.has(serial)) return serial;
    }
  }

  // --- Slot, token and mechanism information (no session needed) -----------------------------

  partition(slotId: number): Partition {
    this.checkOpenForCalls();
    const partition = this.partitions.get(slotId);
    if (!partition) throw new Pkcs11Error(CKR.SLOT_ID_INVALID);
    return partition;
  }

  getInfo(): LibraryInfo {
    return {
      cryptokiVersion: { major: 2, minor: 40 }, manufacturerID: MANUFACTURER, flags: 0,
      libraryDescription: 'NTLS network HSM', libraryVersion: VERSION,
    };
  }

  getSlotList(): number[] {
    // Every slot holds its token: partitions are never "removed", only deleted with their slot.
    return [...this.partitions.keys()].sort((a, b) => a - b);
  }

  getSlotInfo(slotId: number): SlotInfo {
    const partition = this.partition(slotId);
    return {
      slotDescription: `NTLS partition ${partition.row.serial}`, manufacturerID: MANUFACTURER,
      flags: CKF.TOKEN_PRESENT | CKF.HW_SLOT, hardwareVersion: VERSION, firmwareVersion: VERSION,
    };
  }

  getTokenInfo(slotId: number): TokenInfo {
    const p = this.partition(slotId);
    let flags = CKF.RNG | CKF.LOGIN_REQUIRED | CKF.RESTORE_KEY_NOT_NEEDED;
    if (p.initialized) flags |= CKF.TOKEN_INITIALIZED;
    if (p.hasCredential('co')) flags |= CKF.USER_PIN_INITIALIZED;
    flags |= pinFlags(this.policy, 'so', p.row.failures.so) | pinFlags(this.policy, 'co', p.row.failures.co);
    return {
      label: p.row.label, manufacturerID: MANUFACTURER, model: 'NTLS partition', serialNumber: p.row.serial, flags,
      maxSessionCount: 0, sessionCount: p.sessionCount(false), maxRwSessionCount: 0, rwSessionCount: p.sessionCount(true),
      maxPinLen: this.policy.maxLength, minPinLen: this.policy.minLength,
      totalPublicMemory: null, freePublicMemory: null, totalPrivateMemory: null, freePrivateMemory: null,
      hardwareVersion: VERSION, firmwareVersion: VERSION, utcTime: utcTime(new Date()),
    };
  }

  getMechanismList(slotId: number): number[] {
    this.partition(slotId);
    return [...this.mechanismTable.keys()].sort((a, b) => a - b);
  }

  getMechanismInfo(slotId: number, type: number): MechanismInfo {
    this.partition(slotId);
    const info = this.mechanismTable.get(type);
    if (!info) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
    return { ...info };
  }

  /** The mechanism's info if it supports the function (CKF_SIGN ...), else CKR_MECHANISM_INVALID. */
  mechanismFor(type: number, flag: number): MechanismInfo {
    const info = this.mechanismTable.get(type);
    if (!info || (info.flags & flag) === 0) throw new Pkcs11Error(CKR.MECHANISM_INVALID);
    return info;
  }

  // --- Objects: handles, persistence, secret parts --------------------------------------------

  newObjectHandle(): number {
    return this.nextObject++;
  }

  newSessionHandle(): number {
    return this.nextSession++;
  }

  /** Seals a token object's secret part; needs the partition key (some login on the partition). */
  sealSecret(partition: Partition, handle: number, secret: Buffer): Buffer {
    const key = partition.partitionKey;
    if (key === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'the partition key is locked');
    return seal(key, secret, objectAad(partition.id, handle));
  }

  /** The secret part in clear: from memory (session objects) or unsealed (token objects). */
  secretOf(partition: Partition, object: HsmObject): Buffer {
    if (object.secret !== null) return object.secret;
    if (object.sealed === null) throw new Pkcs11Error(CKR.GENERAL_ERROR, 'object has no secret part');
    const known = partition.unsealedSecret(object);
    if (known !== undefined) return known;
    const key = partition.partitionKey;
    if (key === null) throw new Pkcs11Error(CKR.USER_NOT_LOGGED_IN, 'the partition key is locked');
    const clear = unseal(key, object.sealed, objectAad(partition.id, object.handle));
    if (clear === null) throw new Pkcs11Error(CKR.DEVICE_ERROR, 'a stored secret does not open');
    partition.keepUnsealed(object, clear);
    return clear;
  }

  /** Writes token objects (all of them in one transaction); session objects are not stored. */
  persist(partition: Partition, objects: readonly HsmObject[]): void {
    const rows = objects.filter((o) => o.isToken).map((o) => ({
      id: o.handle, partitionId: partition.id, attributes: encodeAttributes(o.attributes), sealed: o.sealed,
    }));
    if (rows.length === 0) return;
    try {
      this.store.putObjects(rows);
    } catch (error) {
      throw new Pkcs11Error(CKR.DEVICE_ERROR, (error as Error).message);
    }
  }

  unpersist(object: HsmObject): void {
    if (!object.isToken) return;
    try {
      this.store.deleteObject(object.handle);
    } catch (error) {
      throw new Pkcs11Error(CKR.DEVICE_ERROR, (error as Error).message);
    }
  }

  /** Writes a partition's new row, and only then takes it as the partition's state. */
  savePartition(partition: Partition, row: PartitionRow, dropObjects = false): void {
    try {
      this.store.updatePartition(row, dropObjects);
    } catch (error) {
      throw new Pkcs11Error(CKR.DEVICE_ERROR, (error as Error).message);
    }
    partition.row = row;
  }

  /** Records a role's consecutive failed logins before the call returns. */
  saveFailures(partition: Partition, role: Role, failures: number): void {
    try {
      this.store.setFailures(partition.id, role, failures);
    } catch (error) {
      throw new Pkcs11Error(CKR.DEVICE_ERROR, (error as Error).message);
    }
    partition.row = { ...partition.row, failures: { ...partition.row.failures, [role]: failures } };
  }

  /** All sessions of all applications on a partition (C_InitToken refuses while any is open). */
  sessionsOn(partition: Partition): number {
    return partition.sessions.size;
  }

  sessionCount(slotId: number): number {
    return this.sessionsOn(this.partition(slotId));
  }
}

function checkLabel(label: string): string {
  const trimmed = label.replace(/ +$/, '');
  if (Buffer.byteLength(trimmed, 'utf8') > LABEL_BYTES) throw new HsmAdminError('LABEL_INVALID', `a label has at most ${LABEL_BYTES} bytes`);
  return trimmed;
}


/** CK_TOKEN_INFO.utcTime: YYYYMMDDhhmmss00. */
function utcTime(at: Date): string {
  return at.toISOString().replace(/[-:T]/g, '').slice(0, 14) + '00';
}
