// What one client sees of the HSM: its assigned partitions, as slots numbered 0, 1, ... in
// assignment order. A slot id outside that list is CKR_SLOT_ID_INVALID; the HSM's own slot
// numbers never reach the client.
import { CKR, Pkcs11Error } from '../../pkcs11/constants.js';

export class SlotView {
  private readonly toHsm: number[];
  private readonly toClient: Map<number, number>;

  constructor(hsmSlots: readonly number[]) {
    this.toHsm = [...hsmSlots];
    this.toClient = new Map(this.toHsm.map((hsmSlot, index) => [hsmSlot, index]));
  }

  get size(): number {
    return this.toHsm.length;
  }

  clientSlots(): number[] {
    return this.toHsm.map((_, index) => index);
  }

  hsmSlot(clientSlot: number): number {
    const slot = Number.isInteger(clientSlot) ? this.toHsm[clientSlot] : undefined;
    if (slot === undefined) throw new Pkcs11Error(CKR.SLOT_ID_INVALID, `slot ${clientSlot}`);
    return slot;
  }

  clientSlot(hsmSlot: number): number {
    const slot = this.toClient.get(hsmSlot);
    if (slot === undefined) throw new Pkcs11Error(CKR.SLOT_ID_INVALID, `HSM slot ${hsmSlot} is not assigned`);
    return slot;
  }

  hsmSlots(): number[] {
    return [...this.toHsm];
  }

  includes(hsmSlot: number): boolean {
    return this.toClient.has(hsmSlot);
  }
}
