// A store that cannot be read at start: "Fail to retrieve container list" and "Unable to load
// system containers!" are logged, Hsm.open throws LUNA_RET_DEVICE_ERROR, and the file is left
// exactly as it was: never replaced, never recreated.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, truncateSync, writeFileSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { StoreOpenError } from '../../src/hsm/index.js';
import { Catalogue } from '../../src/log/catalogue.js';
import { Logger } from '../../src/log/logger.js';
import { storePath } from '../../src/store/hsm-store.js';
import { type Hsm, openHsm, readyHsm, removeHome, tempHome } from '../hsm/support.js';

let home: string;
let path: string;

beforeEach(() => {
  home = tempHome();
  path = storePath(home);
});
afterEach(() => removeHome(home));

const digest = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

async function expectRefused(): Promise<void> {
  const before = digest(path);
  const logger = new Logger({ debug: true });
  const messages: string[] = [];
  const lines: string[] = [];
  logger.onLine((line, message) => { messages.push(message.id); lines.push(line); });
  let error: unknown;
  let hsm: Hsm | undefined;
  try {
    hsm = await openHsm(home, { logger });
  } catch (e) {
    error = e;
  }
  hsm?.close();
  expect(error).toBeInstanceOf(StoreOpenError);
  expect((error as StoreOpenError).code).toBe('LUNA_RET_DEVICE_ERROR');
  expect(messages).toEqual([Catalogue.containerListFailed.id, Catalogue.systemContainersLoadFailed.id]);
  expect(lines[0]).toMatch(/Fail to retrieve container list : LUNA_RET_DEVICE_ERROR$/);
  expect(lines[1]).toMatch(/Unable to load system containers! : LUNA_RET_DEVICE_ERROR$/);
  expect(digest(path)).toBe(before);
}

function writeFile(bytes: Buffer): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
}

describe('store open failure', () => {
  it('creates a new store when there is none', async () => {
    const hsm = await openHsm(home);
    hsm.close();
    expect(existsSync(path)).toBe(true);
    expect(readFileSync(path).subarray(0, 16).toString()).toBe('SQLite format 3\0');
  });

  it('a file of random bytes', async () => {
    writeFile(randomBytes(8192));
    await expectRefused();
  });

  it('an empty file', async () => {
    writeFile(Buffer.alloc(0));
    await expectRefused();
  });

  it('a foreign SQLite database', async () => {
    mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path);
    db.exec("CREATE TABLE meta (key TEXT, value TEXT); INSERT INTO meta VALUES ('magic', 'someone else');");
    db.close();
    await expectRefused();
  });

  it('our file with its magic changed', async () => {
    (await openHsm(home)).close();
    const db = new Database(path);
    db.prepare("UPDATE meta SET value = 'tampered' WHERE key = 'magic'").run();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    await expectRefused();
  });

  it('our file with a schema version from the future', async () => {
    (await openHsm(home)).close();
    const db = new Database(path);
    db.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    await expectRefused();
  });

  it('our file cut short', async () => {
    const { hsm } = await readyHsm(home);
    hsm.close();
    truncateSync(path, Math.floor(statSync(path).size / 2));
    await expectRefused();
  });

  it('our file with an object record that does not decode', async () => {
    const { hsm, slot } = await readyHsm(home);
    const app = hsm.application('a');
    await app.C_CreateObject(await app.C_OpenSession(slot, 6), [{ type: 0, value: 0 }, { type: 1, value: true }]);
    hsm.close();
    const db = new Database(path);
    db.prepare('UPDATE objects SET attributes = ?').run(Buffer.from('not attribute records'));
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
    await expectRefused();
  });

  it('our file with a damaged page', async () => {
    const { hsm } = await readyHsm(home);
    hsm.close();
    const bytes = readFileSync(path);
    // Page 4 is the partitions table (pages: schema, meta, its index, partitions, ...).
    randomBytes(4096).copy(bytes, 3 * 4096);
    writeFileSync(path, bytes);
    await expectRefused();
  });
});

describe('one HSM per store', () => {
  it('a second HSM on the same file is refused while the first has it open, and the data is untouched', async () => {
    const { hsm } = await readyHsm(home);
    let error: unknown;
    try {
      (await openHsm(home)).close();
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(StoreOpenError);
    expect(hsm.listPartitions().length).toBe(1);
    hsm.close();
    const again = await openHsm(home);
    expect(again.listPartitions().length).toBe(1);
    again.close();
  });
});
