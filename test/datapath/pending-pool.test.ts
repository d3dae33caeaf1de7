// The pending pool under a flood: who gets in, who makes room, who is refused.
import { describe, expect, it } from 'vitest';
import { PendingPool, type PendingConnection } from '../../src/datapath/pending-pool.js';

class Fake implements PendingConnection {
  evicted = false;
  constructor(readonly name: string, public handshaking = true, public silent = true, private readonly pool?: PendingPool<Fake>, private readonly address = '') {}
  evict(): void {
    this.evicted = true;
    this.pool?.remove(this.address, this);
  }
}

function fill(pool: PendingPool<Fake>, address: string, count: number, options: Partial<Pick<Fake, 'handshaking' | 'silent'>> = {}): Fake[] {
  return Array.from({ length: count }, (_, i) => {
    const f = new Fake(`${address}#${i}`, options.handshaking ?? true, options.silent ?? true, pool, address);
    expect(pool.admit(address)).toBe('room');
    pool.add(address, f);
    return f;
  });
}

describe('PendingPool', () => {
  it('below the limits everyone gets room; at the per-address limit a newcomer displaces that address\'s oldest handshake, silent first', () => {
    const pool = new PendingPool<Fake>({ total: 10, perAddress: 3 });
    const a = fill(pool, 'a', 3);
    a[0]!.silent = false;
    expect(pool.admit('a')).toBe('made-room');
    expect(a.map((f) => f.evicted)).toEqual([false, true, false]);
    expect(pool.admit('b')).toBe('room');
  });

  it('an address whose connections are all past their handshake is refused at its limit; nothing is evicted', () => {
    const pool = new PendingPool<Fake>({ total: 10, perAddress: 3 });
    const a = fill(pool, 'a', 3, { handshaking: false, silent: false });
    expect(pool.admit('a')).toBe('address-full');
    expect(a.some((f) => f.evicted)).toBe(false);
  });

  it('full: a newcomer from an address with nothing pending takes the place of the oldest silent handshake of the most represented address', () => {
    const pool = new PendingPool<Fake>({ total: 6, perAddress: 4 });
    const a = fill(pool, 'a', 2);
    const b = fill(pool, 'b', 4);
    expect(pool.admit('victim')).toBe('made-room');
    expect(b[0]!.evicted).toBe(true);
    expect(a.some((f) => f.evicted)).toBe(false);
    expect(pool.size).toBe(5);
  });

  it('full and balanced: a newcomer from an address already holding its share is refused, nothing is evicted (no churn)', () => {
    const pool = new PendingPool<Fake>({ total: 6, perAddress: 4 });
    const all = [...fill(pool, 'a', 2), ...fill(pool, 'b', 2), ...fill(pool, 'c', 2)];
    expect(pool.admit('a')).toBe('pool-full');
    expect(pool.admit('b')).toBe('pool-full');
    expect(all.some((f) => f.evicted)).toBe(false);
  });

  it('a connection that has spoken goes after the silent ones; one past its handshake is never evicted', () => {
    const pool = new PendingPool<Fake>({ total: 3, perAddress: 3 });
    const [spoke] = fill(pool, 'a', 1, { silent: false });
    const [secure] = fill(pool, 'a', 1, { handshaking: false, silent: false });
    const [quiet] = fill(pool, 'a', 1);
    expect(pool.admit('n1')).toBe('made-room');
    expect(quiet!.evicted).toBe(true);
    pool.add('n1', new Fake('n1', false, false));
    expect(pool.admit('n2')).toBe('made-room');
    expect(spoke!.evicted).toBe(true);
    pool.add('n2', new Fake('n2', false, false));
    expect(pool.admit('n3')).toBe('pool-full');
    expect(secure!.evicted).toBe(false);
  });
});
