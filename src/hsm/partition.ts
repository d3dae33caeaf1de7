// A partition: one token in one slot. It holds the token's objects (token objects loaded from
// the store, session objects of every session), its open sessions, and while some
// application is logged in, the partition key that opens sealed secrets.

import type { PartitionRow, Role } from '../store/hsm-store.js';
import type { HsmObject } from './object.js';
import { ObjectTable } from './object-table.js';

/** What the partition knows of a session open on it (the software session, src/hsm/session.ts). */
export interface PartitionSession {
  readonly readWrite: boolean;
  closed: boolean;
  /** The session ends: closed, its operations gone with what they hold. */
  end(): void;
}

export class Partition {
  readonly objects = new ObjectTable();
  readonly sessions = new Set<PartitionSession>();
  private key: Buffer | null = null;
  /** Logins (by holder: an application of the token model) that keep the partition key in memory. */
  private readonly holders = new Set<string>();
  /**
   * Secret parts already unsealed while the key is held, by handle, with the sealed blob they
   * came from: each call does not decrypt again, and the mechanisms keep their parsed key for
   * the same Buffer.
   */
  private readonly unsealed = new Map<number, { sealed: Buffer; clear: Buffer }>();

  /**
   * Wrong PINs judged here whose count the store could not take (disk full, database down): kept
   * in memory, so the lock holds while the store refuses writes, and added to the stored count
   * at the next login it records.
   */
  private readonly unstored: Record<Role, number> = { so: 0, co: 0, cu: 0 };

  constructor(public row: PartitionRow) {}

  /** The role's consecutive wrong PINs: the stored count and those the store could not take. */
  failures(role: Role): number {
    return this.row.failures[role] + this.unstored[role];
  }

  unstoredFailures(role: Role): number {
    return this.unstored[role];
  }

  countUnstoredFailure(role: Role): void {
    this.unstored[role]++;
  }

  /** A new credential reset the count. */
  clearUnstoredFailures(role: Role): void {
    this.unstored[role] = 0;
  }

  /** The store took `count` of them (those counted while its write ran stay). */
  unstoredFailuresStored(role: Role, count: number): void {
    this.unstored[role] = Math.max(0, this.unstored[role] - count);
  }

  get id(): number { return this.row.id; }
  get slotId(): number { return this.row.slotId; }
  get initialized(): boolean { return this.row.initialized; }

  /** The partition key, or null while nobody is logged in. */
  get partitionKey(): Buffer | null { return this.key; }

  /** Keeps the key for a holder that has just logged in. */
  hold(holder: string, key: Buffer): void {
    if (this.key === null) this.key = key;
    else key.fill(0);
    this.holders.add(holder);
  }

  /** A holder logged out: the key (and what it opened) is wiped from memory when the last one goes. */
  release(holder: string): void {
    this.holders.delete(holder);
    if (this.holders.size === 0) this.forget();
  }

  /** Nobody holds the key any more (last logout, C_InitToken, partition deleted). */
  forget(): void {
    this.holders.clear();
    this.key?.fill(0);
    this.key = null;
    for (const entry of this.unsealed.values()) entry.clear.fill(0);
    this.unsealed.clear();
  }

  unsealedSecret(object: HsmObject): Buffer | undefined {
    const entry = this.unsealed.get(object.handle);
    return entry !== undefined && entry.sealed === object.sealed ? entry.clear : undefined;
  }

  keepUnsealed(object: HsmObject, clear: Buffer): void {
    if (this.key === null || object.sealed === null) return;
    this.dropUnsealed(object.handle);
    this.unsealed.set(object.handle, { sealed: object.sealed, clear });
  }

  /** The object is gone or its secret changed: the unsealed copy goes (not wiped: an operation may still use it). */
  dropUnsealed(handle: number): void {
    this.unsealed.delete(handle);
  }

  sessionCount(readWriteOnly: boolean): number {
    let n = 0;
    for (const s of this.sessions) if (!readWriteOnly || s.readWrite) n++;
    return n;
  }

  hasCredential(role: Role): boolean {
    return this.row.credentials[role] !== null;
  }
}
