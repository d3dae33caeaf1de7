// One daemon per home. The running daemon holds an exclusive flock(2) on its pid file: the
// kernel drops it when the process ends however it ends (kill -9 included, before the process is
// reaped), so a start after a crash finds the home free at once, and a pid reused by another
// program since then misleads nothing. Files a dead daemon left (pid file, admin.sock) are then
// known to be stale and are cleared without asking; a live daemon is still refused.
import { closeSync, ftruncateSync, openSync, readFileSync, rmSync, writeSync, constants } from 'node:fs';
import { loadNativeAddon } from '../datapath/native-addon.js';
import { NtlsError } from '../errors/ntls-error.js';

interface FileLock {
  tryLock(fd: number, exclusive: boolean): boolean;
}

const NATIVE = 'native/daemon/build/Release/file_lock.node';

export class HomeInUseError extends NtlsError {
  declare readonly code: 'NTLS_ERR_HOME_IN_USE';
  constructor(readonly home: string, readonly pid: number | null) {
    super('NTLS_ERR_HOME_IN_USE', `a daemon${pid === null ? '' : ` (pid ${pid})`} already runs for ${home}`,
      { hint: `stop it with \`ntls stop --home ${home}\`` });
  }
}

function pidIn(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

/** Alive and not on its way out: neither gone nor a zombie (a zombie holds no lock). */
function running(pid: number): boolean {
  try {
    const state = /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return state !== undefined && state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The pid of the daemon holding the home, or null when none does (the pid file is then stale). */
export function daemonHolding(pidFile: string): number | null {
  let fd: number;
  try {
    fd = openSync(pidFile, constants.O_RDONLY);
  } catch {
    return null;
  }
  try {
    if (loadNativeAddon<FileLock>(NATIVE).tryLock(fd, false)) return null;
    return pidIn(pidFile);
  } finally {
    closeSync(fd);
  }
}

export class HomeLock {
  private static held = new Map<string, HomeLock>();

  private constructor(private fd: number | null, readonly pidFile: string) {}

  /**
   * Takes the home for this process and writes its pid, or throws HomeInUseError naming the live
   * daemon that holds it. A holder that is already dying (killed, not yet gone) is waited for,
   * up to `waitMs`. Taking it again in the same process (a restart) returns the same lock.
   */
  static async acquire(home: string, pidFile: string, waitMs = 3000): Promise<HomeLock> {
    const known = HomeLock.held.get(pidFile);
    if (known) return known;
    const native = loadNativeAddon<FileLock>(NATIVE);
    const deadline = Date.now() + waitMs;
    for (;;) {
      const fd = openSync(pidFile, constants.O_RDWR | constants.O_CREAT, 0o644);
      if (native.tryLock(fd, true)) {
        const lock = new HomeLock(fd, pidFile);
        ftruncateSync(fd, 0);
        writeSync(fd, `${process.pid}\n`, 0);
        HomeLock.held.set(pidFile, lock);
        // Whatever way the process exits (a start that fails, a crash), the pid file goes with it.
        process.once('exit', () => lock.release());
        return lock;
      }
      closeSync(fd);
      const holder = pidIn(pidFile);
      if ((holder !== null && running(holder)) || Date.now() > deadline) throw new HomeInUseError(home, holder);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** Removes the pid file and lets the home go (at the daemon's end). */
  release(): void {
    if (this.fd === null) return;
    rmSync(this.pidFile, { force: true });
    closeSync(this.fd);
    this.fd = null;
    HomeLock.held.delete(this.pidFile);
  }
}
