// Store integrity: every partition and object row carries a MAC of its clear fields; a record
// changed on disk behind the store's back is found when it is read (StoreIntegrityError,
// LUNA_RET_DEVICE_ERROR, CKR_DEVICE_ERROR to a PKCS#11 caller) and never served.
// test/store/integrity-daemon.test.ts does the same through the real daemon.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { CKA, CKF, CKM, CKR, CKU } from '../../src/pkcs11/constants.js';
import { HsmStore, storePath } from '../../src/store/hsm-store.js';
import { StoreIntegrityError } from '../../src/store/errors.js';
import { readyHsm, removeHome as removeHsmHome, tempHome } from '../hsm/support.js';

const RW = CKF.SERIAL_SESSION | CKF.RW_SESSION;

function withDb<T>(home: string, use: (db: Database.Database) => T): T {
  const db = new Database(storePath(home));
  try {
    return use(db);
  } finally {
    db.close();
  }
}

describe('the store checks every row it reads', () => {
  let home: string;
  beforeEach(async () => {
    home = tempHome();
    const { hsm, slot } = await readyHsm(home);
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, 'co-secret-1');
    for (const label of ['one', 'two']) {
      await app.C_GenerateKey(s, { type: CKM.AES_KEY_GEN, parameter: null }, [
        { type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: Buffer.from(label) },
      ]);
    }
    hsm.close();
  });
  afterEach(() => removeHsmHome(home));

  it('an attribute row changed on disk: objects() refuses with LUNA_RET_DEVICE_ERROR / CKR_DEVICE_ERROR; scanObjects() sets it apart', () => {
    const id = withDb(home, (db) => {
      const row = db.prepare('SELECT id, attributes FROM objects ORDER BY id LIMIT 1').get() as { id: number; attributes: Buffer };
      const at = row.attributes.indexOf(Buffer.from('one'));
      row.attributes[at] = row.attributes[at]! ^ 0x20;
      db.prepare('UPDATE objects SET attributes = ? WHERE id = ?').run(row.attributes, row.id);
      return row.id;
    });
    const store = HsmStore.open(storePath(home));
    try {
      let error: unknown;
      try {
        store.objects();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(StoreIntegrityError);
      expect((error as StoreIntegrityError).code).toBe('LUNA_RET_DEVICE_ERROR');
      expect((error as StoreIntegrityError).rv).toBe(CKR.DEVICE_ERROR);
      expect((error as StoreIntegrityError).rows).toEqual([{ table: 'objects', id }]);
      const scan = store.scanObjects();
      expect(scan.corrupt).toEqual([{ table: 'objects', id }]);
      expect(scan.rows.map((r) => r.id)).not.toContain(id);
      expect(scan.rows).toHaveLength(1);
    } finally {
      store.close();
    }
  });

  it('a row moved to another id, or written without the store, fails its check', () => {
    withDb(home, (db) => {
      const rows = db.prepare('SELECT id FROM objects ORDER BY id').all() as { id: number }[];
      // The first row's content under a new id: same bytes, another record.
      db.prepare('INSERT INTO objects (id, partition_id, attributes, sealed, mac) SELECT 9999, partition_id, attributes, sealed, mac FROM objects WHERE id = ?').run(rows[0]!.id);
      db.prepare('INSERT INTO objects (id, partition_id, attributes, sealed) SELECT 9998, partition_id, attributes, sealed FROM objects WHERE id = ?').run(rows[1]!.id);
    });
    const store = HsmStore.open(storePath(home));
    try {
      expect(store.scanObjects().corrupt).toEqual([{ table: 'objects', id: 9998 }, { table: 'objects', id: 9999 }]);
    } finally {
      store.close();
    }
  });

  it('a partition row changed on disk (failure count, credential) is refused, and never given a new MAC', () => {
    const id = withDb(home, (db) => {
      db.prepare('UPDATE partitions SET co_failures = 0, so_failures = 7').run();
      return (db.prepare('SELECT id FROM partitions').get() as { id: number }).id;
    });
    const store = HsmStore.open(storePath(home));
    try {
      expect(() => store.partitions()).toThrow(StoreIntegrityError);
      expect(() => store.setFailures(id, 'co', 1)).toThrow(StoreIntegrityError);
      expect(() => store.partitions()).toThrow(StoreIntegrityError);
    } finally {
      store.close();
    }
  });

  it('a partition\'s policy is under its row MAC: legacy RSA turned on behind the store\'s back is refused; set by the store, it reads back', () => {
    withDb(home, (db) => db.prepare('UPDATE partitions SET policy = ?').run(JSON.stringify({ legacyRsa: true })));
    let store = HsmStore.open(storePath(home));
    try {
      expect(() => store.partitions()).toThrow(StoreIntegrityError);
    } finally {
      store.close();
    }
    withDb(home, (db) => db.prepare('UPDATE partitions SET policy = NULL').run());
    store = HsmStore.open(storePath(home));
    try {
      const [row] = store.partitions();
      expect(row!.policy).toEqual({ legacyRsa: false });
      store.updatePartition({ ...row!, policy: { legacyRsa: true } });
      expect(store.partitions()[0]!.policy).toEqual({ legacyRsa: true });
      store.setFailures(row!.id, 'co', 2);
      expect(store.partitions()[0]!.policy).toEqual({ legacyRsa: true });
    } finally {
      store.close();
    }
  });

  it('a store made before partition policies gains the column at open; its row MACs still hold (a default policy adds nothing to the MAC)', () => {
    withDb(home, (db) => db.exec('ALTER TABLE partitions DROP COLUMN policy'));
    const store = HsmStore.open(storePath(home));
    try {
      expect(store.partitions()[0]!.policy).toEqual({ legacyRsa: false });
      expect(store.keepsPolicies).toBe(true);
    } finally {
      store.close();
    }
  });

  it('a store made before row MACs gets them at its first open, and reads the same', () => {
    const before = withDb(home, (db) => db.prepare('SELECT id, partition_id, attributes, sealed FROM objects ORDER BY id').all());
    withDb(home, (db) => {
      db.exec("DELETE FROM meta WHERE key IN ('integrity_key', 'integrity'); ALTER TABLE objects DROP COLUMN mac; ALTER TABLE partitions DROP COLUMN mac;");
    });
    const store = HsmStore.open(storePath(home));
    try {
      expect(store.objects().map((r) => ({ id: r.id, partition_id: r.partitionId, attributes: r.attributes, sealed: r.sealed }))).toEqual(before);
      expect(store.partitions()).toHaveLength(1);
    } finally {
      store.close();
    }
    expect(withDb(home, (db) => (db.prepare("SELECT value FROM meta WHERE key = 'integrity'").get() as { value: string }).value)).toBe('hmac-sha256-rows-v1');
  });

  it('a token image made before row MACs (opened with create: false) is read and written as it is, not converted', () => {
    withDb(home, (db) => {
      db.exec("DELETE FROM meta WHERE key IN ('integrity_key', 'integrity'); ALTER TABLE objects DROP COLUMN mac; ALTER TABLE partitions DROP COLUMN mac;");
    });
    const store = HsmStore.open(storePath(home), { create: false });
    try {
      const rows = store.objects();
      expect(rows).toHaveLength(2);
      store.putObjects([{ ...rows[0]!, id: 777 }]);
      expect(store.objects()).toHaveLength(3);
      expect(store.partitions()).toHaveLength(1);
    } finally {
      store.close();
    }
    expect(withDb(home, (db) => db.prepare("SELECT value FROM meta WHERE key = 'integrity_key'").get())).toBeUndefined();
  });
});
