// An application's object handles on one token. The device names objects by their own ids, the
// same for every application, and the application mostly gets those ids as they are. PKCS#11
// 2.40 (C_Logout) says more: "any of the application's handles to private objects become invalid
// (even if a user is later logged back into the token, those handles remain invalid)". So the
// private objects' handles this application was given are retired at its logout, and when it
// finds or makes such an object again it gets a new handle for it (above ALIAS_BASE, never given
// twice), which the next logout retires in turn.

/** CK_INVALID_HANDLE: what a retired handle stands for, an object no device has. */
const NO_OBJECT = 0;
/** Above any id the store hands out, below 2^32 for applications that keep handles in 32 bits. */
const ALIAS_BASE = 0xc0000000;

export class ObjectHandles {
  /** Device ids whose own number no longer works as a handle here. */
  private readonly retired = new Set<number>();
  /** Private objects' device ids given out since the last logout. */
  private readonly givenPrivate = new Set<number>();
  private readonly aliasOf = new Map<number, number>();
  private readonly targetOf = new Map<number, number>();
  private nextAlias = ALIAS_BASE;

  /** The device's id for the application's handle; a retired handle names no object. */
  toDevice(handle: number): number {
    const target = this.targetOf.get(handle);
    if (target !== undefined) return target;
    return this.retired.has(handle) ? NO_OBJECT : handle;
  }

  /** The handle the application gets for the device's object. */
  toApplication(id: number, isPrivate: boolean): number {
    if (isPrivate) this.givenPrivate.add(id);
    if (!this.retired.has(id)) return id;
    let alias = this.aliasOf.get(id);
    if (alias === undefined) {
      alias = this.nextAlias++;
      this.aliasOf.set(id, alias);
      this.targetOf.set(alias, id);
    }
    return alias;
  }

  /**
   * The object is gone. Its id is never given again, so a handle that named it names nothing
   * whatever is kept here: what is kept goes (a client making and dropping private session
   * objects at each login would otherwise grow the retired set for as long as it is linked).
   */
  forget(id: number): void {
    this.retired.delete(id);
    this.givenPrivate.delete(id);
    const alias = this.aliasOf.get(id);
    if (alias === undefined) return;
    this.aliasOf.delete(id);
    this.targetOf.delete(alias);
  }

  /** The application logged out of the token: the private objects' handles it holds stop working. */
  retirePrivate(): void {
    for (const id of this.givenPrivate) {
      this.retired.add(id);
      const alias = this.aliasOf.get(id);
      if (alias === undefined) continue;
      this.aliasOf.delete(id);
      this.targetOf.delete(alias);
    }
    this.givenPrivate.clear();
  }
}
