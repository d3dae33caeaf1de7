// Watches the verify location (the folder of registered client certificates). A certificate
// added registers a client from its next connection on; a certificate removed flushes the
// cache, so that client is refused from its next connection on. The folder itself gone or
// unreadable (moved, removed, its permissions changed) is a path no longer valid: the guide's
// line, once, and the registrations stay as they were until it can be read again; no client is
// dropped or admitted for it.
import { watch, type FSWatcher } from 'node:fs';
import { Catalogue } from '../log/catalogue.js';
import type { Logger } from '../log/logger.js';
import type { ClientRegistry, InvalidRegistration, RegisteredClient } from '../registry/client-registry.js';

export interface RegistryChange {
  added: RegisteredClient[];
  removed: RegisteredClient[];
  changed: RegisteredClient[];
}

export class VerifyLocationMonitor {
  private watcher: FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private debounce: NodeJS.Timeout | null = null;
  private reportedInvalid = new Set<string>();
  /** The folder could not be read at the last rescan (its line written). */
  private unreadable = false;
  /** The registrations as last reported; changes are measured against it, not against the registry, which others may reload. */
  private known = new Map<string, RegisteredClient>();

  constructor(
    private readonly registry: ClientRegistry,
    private readonly logger: Logger,
    private readonly onChange: (change: RegistryChange) => void,
    private readonly pollMs = 5000,
  ) {}

  start(): void {
    if (!this.watchFolder()) this.logger.log(Catalogue.cacheMonitorInitFailed);
    // inotify can miss events on some file systems; a slow rescan catches up.
    this.poll = setInterval(() => this.rescanOnTimer(), this.pollMs);
    this.poll.unref();
    for (const bad of this.registry.invalidFiles()) this.reportedInvalid.add(bad.file);
    this.known = new Map(this.registry.list().map((c) => [c.name, c]));
    this.logger.log(Catalogue.verifyLocationMonitorStarted);
  }

  stop(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
    this.watcher = null;
    this.logger.log(Catalogue.verifyLocationMonitorTerminated);
  }

  /**
   * The files that are not certificates are reported again at the next rescan (SIGHUP: the
   * operator asked the daemon to look again, and reads the log for what it found).
   */
  reportInvalidAgain(): void {
    this.reportedInvalid.clear();
  }

  /** Re-reads the folder now; used by the watcher and by admin commands that change it. */
  rescan(): void {
    const before = this.known;
    let invalid;
    try {
      invalid = this.registry.reload();
    } catch (error) {
      if (!isUnreadableFolder(error)) throw error;
      if (!this.unreadable) {
        this.logger.log(Catalogue.configClientCertPathInvalid);
        this.watcher?.close();
        this.watcher = null;
      }
      this.unreadable = true;
      return;
    }
    if (this.unreadable) {
      // The folder is back (perhaps a new one by that name): watch it, not the one that went.
      this.unreadable = false;
      this.watchFolder();
    }
    for (const bad of invalid) {
      if (this.reportedInvalid.has(bad.file)) continue;
      this.reportedInvalid.add(bad.file);
      logInvalidRegistration(this.logger, bad);
    }
    this.reportedInvalid = new Set([...this.reportedInvalid].filter((f) => invalid.some((b) => b.file === f)));
    const after = new Map(this.registry.list().map((c) => [c.name, c]));
    this.known = after;
    const change: RegistryChange = { added: [], removed: [], changed: [] };
    for (const [name, client] of after) {
      const old = before.get(name);
      if (!old) change.added.push(client);
      else if (old.fingerprint !== client.fingerprint || old.host !== client.host || old.partitions.join() !== client.partitions.join()) change.changed.push(client);
    }
    for (const [name, client] of before) if (!after.has(name)) change.removed.push(client);
    // A certificate replaced under its client's name is one removed (its links end) and one added.
    const replaced = change.changed.some((client) => before.get(client.name)!.fingerprint !== client.fingerprint);
    if (change.removed.length || replaced) this.logger.log(Catalogue.verifyLocationCertRemoved);
    if (change.added.length || change.removed.length || change.changed.length) this.onChange(change);
  }

  /** Watches the folder; false when it cannot be watched (the slow rescan still runs). */
  private watchFolder(): boolean {
    try {
      this.watcher = watch(this.registry.folder, () => this.schedule());
      this.watcher.on('error', () => this.schedule());
      return true;
    } catch {
      this.watcher = null;
      return false;
    }
  }

  private schedule(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => {
      this.debounce = null;
      this.rescanOnTimer();
    }, 100);
  }

  /**
   * A rescan no caller waits for. One that fails otherwise than on the folder (no file
   * descriptor left, EMFILE, while something holds them all) keeps the registrations as they
   * are, and the next one tries again: a daemon that cannot read a folder for a moment goes on.
   */
  private rescanOnTimer(): void {
    try {
      this.rescan();
    } catch {
      // Kept as they were; the poll comes back in pollMs.
    }
  }
}

function isUnreadableFolder(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EACCES' || code === 'EPERM';
}

/** The guide's line for a file of the verify location no client is registered from. */
export function logInvalidRegistration(logger: Logger, bad: InvalidRegistration): void {
  if (bad.kind === 'registration') logger.log(Catalogue.registrationDbPopulateFailed);
  else logger.log(Catalogue.loadVerifyLocationsSingleFailed, { file: bad.file });
}
