// The store's own file format. A file is ours when the SQLite header carries our application_id
// and the meta table says the magic and a schema version we read; anything else is foreign.
// Every partition and object row carries a MAC (integrity.ts); a store made before the MACs is
// given them, in place, the first time it is opened (meta "integrity" names the scheme).

/** "NTLS" in the SQLite header (PRAGMA application_id). */
export const APPLICATION_ID = 0x4e544c53;
export const MAGIC = 'ntls-hsm-store';
export const SCHEMA_VERSION = 1;

export const CREATE_SCHEMA = `
CREATE TABLE meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) STRICT;
CREATE TABLE partitions (
  id          INTEGER PRIMARY KEY,
  slot_id     INTEGER NOT NULL UNIQUE,
  serial      TEXT NOT NULL UNIQUE,
  label       TEXT NOT NULL,
  initialized INTEGER NOT NULL,
  name        TEXT UNIQUE,
  policy      TEXT,
  so_credential TEXT,
  co_credential TEXT,
  cu_credential TEXT,
  so_failures INTEGER NOT NULL DEFAULT 0,
  co_failures INTEGER NOT NULL DEFAULT 0,
  cu_failures INTEGER NOT NULL DEFAULT 0,
  created_at  TEXT NOT NULL,
  mac         BLOB
) STRICT;
CREATE TABLE objects (
  id           INTEGER PRIMARY KEY,
  partition_id INTEGER NOT NULL REFERENCES partitions(id) ON DELETE CASCADE,
  attributes   BLOB NOT NULL,
  sealed       BLOB,
  mac          BLOB
) STRICT;
CREATE INDEX objects_by_partition ON objects(partition_id);
`;

/**
 * The same store in PostgreSQL (pg-store.ts), shared by several nodes. Besides the SQLite
 * tables: the store clock (one row every write takes first, serialising writers), each
 * partition's last change, and the sequence object ids are taken from in blocks.
 */
export const PG_SCHEMA_VERSION = 1;

export const PG_CREATE_SCHEMA = `
CREATE TABLE ntls_meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
CREATE TABLE ntls_partitions (
  id          INTEGER PRIMARY KEY,
  slot_id     INTEGER NOT NULL UNIQUE,
  serial      TEXT NOT NULL UNIQUE,
  label       TEXT NOT NULL,
  initialized INTEGER NOT NULL,
  name        TEXT UNIQUE,
  so_credential TEXT,
  co_credential TEXT,
  cu_credential TEXT,
  so_failures INTEGER NOT NULL DEFAULT 0,
  co_failures INTEGER NOT NULL DEFAULT 0,
  cu_failures INTEGER NOT NULL DEFAULT 0,
  policy      TEXT,
  created_at  TEXT NOT NULL,
  mac         BYTEA
);
CREATE TABLE ntls_objects (
  id           INTEGER PRIMARY KEY,
  partition_id INTEGER NOT NULL REFERENCES ntls_partitions(id) ON DELETE CASCADE,
  attributes   BYTEA NOT NULL,
  sealed       BYTEA,
  mac          BYTEA
);
CREATE INDEX ntls_objects_by_partition ON ntls_objects(partition_id);
CREATE TABLE ntls_clock (
  one     INTEGER PRIMARY KEY CHECK (one = 1),
  version BIGINT NOT NULL
);
INSERT INTO ntls_clock (one, version) VALUES (1, 0);
CREATE TABLE ntls_partition_versions (
  partition_id    INTEGER PRIMARY KEY,
  version         BIGINT NOT NULL,
  objects_version BIGINT NOT NULL,
  deleted         BOOLEAN NOT NULL
);
CREATE INDEX ntls_partition_versions_by_version ON ntls_partition_versions(version);
CREATE SEQUENCE ntls_object_ids START WITH 1 INCREMENT BY 256;
`;
