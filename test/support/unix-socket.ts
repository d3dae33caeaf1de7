// Waiting for another program's unix socket (p11-kit server, ssh-agent). The socket file appears
// when the server binds, a moment before it listens: a connect in between is refused
// (ECONNREFUSED), which a loaded CI machine showed. So the wait is for the listening socket itself,
// as /proc/net/unix shows it, with no probe connection the server would have to serve. (ntls's own
// sockets are renamed into place once they listen, so /proc/net/unix has them under another name,
// and their file alone tells: src/local-socket/listen-owner-only.ts.)
import { readFileSync } from 'node:fs';
import { sleep } from './daemon.js';

/** __SO_ACCEPTCON in /proc/net/unix's Flags column: the socket listens. */
const ACCEPTING = 0x10000;

/** Whether a socket bound to `path` is listening, from the kernel's table of unix sockets. */
export function unixSocketListening(path: string): boolean {
  for (const line of readFileSync('/proc/net/unix', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields.slice(7).join(' ') === path && (Number.parseInt(fields[3]!, 16) & ACCEPTING) !== 0) return true;
  }
  return false;
}

/**
 * Waits (bounded) until a server listens on `path`. Gives up early once `alive()` is false: the
 * server exited. Returns whether it listens.
 */
export async function waitForUnixListener(path: string, alive: () => boolean, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!unixSocketListening(path)) {
    if (!alive() || Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}
