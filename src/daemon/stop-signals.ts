// SIGTERM, SIGINT, SIGQUIT and SIGHUP for `ntls start` from the process's first moment (and the
// signals src/process/quiet-signals.ts ignores). Loading the
// commands and the daemon's modules takes hundreds of milliseconds (seconds on a busy host); a
// signal then would get its default action: exit status 143 or 130, nothing written, as if the
// daemon had crashed. The entry (src/cli/ntls.ts) holds them before it loads anything else, and
// the daemon takes them over when it begins to start.

import { ignoreQuietSignals } from '../process/quiet-signals.js';

export type StopSignal = 'SIGTERM' | 'SIGINT' | 'SIGQUIT';

let held: StopSignal | null = null;
let holding = false;
const holdTerm = () => { held ??= 'SIGTERM'; };
const holdInt = () => { held ??= 'SIGINT'; };
const holdQuit = () => { held ??= 'SIGQUIT'; };
// A closed terminal before the start: the configuration is read at the start anyway.
const ignoreHup = () => undefined;

/** Installs handlers that only remember the first stop signal (SIGHUP is ignored). */
export function holdStopSignals(): void {
  if (holding) return;
  holding = true;
  process.on('SIGTERM', holdTerm);
  process.on('SIGINT', holdInt);
  process.on('SIGQUIT', holdQuit);
  process.on('SIGHUP', ignoreHup);
  ignoreQuietSignals();
}

/**
 * Installs the daemon's handlers and removes the holding ones, with no moment between in which
 * a signal would get its default action. Returns the stop signal that arrived before, if any.
 */
export function takeStopSignals(handlers: { stop(signal: StopSignal): void; reload(): void }): StopSignal | null {
  process.on('SIGTERM', () => handlers.stop('SIGTERM'));
  process.on('SIGINT', () => handlers.stop('SIGINT'));
  process.on('SIGQUIT', () => handlers.stop('SIGQUIT'));
  process.on('SIGHUP', () => handlers.reload());
  ignoreQuietSignals();
  if (holding) {
    process.off('SIGTERM', holdTerm);
    process.off('SIGINT', holdInt);
    process.off('SIGQUIT', holdQuit);
    process.off('SIGHUP', ignoreHup);
    holding = false;
  }
  return held;
}
