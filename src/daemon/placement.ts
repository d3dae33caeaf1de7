// Where a new connection of the TLS port is served (docs/workers.md): the main process accepts
// them all and serves one itself unless a datapath worker is less busy. Serving in the main
// process spares a request the hop to a worker and back (two process wake-ups, about half the
// latency of a signature at one connection on a small machine); workers take the connections
// beyond, so that TLS and framing spread over the cores as links add up.

/**
 * What a connection kept in the main process weighs against one on a worker: the main process
 * also runs the command processor (and the cryptography) for every connection of the daemon.
 * Measured on 2 cores (bench:network, 64 connections): weight 2 signs 2.37× the stunnel peer
 * against 2.11× for weight 1, and as fast at 1 and 8 connections.
 */
export const MAIN_PROCESS_WEIGHT = 2;

/**
 * The worker to hand a connection to (its index), or null to serve it in the main process.
 * `main` is the main process's connection count, `workers` each worker's (null: not serving now).
 */
export function placeConnection(main: number | null, workers: ReadonlyArray<number | null>): number | null {
  let best: number | null = null;
  workers.forEach((load, index) => {
    if (load !== null && (best === null || load < workers[best]!)) best = index;
  });
  if (best === null) return null;
  return main !== null && MAIN_PROCESS_WEIGHT * main <= workers[best]! ? null : best;
}
