// Bounds on what the daemon holds for requests: a budget for all connections together and one
// per connection. A request is admitted only if both have room for its declared length, before
// any of its bytes are kept; an untrusted peer never decides how much memory the daemon uses.

export class MemoryBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  reserve(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}

/** One connection's share, drawing on the daemon-wide budget as well. */
export class ConnectionBudget {
  private readonly own: MemoryBudget;

  constructor(private readonly global: MemoryBudget, limit: number) {
    this.own = new MemoryBudget(limit);
  }

  get inUse(): number {
    return this.own.inUse;
  }

  reserve(bytes: number): boolean {
    if (!this.own.reserve(bytes)) return false;
    if (this.global.reserve(bytes)) return true;
    this.own.release(bytes);
    return false;
  }

  release(bytes: number): void {
    this.own.release(bytes);
    this.global.release(bytes);
  }

  releaseAll(): void {
    this.release(this.own.inUse);
  }
}
