import { chmodSync, renameSync, rmSync, statSync } from 'node:fs';
import type { Server } from 'node:net';
import { basename, dirname, join } from 'node:path';

/** The longest path a unix socket can be bound to on Linux (sun_path less its final NUL). */
const SOCKET_PATH_MAX = 107;

/**
 * Listens on a unix socket that only this user can connect to (mode 0600). The umask is
 * narrowed while the socket file is created, so it is never reachable by others, even briefly.
 *
 * The socket is bound under a temporary name and renamed into place once it listens: a program
 * that waits for the file to appear (a script, a test) would otherwise meet the moment between
 * bind and listen, where a connect is refused. The file is removed when the server closes.
 */
export async function listenOwnerOnly(server: Server, path: string): Promise<void> {
  // A path too long for the staging name's suffix is bound where it is, as before.
  const staging = join(dirname(path), `.${basename(path)}.${process.pid}`);
  const bindAt = Buffer.byteLength(staging) <= SOCKET_PATH_MAX ? staging : path;
  if (bindAt !== path) rmSync(bindAt, { force: true });
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(bindAt, () => {
        server.off('error', reject);
        // Once listening, an error is one accept that failed (EMFILE: no descriptor left): that
        // connection is not made, and the server goes on. Without a listener it would kill the daemon.
        server.on('error', () => undefined);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(bindAt, 0o600);
  if (bindAt !== path) {
    renameSync(bindAt, path);
    const made = statSync(path);
    // Node removes a socket file when its server closes, but it knows only the staging name.
    // Only this server's own file is removed: another may have replaced it since.
    const remove = () => {
      try {
        const now = statSync(path);
        if (now.ino === made.ino && now.dev === made.dev) rmSync(path, { force: true });
      } catch {
        // Gone already.
      }
    };
    process.once('exit', remove);
    server.once('close', () => {
      process.off('exit', remove);
      remove();
    });
  }
}
