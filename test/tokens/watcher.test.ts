// The devices folder watcher: images appearing and disappearing become insert and eject, a
// file still being written is not taken before it has settled, work files are ignored.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendFileSync, copyFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { DeviceWatcher, type FolderChanges } from '../../src/tokens/watcher.js';
import { removeHome, tempHome } from '../hsm/support.js';
import { devices, join, until } from './support.js';

let home: string;
let folder: string;
let watcher: DeviceWatcher;
let seen: FolderChanges[];
/** Size of each file at the moment it was reported inserted. */
let sizes: Map<string, number>;

const SETTLE = 150;
const inserted = () => seen.flatMap((c) => c.inserted);
const ejected = () => seen.flatMap((c) => c.ejected);

beforeEach(async () => {
  home = tempHome();
  folder = devices(home);
  seen = [];
  sizes = new Map();
  watcher = new DeviceWatcher(folder, { settleMs: SETTLE, intervalMs: 200 }, async (changes) => {
    for (const name of changes.inserted) sizes.set(name, statSync(join(folder, name)).size);
    if (changes.inserted.length || changes.ejected.length || changes.changed.length) seen.push(changes);
  });
});
afterEach(() => {
  watcher.close();
  removeHome(home);
});

describe('DeviceWatcher', () => {
  it('takes the files already there at start, once settled', async () => {
    writeFileSync(join(folder, 'a.ntlstoken'), 'x');
    await watcher.start();
    expect(inserted()).toEqual(['a.ntlstoken']);
  });

  it('reports an image inserted and ejected', async () => {
    await watcher.start();
    writeFileSync(join(folder, 'b.ntlstoken'), 'x');
    await until(() => inserted().includes('b.ntlstoken'), 10_000, 'insert');
    rmSync(join(folder, 'b.ntlstoken'));
    await until(() => ejected().includes('b.ntlstoken'), 10_000, 'eject');
    expect(inserted()).toEqual(['b.ntlstoken']);
  });

  it('waits while a file is still being written, and takes it whole', async () => {
    await watcher.start();
    const path = join(folder, 'slow.ntlstoken');
    writeFileSync(path, Buffer.alloc(1000));
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, SETTLE / 2));
      appendFileSync(path, Buffer.alloc(1000));
      expect(inserted()).toEqual([]);
    }
    await until(() => inserted().length > 0, 10_000, 'insert');
    expect(inserted()).toEqual(['slow.ntlstoken']);
    expect(sizes.get('slow.ntlstoken')).toBe(7000);
  });

  it('ignores hidden work files and other names', async () => {
    await watcher.start();
    writeFileSync(join(folder, '.x.ntlstoken.backup-1'), 'x');
    writeFileSync(join(folder, '.hidden.ntlstoken'), 'x');
    writeFileSync(join(folder, 'deployed.json'), '{}');
    writeFileSync(join(folder, 'c.ntlstoken-journal'), 'x');
    writeFileSync(join(folder, 'marker.ntlstoken'), 'x');
    await until(() => inserted().length > 0, 10_000, 'insert');
    await new Promise((r) => setTimeout(r, SETTLE * 2));
    expect(inserted()).toEqual(['marker.ntlstoken']);
  });

  it('a file replaced by another is an eject then an insert, unless the daemon adopted it', async () => {
    const path = join(folder, 'd.ntlstoken');
    writeFileSync(path, 'one');
    await watcher.start();
    writeFileSync(join(folder, '.d.tmp'), 'two');
    renameSync(join(folder, '.d.tmp'), path);
    await until(() => ejected().includes('d.ntlstoken') && inserted().length === 2, 10_000, 'eject and insert');
    copyFileSync(path, join(folder, '.d.tmp'));
    renameSync(join(folder, '.d.tmp'), path);
    watcher.adopt('d.ntlstoken');
    await watcher.look();
    await new Promise((r) => setTimeout(r, SETTLE * 2));
    expect(ejected()).toEqual(['d.ntlstoken']);
    expect(inserted()).toEqual(['d.ntlstoken', 'd.ntlstoken']);
  });
});
