// Whether the event loop is busy enough that work worth a thread-pool hop should leave it. A
// P-256 signature (about 25 µs) costs less on the loop than the hop to the pool and back while
// the loop is otherwise idle (one client waiting for each answer); when the loop is busy with
// other requests (many links, TLS, framing), signing on the pool lets it serve them meanwhile
// and spreads the signatures over the cores. Read from the loop's utilisation over the last
// sampling period.

import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/** Utilisation above which the loop counts as busy. */
const BUSY_ABOVE = 0.5;
const SAMPLE_MS = 100;

let busy = false;
let sampler: NodeJS.Timeout | null = null;
let last: EventLoopUtilization | null = null;

function sample(): void {
  const now = performance.eventLoopUtilization();
  if (last) busy = performance.eventLoopUtilization(now, last).utilization > BUSY_ABOVE;
  last = now;
}

/** Whether the event loop was more than half busy over the last sampling period. */
export function eventLoopBusy(): boolean {
  if (!sampler) {
    sample();
    sampler = setInterval(sample, SAMPLE_MS);
    sampler.unref();
  }
  return busy;
}
