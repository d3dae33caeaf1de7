// The HSM store on PostgreSQL, for several ntls nodes serving the same partitions. Same rows,
// same sealed blobs and same row MACs as the SQLite store (hsm-store.ts): PostgreSQL only ever
// sees what the SQLite file holds, never a clear key or a PIN.
//
// Every write is one transaction that first takes the single row of ntls_clock (UPDATE ... +1):
// writers of every node are serialised there, so store versions are handed out in commit order,
// and each partition written records the version that last changed it (ntls_partition_versions,
// with objects_version for its objects). A node asks `changes()` before each call: one indexed
// query for versions above the last it applied, which is empty unless another node wrote; then
// it reloads just those partitions (docs/ha.md says why this and not LISTEN/NOTIFY alone).
//
// PIN failure counts change in one transaction holding the row (SELECT ... FOR UPDATE), the MAC
// checked before and written after: counts from every node add up, a lock holds everywhere.

import pg from 'pg';
import { decodeCredential, encodeCredential } from './credential.js';
import { StoreOpenError } from './errors.js';
import {
  INTEGRITY_KEY, INTEGRITY_SCHEME, INTEGRITY_SCHEME_NAME, macMatches, newIntegrityKey, objectMac, partitionMac,
  StoreIntegrityError, type PartitionFields,
} from './integrity.js';
import { hostListClient, isReadOnlyError, parseHosts, type HostAwareClient } from './pg-hosts.js';
import { MAGIC, PG_CREATE_SCHEMA, PG_SCHEMA_VERSION } from './schema.js';
import { decodePolicy, encodePolicy, type HsmStoreBackend, type ObjectRow, type PartitionRow, type PartitionState, type Role } from './store.js';

/** Object ids one node takes at a time (the sequence's increment). */
export const OBJECT_ID_BLOCK = 256;

export interface PgStoreOptions {
  /** Connections in the pool (store.poolSize). */
  poolSize?: number;
  /** Milliseconds to wait for a connection before the call fails. */
  connectTimeoutMs?: number;
  /** Milliseconds a statement may take before the call fails and its connection is dropped. */
  queryTimeoutMs?: number;
}

interface PartitionRecord extends PartitionFields {
  created_at: string;
  mac: Buffer | null;
}

interface ObjectRecord {
  id: number;
  partition_id: number;
  attributes: Buffer;
  sealed: Buffer | null;
  mac: Buffer | null;
}

/** The URL with its password masked, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/password=\S+/gi, 'password=***');
  }
}

/** Whether the failure is PostgreSQL's answer to a statement (the connection itself is sound). */
function isStatementError(error: unknown): boolean {
  return error instanceof pg.DatabaseError;
}

export class PgStore implements HsmStoreBackend {
  readonly engine = 'postgres' as const;
  readonly keepsPolicies = true;
  /** The highest store version this node has applied (its view holds every change up to it). */
  private seen = 0;

  private constructor(private readonly pool: pg.Pool, readonly path: string, private readonly integrityKey: Buffer) {}

  /**
   * Connects, and makes the schema in an empty database (under an advisory lock, so nodes that
   * start together make it once). A database that is not ours, or of another schema version, is
   * refused before anything is written. Throws StoreOpenError.
   */
  static async open(url: string, options: PgStoreOptions = {}): Promise<PgStore> {
    const where = redactUrl(url);
    let pool: pg.Pool;
    try {
      const hosts = parseHosts(url);
      pool = new pg.Pool({
        connectionString: hosts.urls[0], max: options.poolSize ?? 10, connectionTimeoutMillis: options.connectTimeoutMs ?? 5000,
        idleTimeoutMillis: 30_000, application_name: 'ntls',
        // No call waits on the database for ever: a statement stuck behind a lock or a connection
        // that stopped answering fails (CKR_DEVICE_ERROR), and its connection is not reused.
        query_timeout: options.queryTimeoutMs ?? 10_000, keepAlive: true,
        ...(hosts.urls.length > 1 || hosts.readWrite ? { Client: hostListClient(hosts) } : {}),
      });
    } catch (error) {
      throw new StoreOpenError(where, `store.url is not a PostgreSQL connection string: ${(error as Error).message}`, { cause: error, advice: 'Correct store.url (postgresql://user@host:port/database).' });
    }
    // A pooled connection the server ends (a restart) is reported here; the next query reconnects.
    pool.on('error', () => undefined);
    // The pool hears only its idle connections. One checked out with no query running (COMMIT
    // answered, not yet released) reports its end as an 'error' event of its own, which unheard
    // would end the process; the query that meets it fails instead, and the pool drops it.
    pool.on('connect', (client) => client.on('error', () => undefined));
    let client: pg.PoolClient | undefined;
    try {
      // Each host of a list gets its turn at start.
      for (let tries = parseHosts(url).urls.length; client === undefined; tries--) {
        client = await pool.connect().catch((error: unknown) => {
          if (tries <= 1) throw error;
          return undefined;
        });
      }
    } catch (error) {
      await pool.end().catch(() => undefined);
      throw new StoreOpenError(where, `cannot connect: ${(error as Error).message || (error as { code?: string }).code}`, { cause: error, advice: 'Check store.url and that PostgreSQL is running and reachable.' });
    }
    try {
      const key = await prepareSchema(client);
      const store = new PgStore(pool, where, key);
      store.seen = Number((await client.query<{ version: string }>('SELECT version FROM ntls_clock')).rows[0]!.version);
      client.release();
      return store;
    } catch (error) {
      client.release(true);
      await pool.end().catch(() => undefined);
      if (error instanceof StoreOpenError) throw error;
      throw new StoreOpenError(where, (error as Error).message, { cause: error, advice: 'Nothing was written to the database; point store.url at a database of this ntls (or an empty one), or run the ntls release that made it.' });
    }
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private async transaction<T>(work: (c: pg.PoolClient) => Promise<T>, mode = 'BEGIN'): Promise<T> {
    const client = await this.pool.connect();
    try {
      await client.query(mode);
      const result = await work(client);
      await client.query('COMMIT');
      client.release();
      return result;
    } catch (error) {
      if (isReadOnlyError(error)) {
        // The primary became a standby: this connection goes, the next tries the next host.
        (client as unknown as Partial<HostAwareClient>).passTurn?.();
        client.release(true);
      } else if (isStatementError(error)) {
        await client.query('ROLLBACK').catch(() => undefined);
        client.release();
      } else {
        // The connection is in doubt: it goes, and the server rolls back what it did not commit.
        client.release(true);
      }
      throw error;
    }
  }

  /**
   * A write: the store clock first (serialising writers), the work, then the new version of each
   * partition touched. When nothing else had changed since this node's view, the view stays current.
   */
  private async write(partitions: readonly number[], kind: 'row' | 'objects' | 'both' | 'deleted', work: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    const version = await this.transaction(async (c) => {
      const clock = await c.query<{ version: string }>('UPDATE ntls_clock SET version = version + 1 RETURNING version');
      const v = Number(clock.rows[0]!.version);
      await work(c);
      for (const id of new Set(partitions)) {
        await c.query(`INSERT INTO ntls_partition_versions (partition_id, version, objects_version, deleted) VALUES ($1, $2, $2, $3)
          ON CONFLICT (partition_id) DO UPDATE SET version = $2, deleted = $3,
          objects_version = CASE WHEN $4 THEN $2 ELSE ntls_partition_versions.objects_version END`,
        [id, v, kind === 'deleted', kind !== 'row']);
      }
      return v;
    });
    if (this.seen === version - 1) this.seen = version;
  }

  private partitionIntact(r: PartitionRecord): boolean {
    return macMatches(partitionMac(this.integrityKey, r), r.mac);
  }

  private rowOf(r: PartitionRecord): PartitionRow {
    return {
      id: r.id, slotId: r.slot_id, serial: r.serial, name: r.name ?? r.label, label: r.label, initialized: r.initialized === 1,
      credentials: {
        so: r.so_credential === null ? null : decodeCredential(r.so_credential),
        co: r.co_credential === null ? null : decodeCredential(r.co_credential),
        cu: r.cu_credential === null ? null : decodeCredential(r.cu_credential),
      },
      failures: { so: r.so_failures, co: r.co_failures, cu: r.cu_failures },
      policy: decodePolicy(r.policy),
    };
  }

  private checkedPartitions(records: PartitionRecord[]): PartitionRow[] {
    const corrupt = records.filter((r) => !this.partitionIntact(r)).map((r) => ({ table: 'partitions' as const, id: r.id }));
    if (corrupt.length) throw new StoreIntegrityError(this.path, corrupt);
    return records.map((r) => this.rowOf(r));
  }

  private checkedObjects(records: ObjectRecord[]): ObjectRow[] {
    const corrupt = records.filter((r) => !macMatches(objectMac(this.integrityKey, r), r.mac)).map((r) => ({ table: 'objects' as const, id: r.id }));
    if (corrupt.length) throw new StoreIntegrityError(this.path, corrupt);
    return records.map((r) => ({ id: r.id, partitionId: r.partition_id, attributes: r.attributes, sealed: r.sealed }));
  }

  async partitions(): Promise<PartitionRow[]> {
    return this.checkedPartitions((await this.pool.query<PartitionRecord>('SELECT * FROM ntls_partitions ORDER BY slot_id')).rows);
  }

  async objects(): Promise<ObjectRow[]> {
    return this.checkedObjects((await this.pool.query<ObjectRecord>('SELECT id, partition_id, attributes, sealed, mac FROM ntls_objects ORDER BY id')).rows);
  }

  /** Every row at one instant, with the version it is at (a node's starting view). */
  async snapshot(): Promise<{ partitions: PartitionRow[]; objects: ObjectRow[] }> {
    return this.transaction(async (c) => {
      const version = Number((await c.query<{ version: string }>('SELECT version FROM ntls_clock')).rows[0]!.version);
      const partitions = this.checkedPartitions((await c.query<PartitionRecord>('SELECT * FROM ntls_partitions ORDER BY slot_id')).rows);
      const objects = this.checkedObjects((await c.query<ObjectRecord>('SELECT id, partition_id, attributes, sealed, mac FROM ntls_objects ORDER BY id')).rows);
      this.seen = version;
      return { partitions, objects };
    }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }

  async reserveObjectIds(): Promise<{ first: number; count: number }> {
    const r = await this.transaction((c) => c.query<{ v: string }>("SELECT nextval('ntls_object_ids') AS v"));
    return { first: Number(r.rows[0]!.v), count: OBJECT_ID_BLOCK };
  }

  private partitionFields(p: PartitionRow): PartitionFields & { mac: Buffer } {
    const c = (role: Role) => (p.credentials[role] === null ? null : encodeCredential(p.credentials[role]));
    const fields: PartitionFields = {
      id: p.id, slot_id: p.slotId, serial: p.serial, name: p.name, label: p.label, initialized: p.initialized ? 1 : 0,
      so_credential: c('so'), co_credential: c('co'), cu_credential: c('cu'),
      so_failures: p.failures.so, co_failures: p.failures.co, cu_failures: p.failures.cu,
      policy: encodePolicy(p.policy),
    };
    return { ...fields, mac: partitionMac(this.integrityKey, fields) };
  }

  private static partitionParameters(f: PartitionFields & { mac: Buffer }): unknown[] {
    return [f.id, f.slot_id, f.serial, f.name, f.label, f.initialized, f.so_credential, f.co_credential, f.cu_credential,
      f.so_failures, f.co_failures, f.cu_failures, f.mac, f.policy ?? null];
  }

  async insertPartition(p: PartitionRow): Promise<void> {
    const f = this.partitionFields(p);
    await this.write([p.id], 'both', async (c) => {
      await c.query(`INSERT INTO ntls_partitions (id, slot_id, serial, name, label, initialized, so_credential, co_credential,
        cu_credential, so_failures, co_failures, cu_failures, mac, policy, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
      [...PgStore.partitionParameters(f), new Date().toISOString()]);
    });
  }

  /**
   * Writes the whole partition row, except that a role whose credential this write leaves as it
   * is keeps the failure count stored: another node may have counted a wrong PIN since this
   * node read the row, and that count is not this write's to undo.
   */
  async updatePartition(p: PartitionRow, dropObjects = false): Promise<void> {
    await this.write([p.id], dropObjects ? 'both' : 'row', async (c) => {
      const stored = (await c.query<PartitionRecord>('SELECT * FROM ntls_partitions WHERE id = $1 FOR UPDATE', [p.id])).rows[0];
      let row = p;
      if (stored) {
        const failures = { ...p.failures };
        for (const role of ['so', 'co', 'cu'] as const) {
          const credential = p.credentials[role] === null ? null : encodeCredential(p.credentials[role]);
          if (credential === stored[`${role}_credential`]) failures[role] = stored[`${role}_failures`];
        }
        row = { ...p, failures };
      }
      const f = this.partitionFields(row);
      if (dropObjects) await c.query('DELETE FROM ntls_objects WHERE partition_id = $1', [p.id]);
      await c.query(`UPDATE ntls_partitions SET slot_id = $2, serial = $3, name = $4, label = $5, initialized = $6, so_credential = $7,
        co_credential = $8, cu_credential = $9, so_failures = $10, co_failures = $11, cu_failures = $12, mac = $13, policy = $14 WHERE id = $1`,
      PgStore.partitionParameters(f));
    });
  }

  async recordLogin(partitionId: number, role: Role, ok: boolean, limit: number, unstored: number): Promise<number> {
    let after = ok ? 0 : unstored + 1;
    await this.write([partitionId], 'row', async (c) => {
      const found = await c.query<PartitionRecord>('SELECT * FROM ntls_partitions WHERE id = $1 FOR UPDATE', [partitionId]);
      const row = found.rows[0];
      if (!row) return;
      if (!this.partitionIntact(row)) throw new StoreIntegrityError(this.path, [{ table: 'partitions', id: partitionId }]);
      const stored = row[`${role}_failures`];
      const current = stored + unstored;
      after = ok ? (current >= limit ? current : 0) : current + 1;
      if (after === stored) return;
      const next: PartitionFields = { ...row, [`${role}_failures`]: after };
      await c.query(`UPDATE ntls_partitions SET ${role}_failures = $2, mac = $3 WHERE id = $1`, [partitionId, after, partitionMac(this.integrityKey, next)]);
    });
    return after;
  }

  async deletePartition(id: number): Promise<void> {
    await this.write([id], 'deleted', async (c) => {
      await c.query('DELETE FROM ntls_objects WHERE partition_id = $1', [id]);
      await c.query('DELETE FROM ntls_partitions WHERE id = $1', [id]);
    });
  }

  private async insertObjects(c: pg.PoolClient, rows: readonly ObjectRow[], replace: boolean): Promise<void> {
    for (const r of rows) {
      const fields = { id: r.id, partition_id: r.partitionId, attributes: r.attributes, sealed: r.sealed };
      await c.query(`INSERT INTO ntls_objects (id, partition_id, attributes, sealed, mac) VALUES ($1, $2, $3, $4, $5)${replace
        ? ' ON CONFLICT (id) DO UPDATE SET partition_id = EXCLUDED.partition_id, attributes = EXCLUDED.attributes, sealed = EXCLUDED.sealed, mac = EXCLUDED.mac'
        : ''}`, [r.id, r.partitionId, r.attributes, r.sealed, objectMac(this.integrityKey, fields)]);
    }
  }

  async putObjects(rows: readonly ObjectRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.write(rows.map((r) => r.partitionId), 'objects', (c) => this.insertObjects(c, rows, true));
  }

  async replaceObjects(partitionId: number, rows: readonly ObjectRow[]): Promise<void> {
    await this.write([partitionId], 'objects', async (c) => {
      await c.query('DELETE FROM ntls_objects WHERE partition_id = $1', [partitionId]);
      await this.insertObjects(c, rows, false);
    });
  }

  async deleteObject(id: number): Promise<void> {
    const owner = await this.pool.query<{ partition_id: number }>('SELECT partition_id FROM ntls_objects WHERE id = $1', [id]);
    const partitionId = owner.rows[0]?.partition_id;
    if (partitionId === undefined) return;
    await this.write([partitionId], 'objects', async (c) => {
      await c.query('DELETE FROM ntls_objects WHERE id = $1', [id]);
    });
  }

  /**
   * Every partition and object of another store, in one transaction (`ntls store migrate`): all
   * or nothing, into a database that holds no partition. Rows get this database's MACs; sealed
   * secrets and credentials go as they are (their additional data binds ids, which are kept).
   */
  async importAll(partitions: readonly PartitionRow[], objects: readonly ObjectRow[], onProgress?: (done: number, total: number) => void): Promise<void> {
    await this.write(partitions.map((p) => p.id), 'both', async (c) => {
      const held = await c.query<{ n: string }>('SELECT count(*) AS n FROM ntls_partitions');
      if (held.rows[0]!.n !== '0') throw new Error(`the database already holds ${held.rows[0]!.n} partition(s); migrate into an empty one`);
      for (const p of partitions) {
        await c.query(`INSERT INTO ntls_partitions (id, slot_id, serial, name, label, initialized, so_credential, co_credential,
          cu_credential, so_failures, co_failures, cu_failures, mac, policy, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
        [...PgStore.partitionParameters(this.partitionFields(p)), new Date().toISOString()]);
      }
      const chunk = 64;
      for (let i = 0; i < objects.length; i += chunk) {
        await this.insertObjects(c, objects.slice(i, i + chunk), false);
        onProgress?.(Math.min(i + chunk, objects.length), objects.length);
      }
      // Ids handed out from now on come after the ones brought in.
      const top = objects.reduce((m, o) => Math.max(m, o.id), 1);
      await c.query("SELECT setval('ntls_object_ids', $1)", [top]);
    });
  }

  /** The partitions other nodes changed since this node's view, as they now are (one snapshot). */
  async changes(): Promise<PartitionState[]> {
    const since = this.seen;
    const quick = await this.pool.query<{ n: string }>('SELECT count(*) AS n FROM ntls_partition_versions WHERE version > $1', [since]);
    if (quick.rows[0]!.n === '0') return [];
    return this.transaction(async (c) => {
      const changed = await c.query<{ partition_id: number; version: string; objects_version: string; deleted: boolean }>(
        'SELECT partition_id, version, objects_version, deleted FROM ntls_partition_versions WHERE version > $1 ORDER BY version', [since]);
      const states: PartitionState[] = [];
      let top = since;
      for (const v of changed.rows) {
        top = Math.max(top, Number(v.version));
        if (v.deleted) {
          states.push({ id: v.partition_id, row: null, objects: null });
          continue;
        }
        const row = (await c.query<PartitionRecord>('SELECT * FROM ntls_partitions WHERE id = $1', [v.partition_id])).rows;
        if (row.length === 0) {
          states.push({ id: v.partition_id, row: null, objects: null });
          continue;
        }
        const objects = Number(v.objects_version) > since
          ? this.checkedObjects((await c.query<ObjectRecord>('SELECT id, partition_id, attributes, sealed, mac FROM ntls_objects WHERE partition_id = $1 ORDER BY id', [v.partition_id])).rows)
          : null;
        states.push({ id: v.partition_id, row: this.checkedPartitions(row)[0]!, objects });
      }
      if (this.seen === since) this.seen = top;
      else this.seen = Math.max(this.seen, top);
      return states;
    }, 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  }
}

/** Reads (or, in an empty database, makes) the schema; the integrity key. Writes nothing to a database not ours. */
async function prepareSchema(client: pg.PoolClient): Promise<Buffer> {
  await client.query('BEGIN');
  try {
    // Nodes starting together: one makes the schema, the others then find it.
    await client.query("SELECT pg_advisory_xact_lock(hashtext('ntls-hsm-store'))");
    const tables = await client.query<{ name: string }>(
      "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name LIKE 'ntls\\_%'");
    const names = new Set(tables.rows.map((r) => r.name));
    if (names.size === 0) {
      await client.query(PG_CREATE_SCHEMA);
      const key = newIntegrityKey();
      for (const [k, v] of [['magic', MAGIC], ['schema_version', String(PG_SCHEMA_VERSION)], ['created_at', new Date().toISOString()],
        [INTEGRITY_KEY, key.toString('hex')], [INTEGRITY_SCHEME, INTEGRITY_SCHEME_NAME]]) {
        await client.query('INSERT INTO ntls_meta (key, value) VALUES ($1, $2)', [k, v]);
      }
      await client.query('COMMIT');
      return key;
    }
    if (!names.has('ntls_meta')) throw new Error('not an NTLS HSM store (ntls tables without ntls_meta)');
    const meta = new Map((await client.query<{ key: string; value: string }>('SELECT key, value FROM ntls_meta')).rows.map((r) => [r.key, r.value]));
    if (meta.get('magic') !== MAGIC) throw new Error('not an NTLS HSM store (magic)');
    if (meta.get('schema_version') !== String(PG_SCHEMA_VERSION)) {
      throw new Error(`schema version ${meta.get('schema_version') ?? '(none)'} in the database; this ntls reads version ${PG_SCHEMA_VERSION}`);
    }
    const key = Buffer.from(meta.get(INTEGRITY_KEY) ?? '', 'hex');
    if (key.length !== 32) throw new Error('integrity key malformed');
    // A database made before partition policies gains the column; its rows keep their MACs (a default policy adds nothing).
    const policy = await client.query("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'ntls_partitions' AND column_name = 'policy'");
    if (policy.rowCount === 0) await client.query('ALTER TABLE ntls_partitions ADD COLUMN policy TEXT');
    await client.query('COMMIT');
    return key;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}
