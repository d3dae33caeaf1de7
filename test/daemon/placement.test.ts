// Where a new TLS connection is served (src/daemon/placement.ts): the main process while its
// connections, counted twice, are no more than the least busy worker's; otherwise that worker;
// never a worker that is not serving.
import { describe, expect, it } from 'vitest';
import { MAIN_PROCESS_WEIGHT, placeConnection } from '../../src/daemon/placement.js';

describe('placeConnection', () => {
  it('keeps the first connection, and the next ones while the main process is the less busy', () => {
    expect(MAIN_PROCESS_WEIGHT).toBe(2);
    expect(placeConnection(0, [0, 0])).toBeNull();
    expect(placeConnection(2, [4, 5])).toBeNull();
  });

  it('hands it to the worker holding the fewest, the first of equals', () => {
    expect(placeConnection(1, [0, 0])).toBe(0);
    expect(placeConnection(1, [1])).toBe(0);
    expect(placeConnection(5, [4, 2, 2])).toBe(1);
  });

  it('skips workers that are not serving (starting, or replaced after a crash)', () => {
    expect(placeConnection(2, [null, 1])).toBe(1);
    expect(placeConnection(2, [null, null])).toBeNull();
  });

  it('spreads a burst of links one third on the main process, two thirds on one worker', () => {
    const held = { main: 0, worker: 0 };
    for (let i = 0; i < 60; i++) {
      if (placeConnection(held.main, [held.worker]) === null) held.main++;
      else held.worker++;
    }
    expect(held).toEqual({ main: 20, worker: 40 });
  });
});
