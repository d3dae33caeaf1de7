// The deployed tokens, kept in `<home>/devices/deployed.json` keyed by serial number: a token
// stays deployed across a restart and across an eject, and comes back at the slot and container
// id it had. Written whole or not at all.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../files/atomic-file.js';
import { TokenError } from './errors.js';

export interface DeployedEntry {
  serial: string;
  label: string;
  /** Image file name in the devices folder when last seen. */
  file: string;
  slot: number;
  container: number;
  deployedAt: string;
}

const FILE = 'deployed.json';
const VERSION = 1;

export class DeployedList {
  private constructor(readonly path: string, private readonly entries: Map<string, DeployedEntry>) {}

  /** Reads the list; absent means none. A file that does not read is refused (NTLS_ERR_DEPLOYED_LIST), never overwritten. */
  static load(folder: string): DeployedList {
    const path = join(folder, FILE);
    const entries = new Map<string, DeployedEntry>();
    if (existsSync(path)) {
      try {
        const parsed = JSON.parse(readFileSync(path, 'utf8')) as { version?: unknown; tokens?: unknown };
        if (parsed.version !== VERSION || !Array.isArray(parsed.tokens)) throw new Error(`not a version ${VERSION} list`);
        for (const t of parsed.tokens as DeployedEntry[]) {
          if (typeof t.serial !== 'string' || typeof t.label !== 'string' || typeof t.file !== 'string'
            || !Number.isInteger(t.slot) || !Number.isInteger(t.container)) throw new Error('malformed entry');
          entries.set(t.serial, { ...t });
        }
      } catch (error) {
        throw new TokenError('NTLS_ERR_DEPLOYED_LIST', `${path} cannot be read: ${(error as Error).message}`,
          'correct the file or move it away (then deploy the tokens again)', { cause: error });
      }
    }
    return new DeployedList(path, entries);
  }

  get(serial: string): DeployedEntry | undefined {
    return this.entries.get(serial);
  }

  all(): DeployedEntry[] {
    return [...this.entries.values()];
  }

  /** Adds or removes an entry; the file is written before the list in memory changes. */
  put(entry: DeployedEntry): void {
    this.save(new Map(this.entries).set(entry.serial, entry));
    this.entries.set(entry.serial, entry);
  }

  remove(serial: string): void {
    const next = new Map(this.entries);
    next.delete(serial);
    this.save(next);
    this.entries.delete(serial);
  }

  private save(entries: Map<string, DeployedEntry>): void {
    writeFileAtomic(this.path, JSON.stringify({ version: VERSION, tokens: [...entries.values()] }, null, 2) + '\n', 0o600);
  }
}
