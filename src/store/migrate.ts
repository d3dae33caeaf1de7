// `ntls store migrate`: a home's store moved from its SQLite file into PostgreSQL, or back, all
// or nothing. Rows are read with their MACs checked, and written in one transaction (PostgreSQL)
// or into a file built beside its place and renamed in (SQLite). Sealed secrets and credentials
// move as they are: neither side ever holds a clear key or a PIN.

import { existsSync, renameSync, rmSync } from 'node:fs';
import { HsmStore } from './hsm-store.js';
import { PgStore } from './pg-store.js';

export interface MigrationResult {
  partitions: number;
  objects: number;
}

export type Progress = (done: number, total: number) => void;

/** The home's SQLite store (`path`, which a running daemon holds locked: refused then) into the database at `url`, which must hold no partition. */
export async function migrateToPostgres(path: string, url: string, onProgress?: Progress): Promise<MigrationResult> {
  if (!existsSync(path)) throw new Error(`there is no SQLite store at ${path}`);
  const source = HsmStore.open(path, { create: false });
  let partitions;
  let objects;
  try {
    partitions = source.partitions();
    objects = source.objects();
  } finally {
    source.close();
  }
  const target = await PgStore.open(url, { poolSize: 1 });
  try {
    await target.importAll(partitions, objects, onProgress);
  } finally {
    await target.close();
  }
  return { partitions: partitions.length, objects: objects.length };
}

/** The database at `url` into a new SQLite store at `path` (which must not exist). */
export async function migrateToSqlite(url: string, path: string, onProgress?: Progress): Promise<MigrationResult> {
  if (existsSync(path)) throw new Error(`${path} exists; move it away first (nothing was changed)`);
  const source = await PgStore.open(url, { poolSize: 1 });
  let snapshot;
  try {
    snapshot = await source.snapshot();
  } finally {
    await source.close();
  }
  const building = `${path}.migrating`;
  for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(building + suffix, { force: true });
  try {
    const target = HsmStore.open(building);
    try {
      target.importAll(snapshot.partitions, snapshot.objects, onProgress);
    } finally {
      target.close();
    }
    renameSync(building, path);
  } catch (error) {
    for (const suffix of ['', '-wal', '-shm', '-journal']) rmSync(building + suffix, { force: true });
    throw error;
  }
  return { partitions: snapshot.partitions.length, objects: snapshot.objects.length };
}
