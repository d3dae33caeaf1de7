import { chmodSync } from 'node:fs';
import type { Server } from 'node:net';

/**
 * Listens on a unix socket that only this user can connect to (mode 0600). The umask is
 * narrowed while the socket file is created, so it is never reachable by others, even briefly.
 */
export async function listenOwnerOnly(server: Server, path: string): Promise<void> {
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  chmodSync(path, 0o600);
}
