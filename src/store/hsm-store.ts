// The HSM's durable store: one SQLite file (WAL, synchronous=FULL), so a write that returned
// has reached the disk. The store keeps rows and opaque blobs; it knows nothing of PKCS#11.
// A file that is not ours, or not readable, is reported and left untouched: never recreated.

import Database from 'better-sqlite3';
import { chmodSync, existsSync, mkdirSync, openSync, fsyncSync, closeSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { APPLICATION_ID, CREATE_SCHEMA, MAGIC, SCHEMA_VERSION } from './schema.js';
import { StoreOpenError } from './errors.js';
import { decodeCredential, encodeCredential } from './credential.js';
import { decodePolicy, encodePolicy, type HsmStoreBackend, type ObjectRow, type PartitionRow, type Role } from './store.js';
import {
  INTEGRITY_KEY, INTEGRITY_SCHEME, INTEGRITY_SCHEME_NAME, macMatches, newIntegrityKey, objectMac, partitionMac,
  StoreIntegrityError, type CorruptRow, type ObjectFields, type PartitionFields,
} from './integrity.js';

export type { ObjectRow, PartitionPolicy, PartitionRow, Role } from './store.js';
export { DEFAULT_PARTITION_POLICY } from './store.js';

/** `<home>/hsm/hsm.db` */
export function storePath(home: string): string {
  return join(home, 'hsm', 'hsm.db');
}

interface PartitionRecord extends PartitionFields {
  mac: Buffer | null;
}

interface ObjectRecord extends ObjectFields {
  mac: Buffer | null;
}

/** What a read of the objects found: the rows that check out, and those that do not. */
export interface ObjectScan {
  rows: ObjectRow[];
  corrupt: CorruptRow[];
}

function fsyncDirectory(path: string): void {
  const fd = openSync(path, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

export interface StoreOpenOptions {
  /** Create the file when absent (the home's store); false for a token image, which must exist. */
  create?: boolean;
  /**
   * 'wal' for the home's store; 'delete' (rollback journal) for a token image, so that the file
   * alone, without a -wal beside it, always holds the whole committed token.
   */
  journal?: 'wal' | 'delete';
}

/** Makes a new, empty store at `path` atomically: built beside it, then renamed into place. */
function createStoreFile(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const building = `${path}.creating`;
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(building + suffix, { force: true });
  const db = new Database(building);
  try {
    // Owner-only as the home's other secrets; SQLite gives its -wal and -shm the file's mode.
    chmodSync(building, 0o600);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma(`application_id = ${APPLICATION_ID}`);
    db.transaction(() => {
      db.exec(CREATE_SCHEMA);
      const meta = db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)');
      meta.run('magic', MAGIC);
      meta.run('schema_version', String(SCHEMA_VERSION));
      meta.run('created_at', new Date().toISOString());
      meta.run(INTEGRITY_KEY, newIntegrityKey().toString('hex'));
      meta.run(INTEGRITY_SCHEME, INTEGRITY_SCHEME_NAME);
    })();
    db.pragma('wal_checkpoint(TRUNCATE)');
  } finally {
    db.close();
  }
  renameSync(building, path);
  fsyncDirectory(dirname(path));
}

/**
 * Stores made before partitions had an operator's name lack the column: the home's store gains
 * it when opened (each partition named after its label, or label and serial where labels repeat);
 * a token image is left as it is and its one partition is named after its label.
 */
function addNameColumn(db: Database.Database): void {
  db.transaction(() => {
    db.exec('ALTER TABLE partitions ADD COLUMN name TEXT');
    db.exec('CREATE UNIQUE INDEX partitions_by_name ON partitions(name)');
    const rows = db.prepare('SELECT id, label, serial FROM partitions ORDER BY id').all() as { id: number; label: string; serial: string }[];
    const taken = new Set<string>();
    const name = db.prepare('UPDATE partitions SET name = ? WHERE id = ?');
    for (const row of rows) {
      const chosen = row.label !== '' && !taken.has(row.label) ? row.label : `${row.label || 'partition'}-${row.serial}`;
      taken.add(chosen);
      name.run(chosen, row.id);
    }
  })();
}

function hasColumn(db: Database.Database, column: string): boolean {
  return (db.prepare('SELECT name FROM pragma_table_info(\'partitions\')').all() as { name: string }[]).some((c) => c.name === column);
}

function hasNameColumn(db: Database.Database): boolean {
  return hasColumn(db, 'name');
}

/**
 * The integrity key of an open store. The home's store made before row MACs (`migrate`) gets its
 * key and the MAC of every row now, in one transaction: what it holds at that moment is taken as
 * it is. A token image made before them is left as it is (as for partition names): null, its
 * rows are read unchecked and written without MACs.
 */
function integrityKeyOf(db: Database.Database, migrate: boolean): Buffer | null {
  const stored = db.prepare('SELECT value FROM meta WHERE key = ?').get(INTEGRITY_KEY) as { value: string } | undefined;
  if (stored) {
    const key = Buffer.from(stored.value, 'hex');
    if (key.length !== 32) throw new Error('integrity key malformed');
    return key;
  }
  if (!migrate) return null;
  const key = newIntegrityKey();
  db.transaction(() => {
    for (const table of ['partitions', 'objects']) {
      const columns = db.prepare(`SELECT name FROM pragma_table_info('${table}')`).all() as { name: string }[];
      if (!columns.some((c) => c.name === 'mac')) db.exec(`ALTER TABLE ${table} ADD COLUMN mac BLOB`);
    }
    const setPartition = db.prepare('UPDATE partitions SET mac = ? WHERE id = ?');
    for (const p of db.prepare('SELECT * FROM partitions').all() as PartitionRecord[]) setPartition.run(partitionMac(key, p), p.id);
    const setObject = db.prepare('UPDATE objects SET mac = ? WHERE id = ?');
    for (const o of db.prepare('SELECT id, partition_id, attributes, sealed FROM objects').all() as ObjectRecord[]) setObject.run(objectMac(key, o), o.id);
    const meta = db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)');
    meta.run(INTEGRITY_KEY, key.toString('hex'));
    meta.run(INTEGRITY_SCHEME, INTEGRITY_SCHEME_NAME);
  })();
  return key;
}

export class HsmStore implements HsmStoreBackend {
  readonly engine = 'sqlite' as const;
  /** The next object id to hand out: this process alone writes the file (its lock). */
  private nextObjectId = 0;

  private constructor(
    private readonly db: Database.Database, readonly path: string, private readonly named: boolean,
    /** false: a token image made before partition policies, whose one partition keeps the defaults. */
    private readonly withPolicy: boolean,
    /** null: a token image made before row MACs, read as it is and left so (see integrityKeyOf). */
    private readonly integrityKey: Buffer | null,
  ) {}

  /** Opens (creating when absent, unless told not to) the store file. Throws StoreOpenError for anything not ours. */
  static open(path: string, options: StoreOpenOptions = {}): HsmStore {
    if (!existsSync(path) && options.create !== false) {
      try {
        createStoreFile(path);
      } catch (error) {
        throw new StoreOpenError(path, `cannot create: ${(error as Error).message}`, { cause: error });
      }
    }
    let db: Database.Database | undefined;
    try {
      // No busy wait: a store held by another process is refused at once (see below).
      db = new Database(path, { fileMustExist: true, timeout: 0 });
      // Read-only checks first: nothing is written to a file before it is known to be ours.
      const applicationId = db.pragma('application_id', { simple: true });
      if (applicationId !== APPLICATION_ID) throw new Error('not an NTLS HSM store (application_id)');
      const hasMeta = db.prepare("SELECT count(*) AS n FROM sqlite_schema WHERE type = 'table' AND name = 'meta'").get() as { n: number };
      if (hasMeta.n !== 1) throw new Error('not an NTLS HSM store (no meta table)');
      const meta = new Map((db.prepare('SELECT key, value FROM meta').all() as { key: string; value: string }[]).map((r) => [r.key, r.value]));
      if (meta.get('magic') !== MAGIC) throw new Error('not an NTLS HSM store (magic)');
      if (meta.get('schema_version') !== String(SCHEMA_VERSION)) throw new Error(`unsupported schema version ${meta.get('schema_version')}`);
      const check = db.pragma('quick_check', { simple: true });
      if (check !== 'ok') throw new Error(`integrity check: ${String(check)}`);
      db.pragma(options.journal === 'delete' ? 'journal_mode = DELETE' : 'journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      // One HSM per store: the token model keeps the objects in memory, so a second process
      // writing the same file would be overwritten or ignored. Hold the file's lock until close.
      db.pragma('locking_mode = EXCLUSIVE');
      db.exec('BEGIN EXCLUSIVE; COMMIT;');
      let named = hasNameColumn(db);
      if (!named && options.create !== false) {
        addNameColumn(db);
        named = true;
      }
      // Stores made before partition policies gain the column (null: the defaults); a token image is left as it is.
      let withPolicy = hasColumn(db, 'policy');
      if (!withPolicy && options.create !== false) {
        db.exec('ALTER TABLE partitions ADD COLUMN policy TEXT');
        withPolicy = true;
      }
      return new HsmStore(db, path, named, withPolicy, integrityKeyOf(db, options.create !== false));
    } catch (error) {
      try { db?.close(); } catch { /* already failing */ }
      if (error instanceof StoreOpenError) throw error;
      const busy = (error as { code?: string }).code?.startsWith('SQLITE_BUSY') === true;
      throw new StoreOpenError(path, busy ? 'in use by another HSM (process) on this machine' : (error as Error).message, { cause: error });
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  /** A consistent copy of the store into `file` while it is in use (SQLite's online backup API). */
  async backup(file: string): Promise<void> {
    await this.db.backup(file);
  }

  private partitionIntact(r: PartitionRecord): boolean {
    return this.integrityKey === null || macMatches(partitionMac(this.integrityKey, r), r.mac);
  }

  private objectIntact(r: ObjectRecord): boolean {
    return this.integrityKey === null || macMatches(objectMac(this.integrityKey, r), r.mac);
  }

  /** Every partition row; StoreIntegrityError (CKR_DEVICE_ERROR) if any fails its MAC. */
  partitions(): PartitionRow[] {
    const rows = this.db.prepare('SELECT * FROM partitions ORDER BY slot_id').all() as PartitionRecord[];
    const corrupt = rows.filter((r) => !this.partitionIntact(r)).map((r) => ({ table: 'partitions' as const, id: r.id }));
    if (corrupt.length) throw new StoreIntegrityError(this.path, corrupt);
    return rows.map((r) => ({
      id: r.id, slotId: r.slot_id, serial: r.serial, name: r.name ?? r.label, label: r.label, initialized: r.initialized === 1,
      credentials: {
        so: r.so_credential === null ? null : decodeCredential(r.so_credential),
        co: r.co_credential === null ? null : decodeCredential(r.co_credential),
        cu: r.cu_credential === null ? null : decodeCredential(r.cu_credential),
      },
      failures: { so: r.so_failures, co: r.co_failures, cu: r.cu_failures },
      policy: decodePolicy(r.policy),
    }));
  }

  /** Every object row; StoreIntegrityError (CKR_DEVICE_ERROR) if any fails its MAC, so no altered record is served. */
  objects(): ObjectRow[] {
    const scan = this.scanObjects();
    if (scan.corrupt.length) throw new StoreIntegrityError(this.path, scan.corrupt);
    return scan.rows;
  }

  /**
   * Every object row, the corrupt ones set apart instead of thrown: for a caller that serves the
   * intact objects and answers CKR_DEVICE_ERROR for the others.
   */
  scanObjects(): ObjectScan {
    const records = this.db.prepare(`SELECT id, partition_id, attributes, sealed${this.integrityKey ? ', mac' : ''} FROM objects ORDER BY id`).all() as ObjectRecord[];
    const scan: ObjectScan = { rows: [], corrupt: [] };
    for (const r of records) {
      if (this.objectIntact(r)) scan.rows.push({ id: r.id, partitionId: r.partition_id, attributes: r.attributes, sealed: r.sealed });
      else scan.corrupt.push({ table: 'objects', id: r.id });
    }
    return scan;
  }

  maxObjectId(): number {
    const row = this.db.prepare('SELECT max(id) AS m FROM objects').get() as { m: number | null };
    return row.m ?? 0;
  }

  /** One id at a time: this process alone writes the file, so the count is all in memory. */
  reserveObjectIds(): { first: number; count: number } {
    if (this.nextObjectId === 0) this.nextObjectId = this.maxObjectId() + 1;
    return { first: this.nextObjectId++, count: 1 };
  }

  private partitionValues(p: PartitionRow) {
    const c = (role: Role) => (p.credentials[role] === null ? null : encodeCredential(p.credentials[role]));
    const fields: PartitionFields = {
      id: p.id, slot_id: p.slotId, serial: p.serial, ...(this.named ? { name: p.name } : {}), label: p.label, initialized: p.initialized ? 1 : 0,
      so_credential: c('so'), co_credential: c('co'), cu_credential: c('cu'),
      so_failures: p.failures.so, co_failures: p.failures.co, cu_failures: p.failures.cu,
      ...(this.withPolicy ? { policy: encodePolicy(p.policy) } : {}),
    };
    return this.integrityKey ? { ...fields, mac: partitionMac(this.integrityKey, fields) } : fields;
  }

  private objectValues(r: ObjectRow): ObjectFields & { mac?: Buffer } {
    const fields: ObjectFields = { id: r.id, partition_id: r.partitionId, attributes: r.attributes, sealed: r.sealed };
    return this.integrityKey ? { ...fields, mac: objectMac(this.integrityKey, fields) } : fields;
  }

  insertPartition(p: PartitionRow): void {
    const name = this.named ? 'name, ' : '';
    const mac = this.integrityKey ? ', mac' : '';
    const policy = this.withPolicy ? ', policy' : '';
    this.db.prepare(`INSERT INTO partitions (id, slot_id, serial, ${name}label, initialized, so_credential, co_credential,
      cu_credential, so_failures, co_failures, cu_failures, created_at${policy}${mac}) VALUES (@id, @slot_id, @serial, ${name ? '@name, ' : ''}@label,
      @initialized, @so_credential, @co_credential, @cu_credential, @so_failures, @co_failures, @cu_failures, @created_at${policy ? ', @policy' : ''}${mac ? ', @mac' : ''})`)
      .run({ ...this.partitionValues(p), created_at: new Date().toISOString() });
  }

  /** Writes the whole partition row; with `dropObjects`, deletes its objects in the same transaction (C_InitToken). */
  updatePartition(p: PartitionRow, dropObjects = false): void {
    this.db.transaction(() => {
      if (dropObjects) this.db.prepare('DELETE FROM objects WHERE partition_id = ?').run(p.id);
      this.db.prepare(`UPDATE partitions SET slot_id = @slot_id, serial = @serial, label = @label,
        initialized = @initialized, so_credential = @so_credential, co_credential = @co_credential,
        cu_credential = @cu_credential, so_failures = @so_failures, co_failures = @co_failures,
        cu_failures = @cu_failures${this.withPolicy ? ', policy = @policy' : ''}${this.integrityKey ? ', mac = @mac' : ''} WHERE id = @id`).run(this.partitionValues(p));
    })();
  }

  /** Changes one role's failure count; the row is checked first, so a corrupt one is never given a new MAC. */
  setFailures(partitionId: number, role: Role, failures: number): void {
    this.db.transaction(() => {
      const row = this.db.prepare('SELECT * FROM partitions WHERE id = ?').get(partitionId) as PartitionRecord | undefined;
      if (!row) return;
      if (!this.integrityKey) {
        this.db.prepare(`UPDATE partitions SET ${role}_failures = ? WHERE id = ?`).run(failures, partitionId);
        return;
      }
      if (!this.partitionIntact(row)) throw new StoreIntegrityError(this.path, [{ table: 'partitions', id: partitionId }]);
      const next: PartitionFields = { ...row, [`${role}_failures`]: failures };
      this.db.prepare(`UPDATE partitions SET ${role}_failures = ?, mac = ? WHERE id = ?`).run(failures, partitionMac(this.integrityKey, next), partitionId);
    })();
  }

  recordLogin(partitionId: number, role: Role, ok: boolean, limit: number, unstored: number): number {
    return this.db.transaction(() => {
      const row = this.db.prepare('SELECT * FROM partitions WHERE id = ?').get(partitionId) as PartitionRecord | undefined;
      if (!row) return ok ? 0 : 1;
      const stored = row[`${role}_failures`];
      const current = stored + unstored;
      const next = ok ? (current >= limit ? current : 0) : current + 1;
      if (next !== stored) this.setFailures(partitionId, role, next);
      return next;
    })();
  }

  /** Whether this store keeps partition policies (a token image made before them does not). */
  get keepsPolicies(): boolean {
    return this.withPolicy;
  }

  deletePartition(id: number): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM objects WHERE partition_id = ?').run(id);
      this.db.prepare('DELETE FROM partitions WHERE id = ?').run(id);
    })();
  }

  /** Inserts or replaces objects, all in one transaction (a key pair is two rows, written together). */
  putObjects(rows: readonly ObjectRow[]): void {
    const put = this.db.prepare(`INSERT OR REPLACE INTO objects (id, partition_id, attributes, sealed${this.integrityKey ? ', mac' : ''}) VALUES (@id, @partition_id, @attributes, @sealed${this.integrityKey ? ', @mac' : ''})`);
    this.db.transaction(() => {
      for (const r of rows) put.run(this.objectValues(r));
    })();
  }

  /** Replaces every object of a partition with `rows`, in one transaction (a restore that replaces). */
  replaceObjects(partitionId: number, rows: readonly ObjectRow[]): void {
    const put = this.db.prepare(`INSERT INTO objects (id, partition_id, attributes, sealed${this.integrityKey ? ', mac' : ''}) VALUES (@id, @partition_id, @attributes, @sealed${this.integrityKey ? ', @mac' : ''})`);
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM objects WHERE partition_id = ?').run(partitionId);
      for (const r of rows) put.run(this.objectValues(r));
    })();
  }

  /** Every partition and object of another store, in one transaction (`ntls store migrate`). */
  importAll(partitions: readonly PartitionRow[], objects: readonly ObjectRow[], onProgress?: (done: number, total: number) => void): void {
    this.db.transaction(() => {
      const held = this.db.prepare('SELECT count(*) AS n FROM partitions').get() as { n: number };
      if (held.n !== 0) throw new Error(`the store already holds ${held.n} partition(s)`);
      for (const p of partitions) this.insertPartition(p);
      const chunk = 64;
      for (let i = 0; i < objects.length; i += chunk) {
        this.putObjects(objects.slice(i, i + chunk));
        onProgress?.(Math.min(i + chunk, objects.length), objects.length);
      }
    })();
  }

  deleteObject(id: number): void {
    this.db.prepare('DELETE FROM objects WHERE id = ?').run(id);
  }
}
