// What the software HSM needs of its durable store, whichever engine is under it: the embedded
// SQLite file of the home (hsm-store.ts, the default) or a PostgreSQL database shared by several
// nodes (pg-store.ts). Both keep rows and opaque blobs and know nothing of PKCS#11; secrets are
// sealed before they reach a store, and every row carries its MAC (integrity.ts).
//
// A method answers when its write is durable (SQLite: synchronously, on disk; PostgreSQL: the
// COMMIT acknowledged). Either form is awaited by the HSM before a PKCS#11 call answers.

import type { Credential } from './credential.js';

export type MaybePromise<T> = T | Promise<T>;

export type Role = 'so' | 'co' | 'cu';

export interface PartitionRow {
  id: number;
  slotId: number;
  serial: string;
  /** The operator's name for the partition (`ntls partition ...`); clients cannot change it. */
  name: string;
  /** The token label, the client's to set (C_InitToken). */
  label: string;
  initialized: boolean;
  credentials: Record<Role, Credential | null>;
  failures: Record<Role, number>;
  /** What the operator allows on this partition beyond the defaults (`ntls partition policy`). */
  policy: PartitionPolicy;
}

/** A partition's policy; every setting off by default. */
export interface PartitionPolicy {
  /** RSA keys of 1024 bits generated, and of 512 to 1023 bits imported and used (legacy sizes). */
  legacyRsa: boolean;
}

export const DEFAULT_PARTITION_POLICY: PartitionPolicy = Object.freeze({ legacyRsa: false });

/** The stored form of a policy (the `policy` column, and what the row MAC covers): null while it is the default. */
export function encodePolicy(policy: PartitionPolicy): string | null {
  return policy.legacyRsa ? JSON.stringify({ legacyRsa: true }) : null;
}

export function decodePolicy(text: string | null | undefined): PartitionPolicy {
  if (text === null || text === undefined) return { ...DEFAULT_PARTITION_POLICY };
  const parsed = JSON.parse(text) as Partial<PartitionPolicy>;
  return { legacyRsa: parsed.legacyRsa === true };
}

export interface ObjectRow {
  id: number;
  partitionId: number;
  /** Clear attributes, encoded by the token model. */
  attributes: Buffer;
  /** Secret part sealed under the partition key, or null. */
  sealed: Buffer | null;
}

/** One partition as another node left it: its row and token objects, or null when it was deleted. */
export interface PartitionState {
  id: number;
  row: PartitionRow | null;
  /** Its token objects, or null when they did not change. */
  objects: ObjectRow[] | null;
}

export interface HsmStoreBackend {
  /** 'sqlite' or 'postgres'. */
  readonly engine: 'sqlite' | 'postgres';
  /** Where it is, for messages (a path, or a URL without its password). */
  readonly path: string;
  /** Whether partition policies are kept (false: a token image made before them, which keeps the defaults). */
  readonly keepsPolicies: boolean;
  /**
   * A consistent copy of the store into `file` while it serves (`ntls home backup`); absent where
   * the database is backed up by its own tools (PostgreSQL: pg_dump, or its replication).
   */
  backup?(file: string): Promise<void>;
  partitions(): MaybePromise<PartitionRow[]>;
  /** Every object row; StoreIntegrityError when one fails its MAC. */
  objects(): MaybePromise<ObjectRow[]>;
  /**
   * A block of object ids (`count` from `first`) no other writer of this store will use (ids are object
   * handles, and the secret's sealing binds them, so they are taken before the row is written).
   */
  reserveObjectIds(): MaybePromise<{ first: number; count: number }>;
  insertPartition(p: PartitionRow): MaybePromise<void>;
  /** Writes the whole partition row; with `dropObjects`, deletes its objects in the same transaction (C_InitToken). */
  updatePartition(p: PartitionRow, dropObjects?: boolean): MaybePromise<void>;
  /**
   * A login judged: a failure adds one to the role's count, a success clears it unless the role
   * has meanwhile reached `limit` (another node counted the last failures). `unstored` failures
   * (counted in memory while the store refused writes) are added first. One atomic step on the
   * stored count; returns the count after it.
   */
  recordLogin(partitionId: number, role: Role, ok: boolean, limit: number, unstored: number): MaybePromise<number>;
  deletePartition(id: number): MaybePromise<void>;
  /** Inserts or replaces objects, all in one transaction (a key pair is two rows, written together). */
  putObjects(rows: readonly ObjectRow[]): MaybePromise<void>;
  /** Replaces every object of a partition with `rows`, in one transaction (a restore that replaces). */
  replaceObjects(partitionId: number, rows: readonly ObjectRow[]): MaybePromise<void>;
  deleteObject(id: number): MaybePromise<void>;
  /**
   * A store shared with other nodes: the partitions others changed since the last call (and
   * since this node's own writes), each as it now is. Absent for a store this process alone writes.
   */
  changes?(): Promise<PartitionState[]>;
  close(): MaybePromise<void>;
}
