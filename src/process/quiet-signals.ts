// Signals a long-running ntls process (the daemon, its workers, a relay) ignores. SIGUSR1 makes
// Node.js open its inspector on 127.0.0.1:9229 without authentication: any local user could
// attach and run code as the process (the daemon's store and server key; a relay's client key
// and the PINs it carries). A listener replaces that default. SIGUSR2 and SIGALRM would end the
// process without a line written or a file cleared; nothing of ntls sends them.

const QUIET_SIGNALS = ['SIGUSR1', 'SIGUSR2', 'SIGALRM'] as const;
const ignore = () => undefined;
let installed = false;

export function ignoreQuietSignals(): void {
  if (installed) return;
  installed = true;
  for (const signal of QUIET_SIGNALS) process.on(signal, ignore);
}
