// The unix socket a --listen relay serves: programs send their PINs through it, so it is made
// owner-only (0600) in a folder no other user can write: there, another user could rename the
// relay's socket away and put their own at the path, and read what the next program sends.

import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { connect, type Server } from 'node:net';
import { dirname } from 'node:path';
import { listenOwnerOnly } from '../local-socket/listen-owner-only.js';
import { ClientError } from './errors.js';

/** How long the check for another relay on the --listen path waits for an answer. */
const PROBE_TIMEOUT_MS = 1000;
const S_ISVTX = 0o1000;
const FOLDER_HINT = 'give --listen a path in a folder of your own, e.g. $XDG_RUNTIME_DIR/ntls/relay.sock or ~/.config/ntls-client/relay.sock';

/**
 * Before the server is made: the socket's folder is made (owner-only, 0700) when missing; one
 * that others can write (group or world, without the sticky bit), or that another user owns, is
 * refused; a socket file left by a relay that is gone is removed, one a relay still listens on is
 * refused.
 */
export async function checkRelaySocketPath(path: string): Promise<void> {
  prepareSocketFolder(path);
  await clearStaleSocket(path);
}

/** Listens owner-only at `path`; a failure is one line naming the path. */
export async function listenRelaySocket(server: Server, path: string): Promise<void> {
  try {
    await listenOwnerOnly(server, path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ClientError('NTLS_ERR_FILE', `cannot listen on ${path} (${code})`, FOLDER_HINT);
  }
}

/**
 * A socket file already at `path` is removed only when nothing answers there: a relay still
 * listening keeps its socket, and the second one is refused rather than taking it over.
 */
async function clearStaleSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  if (await somethingListens(path)) {
    throw new ClientError('NTLS_ERR_FILE', `another relay is listening on ${path}`, 'stop it or choose another --listen path');
  }
  rmSync(path, { force: true });
}

function somethingListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    const done = (answer: boolean) => {
      clearTimeout(timer);
      probe.destroy();
      resolve(answer);
    };
    // A listener that accepts nothing within the bound is taken as alive: removing its file is the harm avoided.
    const timer = setTimeout(() => done(true), PROBE_TIMEOUT_MS);
    probe.once('connect', () => done(true));
    probe.once('error', () => done(false));
  });
}

function prepareSocketFolder(path: string): void {
  const folder = dirname(path);
  if (!existsSync(folder)) {
    try {
      mkdirSync(folder, { recursive: true, mode: 0o700 });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'error';
      throw new ClientError('NTLS_ERR_FILE', `cannot make the folder ${folder} for the relay socket (${code})`, FOLDER_HINT);
    }
    return;
  }
  const { mode, uid } = statSync(folder);
  const me = process.getuid?.() ?? uid;
  if (uid !== me && uid !== 0) {
    throw new ClientError('NTLS_ERR_FILE', `the folder ${folder} of the relay socket belongs to another user (uid ${uid}), who could replace the socket and read the PINs programs send`, FOLDER_HINT);
  }
  if ((mode & 0o022) !== 0 && (mode & S_ISVTX) === 0) {
    throw new ClientError('NTLS_ERR_FILE', `other users can write the folder ${folder} of the relay socket (mode ${(mode & 0o7777).toString(8).padStart(4, '0')}, no sticky bit): they could replace the socket and read the PINs programs send`, FOLDER_HINT);
  }
}
