// The handles open searches hold (C_FindObjectsInit keeps every match until C_FindObjects hands
// them out): counted per client and for the whole model, so a client cannot grow the daemon's
// memory without bound by opening a search over many objects on each of many sessions.

/** One client's open searches hold at most this many handles (about 8 MB). */
export const FIND_HANDLES_PER_OWNER = 1 << 20;
/** Every open search together (about 64 MB). */
export const FIND_HANDLES_IN_ALL = 8 << 20;

export class FindBudget {
  private readonly byOwner = new Map<string, number>();
  private total = 0;

  constructor(readonly perOwner = FIND_HANDLES_PER_OWNER, readonly inAll = FIND_HANDLES_IN_ALL) {}

  /** Takes `count` handles for `owner`'s search; false (nothing taken) when it would go over. */
  take(owner: string, count: number): boolean {
    const held = this.byOwner.get(owner) ?? 0;
    if (held + count > this.perOwner || this.total + count > this.inAll) return false;
    this.byOwner.set(owner, held + count);
    this.total += count;
    return true;
  }

  give(owner: string, count: number): void {
    const held = (this.byOwner.get(owner) ?? 0) - count;
    if (held > 0) this.byOwner.set(owner, held);
    else this.byOwner.delete(owner);
    this.total -= count;
  }

  held(owner?: string): number {
    return owner === undefined ? this.total : this.byOwner.get(owner) ?? 0;
  }
}
