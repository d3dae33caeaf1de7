// The event loop's load as the ECDSA signer reads it (src/hsm/mechanisms/loop-load.ts): busy
// after a stretch that kept the loop occupied, idle again after a stretch of waiting.
import { describe, expect, it } from 'vitest';
import { eventLoopBusy } from '../../../src/hsm/mechanisms/loop-load.js';

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function occupy(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until) { /* the loop is busy */ }
}

describe('eventLoopBusy', () => {
  it('reads busy after the loop was kept occupied, and idle after it waited', async () => {
    eventLoopBusy();
    await pause(250);
    expect(eventLoopBusy()).toBe(false);
    // Occupied over whole sampling periods (the sampler runs between the stretches).
    for (let i = 0; i < 4; i++) {
      occupy(120);
      await pause(1);
    }
    expect(eventLoopBusy()).toBe(true);
    await pause(350);
    expect(eventLoopBusy()).toBe(false);
  });
});
