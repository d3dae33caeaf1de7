// Connections not yet through the identity exchange: the scarce thing a flood of sockets that
// never speak TLS goes after. At most `perAddress` from one source address and `total` in all.
// A newcomer from an address at its limit takes the place of that address's oldest connection
// still in its TLS handshake (silent ones first), so a client sharing an address with idle
// sockets still gets in: they would need `perAddress` new sockets within its handshake.
// When the pool is full, a newcomer from an address that holds nothing in it (or much less than
// the address holding most) takes the place of the oldest connection of the most represented
// address that is still in its TLS handshake, silent ones first. So a flood from a few addresses
// keeps its share and is refused cheaply beyond it, while a client from anywhere else gets in and
// is not displaced once it progresses; a flood from very many addresses churns among its own
// silent sockets, and a newcomer still finds room.

export interface PendingConnection {
  /** Still in its TLS handshake: it may be closed to make room. */
  readonly handshaking: boolean;
  /** Nothing received from the peer yet: the first to go. */
  readonly silent: boolean;
  evict(): void;
}

export type Admission = 'room' | 'made-room' | 'address-full' | 'pool-full';

export class PendingPool<C extends PendingConnection> {
  private readonly all = new Set<C>();
  private readonly byAddress = new Map<string, Set<C>>();

  constructor(private readonly limits: { total: number; perAddress: number }) {}

  get size(): number {
    return this.all.size;
  }

  countFrom(address: string): number {
    return this.byAddress.get(address)?.size ?? 0;
  }

  /** Whether a newcomer from `address` may enter; makes room by evicting one when it should. */
  admit(address: string): Admission {
    const mine = this.countFrom(address);
    if (mine >= this.limits.perAddress) {
      // The newcomer takes the place of its own address's oldest handshake (silent ones first):
      // otherwise 16 idle sockets from a client's address (the same host, a NAT) lock it out.
      const victim = oldestEvictable(this.byAddress.get(address)!);
      if (!victim) return 'address-full';
      victim.evict();
      return 'made-room';
    }
    if (this.all.size < this.limits.total) return 'room';
    let heaviest: Set<C> | undefined;
    for (const connections of this.byAddress.values()) {
      if (!heaviest || connections.size > heaviest.size) heaviest = connections;
    }
    if (!heaviest || !(mine === 0 || mine + 1 < heaviest.size)) return 'pool-full';
    const victim = oldestEvictable(heaviest) ?? oldestEvictable(this.all);
    if (!victim) return 'pool-full';
    victim.evict();
    return 'made-room';
  }

  add(address: string, connection: C): void {
    this.all.add(connection);
    let mine = this.byAddress.get(address);
    if (!mine) {
      mine = new Set();
      this.byAddress.set(address, mine);
    }
    mine.add(connection);
  }

  remove(address: string, connection: C): void {
    this.all.delete(connection);
    const mine = this.byAddress.get(address);
    if (!mine) return;
    mine.delete(connection);
    if (mine.size === 0) this.byAddress.delete(address);
  }
}

/** The oldest silent connection still in its handshake, else the oldest in its handshake. */
function oldestEvictable<C extends PendingConnection>(connections: Iterable<C>): C | undefined {
  let fallback: C | undefined;
  for (const connection of connections) {
    if (!connection.handshaking) continue;
    if (connection.silent) return connection;
    fallback ??= connection;
  }
  return fallback;
}
