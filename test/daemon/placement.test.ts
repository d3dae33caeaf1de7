// Where a new TLS connection is served (src/daemon/placement.ts): the process holding fewer
// links, the main process on a tie, and never a worker that is not serving.
import { describe, expect, it } from 'vitest';
import { placeConnection } from '../../src/daemon/placement.js';

describe('placeConnection', () => {
  it('keeps the connection in the main process while no worker holds fewer', () => {
    expect(placeConnection(0, [0, 0])).toBeNull();
    expect(placeConnection(3, [3, 4])).toBeNull();
  });

  it('hands it to the worker holding the fewest, the first of equals', () => {
    expect(placeConnection(1, [0, 0])).toBe(0);
    expect(placeConnection(5, [4, 2, 2])).toBe(1);
  });

  it('skips workers that are not serving (starting, or replaced after a crash)', () => {
    expect(placeConnection(2, [null, 1])).toBe(1);
    expect(placeConnection(2, [null, null])).toBeNull();
  });
});
