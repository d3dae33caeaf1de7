#!/usr/bin/env node
// `ntls`: the daemon and the operator's commands (ntls-program.ts). This entry holds the
// daemon's stop signals before anything else is loaded: loading the commands takes hundreds of
// milliseconds, and `ntls start` stopped meanwhile must end cleanly, not by the signal's default
// action (src/daemon/stop-signals.ts). Other commands keep the default actions.
import { holdStopSignals } from '../daemon/stop-signals.js';

// Commander's subcommand is the first operand (the program's own options, -V and -h, exit).
if (process.argv.slice(2).find((arg) => !arg.startsWith('-')) === 'start') holdStopSignals();
await import('./ntls-program.js');
