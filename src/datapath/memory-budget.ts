// Bounds on what the daemon holds for requests (and, apart, unsent answers), at three levels: all
// connections together, one registered client (all its connections), one connection. Bytes are
// reserved as a request's
// payload arrives, on every level at once or on none, so a peer is charged for what it really
// makes the daemon hold, never for what it merely declares; and one client can never hold more
// than its share, so the others are served from the rest.

export class MemoryBudget {
  private used = 0;
  /**
   * Answers made and not yet sent, counted apart from requests: a request within the limit is
   * admitted and served whatever answers are on their way; only answers piling up beyond the
   * limit (a peer that does not read) stop the next requests.
   */
  private answers = 0;

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

  charge(bytes: number): void {
    this.answers += bytes;
  }

  /** An answer handed to the socket: its bytes are held no more. */
  discharge(bytes: number): void {
    this.answers = Math.max(0, this.answers - bytes);
  }

  get overdrawn(): boolean {
    return this.answers > this.limit;
  }

  /** Answer bytes made and not yet handed to the socket. */
  get unsent(): number {
    return this.answers;
  }
}

/**
 * Daemon-wide, the answers of peers that do not read can pile up past the limit before any level
 * refuses them (a client's links each make one at a time). Past it, only a client holding at least
 * this fraction of the limit in unsent answers is refused: one that reads its answers is served on.
 */
const GREEDY_FRACTION = 1 / 8;

/** One connection's own budget, drawing on its client's share and the daemon-wide budget as well. */
export class ConnectionBudget {
  private readonly own: MemoryBudget;
  private client: MemoryBudget | null = null;
  /** Answer bytes charged and not yet handed to the socket. */
  private unsent = 0;

  constructor(private readonly global: MemoryBudget, limit: number) {
    this.own = new MemoryBudget(limit);
  }

  get inUse(): number {
    return this.own.inUse;
  }

  get limit(): number {
    return this.own.limit;
  }

  /** Answer bytes made and not yet handed to the socket. */
  get unsentAnswers(): number {
    return this.unsent;
  }

  /** Charges the client's share as well from now on (once the client is known, before its first request). */
  joinClient(client: MemoryBudget): void {
    this.client = client;
  }

  reserve(bytes: number): boolean {
    if (!this.own.reserve(bytes)) return false;
    if (this.client && !this.client.reserve(bytes)) {
      this.own.release(bytes);
      return false;
    }
    if (this.global.reserve(bytes)) return true;
    this.client?.release(bytes);
    this.own.release(bytes);
    return false;
  }

  release(bytes: number): void {
    const held = Math.min(bytes, this.own.inUse);
    this.own.release(held);
    this.client?.release(held);
    this.global.release(held);
  }

  /**
   * Counts an answer while it waits to be sent, on every level, over the limit if need be (it is
   * made): a peer that does not read its answers holds them, and its next requests are refused.
   */
  charge(bytes: number): void {
    this.unsent += bytes;
    this.own.charge(bytes);
    this.client?.charge(bytes);
    this.global.charge(bytes);
  }

  /** Answer bytes handed to the socket (or dropped with the connection). */
  discharge(bytes: number): void {
    const sent = Math.min(bytes, this.unsent);
    if (sent === 0) return;
    this.unsent -= sent;
    this.own.discharge(sent);
    this.client?.discharge(sent);
    this.global.discharge(sent);
  }

  /**
   * Whether answers waiting to be sent hold more than a level allows: requests are refused
   * meanwhile. The daemon-wide level refuses only the clients that hold much of it.
   */
  get overdrawn(): boolean {
    if (this.own.overdrawn || (this.client?.overdrawn ?? false)) return true;
    return this.global.overdrawn && (this.client ?? this.own).unsent >= this.global.limit * GREEDY_FRACTION;
  }

  releaseAll(): void {
    this.discharge(this.unsent);
    this.release(this.own.inUse);
  }
}

/** The shares of registered clients: one budget per client name, alive while it has connections. */
export class ClientShares {
  private readonly shares = new Map<string, { budget: MemoryBudget; connections: number }>();

  constructor(private readonly limit: number) {}

  join(client: string): MemoryBudget {
    let share = this.shares.get(client);
    if (!share) {
      share = { budget: new MemoryBudget(this.limit), connections: 0 };
      this.shares.set(client, share);
    }
    share.connections++;
    return share.budget;
  }

  leave(client: string): void {
    const share = this.shares.get(client);
    if (!share) return;
    if (--share.connections <= 0) this.shares.delete(client);
  }

  inUse(client: string): number {
    return this.shares.get(client)?.budget.inUse ?? 0;
  }
}
