// Watches the devices folder: a token image appearing is a token inserted, disappearing (or
// replaced by another file) a token ejected. fs.watch makes it prompt; a periodic look makes it
// certain (fs.watch drops events on some filesystems). A new file counts as inserted only once
// its size and mtime have stayed the same for `settleMs`, so a copy in progress is not read.

import { readdirSync, statSync, watch, type FSWatcher, type Stats } from 'node:fs';
import { join } from 'node:path';
import { IMAGE_SUFFIX } from './image.js';

export interface FolderChanges {
  /** Files that appeared and settled. */
  inserted: string[];
  /** Files gone, or replaced by another file (which then comes in `inserted` once settled). */
  ejected: string[];
  /** Files still there whose size or mtime changed. */
  changed: string[];
  /** Files still there, unchanged. */
  unchanged: string[];
}

export interface WatcherOptions {
  /** How long a new file's size and mtime must stay put (ms). */
  settleMs: number;
  /** Period of the look that does not rely on fs.watch (ms). */
  intervalMs: number;
}

interface Seen { dev: number; ino: number; size: number; mtimeMs: number }

/** Image files are `<name>.ntlstoken`; hidden files are work in progress (backup copies, new images). */
export function isImageName(name: string): boolean {
  return name.endsWith(IMAGE_SUFFIX) && !name.startsWith('.') && name.length > IMAGE_SUFFIX.length;
}

function seen(stat: Stats): Seen {
  return { dev: stat.dev, ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs };
}

const sameFile = (a: Seen, b: Seen) => a.dev === b.dev && a.ino === b.ino;
const sameContent = (a: Seen, b: Seen) => sameFile(a, b) && a.size === b.size && a.mtimeMs === b.mtimeMs;

export class DeviceWatcher {
  private readonly present = new Map<string, Seen>();
  private readonly settling = new Map<string, Seen & { since: number }>();
  private watcher: FSWatcher | null = null;
  private interval: NodeJS.Timeout | null = null;
  private soon: NodeJS.Timeout | null = null;
  private running: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    readonly folder: string,
    private readonly options: WatcherOptions,
    private readonly handle: (changes: FolderChanges) => Promise<void>,
  ) {}

  /** Takes the files already there (waiting for them to settle), then watches. */
  async start(): Promise<void> {
    await this.look();
    // Bounded: a file still being written when the daemon starts is left to the watch below.
    for (let i = 0; i < 20 && this.settling.size > 0; i++) {
      await new Promise((r) => setTimeout(r, this.options.settleMs + 10));
      await this.look();
    }
    try {
      this.watcher = watch(this.folder, () => this.lookSoon(50));
      this.watcher.on('error', () => { this.watcher?.close(); this.watcher = null; });
    } catch {
      // No inotify here: the periodic look alone finds changes.
    }
    this.interval = setInterval(() => void this.look(), this.options.intervalMs);
    this.interval.unref();
  }

  /** Looks now (serialised with any look in progress); resolves when its changes are handled. */
  look(): Promise<void> {
    const next = this.running.then(() => (this.closed ? undefined : this.handle(this.scan())));
    this.running = next.catch(() => undefined);
    return next;
  }

  /**
   * The daemon itself replaced a file (a backup renamed its finished copy over the image): take
   * the new file as the same device, without an eject and an insert.
   */
  adopt(name: string): void {
    try {
      this.present.set(name, seen(statSync(join(this.folder, name))));
    } catch {
      this.present.delete(name);
    }
  }

  close(): void {
    this.closed = true;
    this.watcher?.close();
    if (this.interval) clearInterval(this.interval);
    if (this.soon) clearTimeout(this.soon);
  }

  private lookSoon(delayMs: number): void {
    if (this.closed || this.soon) return;
    this.soon = setTimeout(() => {
      this.soon = null;
      void this.look();
    }, delayMs);
  }

  /** Compares the folder with what was there; synchronous, so nothing changes our state meanwhile. */
  private scan(): FolderChanges {
    const changes: FolderChanges = { inserted: [], ejected: [], changed: [], unchanged: [] };
    let names: string[];
    try {
      names = readdirSync(this.folder).filter(isImageName).sort();
    } catch {
      names = [];
    }
    const now = Date.now();
    const current = new Map<string, Seen>();
    for (const name of names) {
      try {
        const stat = statSync(join(this.folder, name));
        if (stat.isFile()) current.set(name, seen(stat));
      } catch {
        // Gone between readdir and stat.
      }
    }
    for (const [name, before] of this.present) {
      const after = current.get(name);
      if (after === undefined || !sameFile(before, after)) {
        this.present.delete(name);
        changes.ejected.push(name);
      } else if (!sameContent(before, after)) {
        this.present.set(name, after);
        changes.changed.push(name);
      } else {
        changes.unchanged.push(name);
      }
    }
    for (const name of this.settling.keys()) if (!current.has(name)) this.settling.delete(name);
    for (const [name, stat] of current) {
      if (this.present.has(name)) continue;
      const candidate = this.settling.get(name);
      if (candidate !== undefined && sameContent(candidate, stat)) {
        if (now - candidate.since >= this.options.settleMs) {
          this.settling.delete(name);
          this.present.set(name, stat);
          changes.inserted.push(name);
        }
      } else {
        this.settling.set(name, { ...stat, since: now });
      }
    }
    if (this.settling.size > 0) this.lookSoon(this.options.settleMs);
    return changes;
  }
}
