// The slot table: which device token answers at each slot of the token model, and what one
// client sees of it. Partitions of the software HSM keep their own slot numbers, a PKCS#11
// module's mapped tokens theirs, a deployed USB token its virtual slot (100 up): all of them
// are mounts here, so a call finds its device in one look-up and session handles need no ranges.
import { CKR, Pkcs11Error } from '../pkcs11/constants.js';
import type { Device } from './device.js';
import { Mount } from './session.js';

export { Mount };

export class SlotTable {
  private readonly mounts = new Map<number, Mount>();

  mount(slot: number, device: Device, deviceSlot: number): Mount {
    if (this.mounts.has(slot)) throw new Error(`slot ${slot} is taken`);
    const mount = new Mount(slot, device, deviceSlot);
    this.mounts.set(slot, mount);
    return mount;
  }

  remove(slot: number): Mount | undefined {
    const mount = this.mounts.get(slot);
    this.mounts.delete(slot);
    return mount;
  }

  /** The mount at a slot, or CKR_SLOT_ID_INVALID. */
  get(slot: number): Mount {
    const mount = this.mounts.get(slot);
    if (!mount) throw new Pkcs11Error(CKR.SLOT_ID_INVALID, `slot ${slot}`);
    return mount;
  }

  find(slot: number): Mount | undefined {
    return this.mounts.get(slot);
  }

  list(): Mount[] {
    return [...this.mounts.values()].sort((a, b) => a.slot - b.slot);
  }
}

/**
 * What one client sees: its assigned tokens, as slots numbered 0, 1, ... in assignment order. A
 * slot id outside that list is CKR_SLOT_ID_INVALID; the model's own slot numbers never reach it.
 * A live link keeps its numbers when assignments change (`keepingNumbersOf`): a revoked slot
 * leaves a hole for the link's life (its number never names another token), a new one comes
 * after the last number the link has seen.
 */
export class ClientSlots {
  private readonly toModel: Array<number | undefined>;
  private readonly toClient: Map<number, number>;

  constructor(modelSlots: ReadonlyArray<number | undefined>) {
    this.toModel = [...modelSlots];
    this.toClient = new Map();
    this.toModel.forEach((slot, index) => { if (slot !== undefined) this.toClient.set(slot, index); });
  }

  /**
   * This view's tokens numbered as `earlier` numbered them. An application reads the slot list
   * once and goes on using those numbers: renumbering under it would send its next C_OpenSession
   * and C_Login to another partition.
   */
  keepingNumbersOf(earlier: ClientSlots): ClientSlots {
    const kept = earlier.toModel.map((slot) => (slot !== undefined && this.includes(slot) ? slot : undefined));
    const added = this.toModel.filter((slot): slot is number => slot !== undefined && !earlier.includes(slot));
    return new ClientSlots([...kept, ...added]);
  }

  clientSlots(): number[] {
    return [...this.toClient.values()].sort((a, b) => a - b);
  }

  modelSlot(clientSlot: number): number {
    const slot = Number.isInteger(clientSlot) ? this.toModel[clientSlot] : undefined;
    if (slot === undefined) throw new Pkcs11Error(CKR.SLOT_ID_INVALID, `slot ${clientSlot}`);
    return slot;
  }

  clientSlot(modelSlot: number): number {
    const slot = this.toClient.get(modelSlot);
    if (slot === undefined) throw new Pkcs11Error(CKR.SLOT_ID_INVALID, `slot ${modelSlot} is not assigned`);
    return slot;
  }

  modelSlots(): number[] {
    return this.toModel.filter((slot): slot is number => slot !== undefined);
  }

  includes(modelSlot: number): boolean {
    return this.toClient.has(modelSlot);
  }
}
