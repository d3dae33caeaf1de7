// What open operations hold in memory, counted for the whole process and per client, so that
// sessions, which have no fixed number, cannot fill the daemon's memory (docs/operations.md
// "Limits"). Past a limit the call that would keep more is CKR_DEVICE_MEMORY.

import { CKR, Pkcs11Error } from '../pkcs11/constants.js';

/**
 * The bytes open operations of the process hold (the input a mechanism keeps, an output a length
 * query computed and the caller has not taken), against a budget (hsm.operationMemoryBudget),
 * and each owner's (a client's) share of it: a quarter, as datapath.clientMemoryBudget is of
 * the datapath's.
 */
export class OperationMemory {
  private held = 0;
  private readonly byOwner = new Map<string, number>();

  constructor(public limit: number) {}

  get bytes(): number {
    return this.held;
  }

  get ownerLimit(): number {
    return Math.floor(this.limit / 4);
  }

  reserve(bytes: number, owner?: string): void {
    if (this.held + bytes > this.limit) throw new Pkcs11Error(CKR.DEVICE_MEMORY, `open operations hold ${this.held} bytes; ${bytes} more would pass ${this.limit}`);
    if (owner !== undefined) {
      const mine = this.byOwner.get(owner) ?? 0;
      if (mine + bytes > this.ownerLimit) throw new Pkcs11Error(CKR.DEVICE_MEMORY, `the open operations of ${owner} hold ${mine} bytes; ${bytes} more would pass its share, ${this.ownerLimit}`);
      this.byOwner.set(owner, mine + bytes);
    }
    this.held += bytes;
  }

  release(bytes: number, owner?: string): void {
    this.held -= bytes;
    if (owner === undefined) return;
    const left = (this.byOwner.get(owner) ?? 0) - bytes;
    if (left > 0) this.byOwner.set(owner, left);
    else this.byOwner.delete(owner);
  }
}

const DEFAULT_OPERATION_MEMORY = 256 * 1024 * 1024;
export const operationMemory = new OperationMemory(DEFAULT_OPERATION_MEMORY);
