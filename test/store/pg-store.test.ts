// The HSM store on PostgreSQL (src/store/pg-store.ts) against a real private PostgreSQL 15
// (test/support/postgres.ts): what it keeps is what SQLite keeps (sealed secrets, row MACs, no
// PIN), it survives a reopen, and it refuses a database not of its schema without writing.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreOpenError } from '../../src/store/errors.js';
import { PgStore } from '../../src/store/pg-store.js';
import { CKA, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import { CO_PIN, CU_PIN, RW, SO_PIN, mech, openHsm, readyHsm, removeHome, rv, tempHome } from '../hsm/support.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';

let server: PostgresServer;
let databases = 0;
const homes: string[] = [];

beforeAll(async () => { server = await startPostgres(); });
afterAll(async () => {
  await server?.destroy();
  for (const home of homes) removeHome(home);
});

async function freshDatabase(): Promise<string> {
  return server.createDatabase(`store_${++databases}`);
}

function home(): string {
  const made = tempHome();
  homes.push(made);
  return made;
}

/** Every value of every ntls table, as text (bytea in hex): what PostgreSQL holds. */
async function everything(database: string): Promise<string> {
  const tables = await server.query<{ name: string }>(database, "SELECT table_name AS name FROM information_schema.tables WHERE table_name LIKE 'ntls\\_%'");
  const parts: string[] = [];
  for (const { name } of tables) parts.push(JSON.stringify(await server.query(database, `SELECT * FROM ${name}`)));
  return parts.join('\n') + (await server.query(database, 'SELECT encode(attributes, \'hex\') || coalesce(encode(sealed, \'hex\'), \'\') AS b FROM ntls_objects')).map((r) => r.b as string).join('');
}

describe('the PostgreSQL store', () => {
  it('keeps partitions and keys across a reopen; holds no clear key, private key or PIN', async () => {
    const url = await freshDatabase();
    const { hsm, slot } = await readyHsm(home(), { postgres: { url } });
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    const aes = await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [
      { type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: true }, { type: CKA.SENSITIVE, value: false }, { type: CKA.EXTRACTABLE, value: true },
      { type: CKA.LABEL, value: Buffer.from('kept') },
    ]);
    const value = (await app.C_GetAttributeValue(s, aes, [{ type: CKA.VALUE }])).attributes[0]!.value as Buffer;
    await hsm.shutdown();

    const held = await everything(new URL(url).pathname.slice(1));
    expect(held).not.toContain(value.toString('hex'));
    for (const pin of [SO_PIN, CO_PIN, CU_PIN]) {
      expect(held).not.toContain(pin);
      expect(held).not.toContain(Buffer.from(pin).toString('hex'));
    }

    const again = await openHsm(home(), { postgres: { url } });
    const app2 = again.application('b');
    const s2 = await app2.C_OpenSession(slot, RW);
    await app2.C_Login(s2, CKU.USER, CO_PIN);
    await app2.C_FindObjectsInit(s2, [{ type: CKA.LABEL, value: Buffer.from('kept') }]);
    const [found] = await app2.C_FindObjects(s2, 10);
    expect((await app2.C_GetAttributeValue(s2, found!, [{ type: CKA.VALUE }])).attributes[0]!.value).toEqual(value);
    await again.shutdown();
  });

  it('a row altered in the database is never served: the open fails with the device error', async () => {
    const url = await freshDatabase();
    const { hsm } = await readyHsm(home(), { postgres: { url } });
    await hsm.shutdown();
    const database = new URL(url).pathname.slice(1);
    await server.query(database, 'UPDATE ntls_partitions SET co_failures = 0, label = \'changed\'');
    const error = await openHsm(home(), { postgres: { url } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreOpenError);
    expect((error as StoreOpenError).code).toBe('LUNA_RET_DEVICE_ERROR');
  });

  it('a database of another schema version is refused in one line, and nothing is written', async () => {
    const url = await freshDatabase();
    const { hsm } = await readyHsm(home(), { postgres: { url } });
    await hsm.shutdown();
    const database = new URL(url).pathname.slice(1);
    await server.query(database, "UPDATE ntls_meta SET value = '99' WHERE key = 'schema_version'");
    const before = await everything(database);
    const error = await PgStore.open(url).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreOpenError);
    expect((error as StoreOpenError).code).toBe('LUNA_RET_DEVICE_ERROR');
    expect((error as Error).message).toMatch(/schema version 99/);
    expect((error as Error).message).not.toContain('\n');
    expect(await everything(database)).toBe(before);
  });

  it('a database holding other tables named like ours but not ours is refused, untouched', async () => {
    const url = await freshDatabase();
    const database = new URL(url).pathname.slice(1);
    await server.query(database, 'CREATE TABLE ntls_partitions (x int)');
    const error = await PgStore.open(url).catch((e: unknown) => e);
    expect((error as StoreOpenError).code).toBe('LUNA_RET_DEVICE_ERROR');
    expect((await server.query(database, "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name LIKE 'ntls\\_%'"))[0]!.n).toBe(1);
  });

  it('a database made before partition policies gains the column at open; its rows keep their MACs', async () => {
    const url = await freshDatabase();
    const { hsm } = await readyHsm(home(), { postgres: { url } });
    await hsm.shutdown();
    const database = new URL(url).pathname.slice(1);
    await server.query(database, 'ALTER TABLE ntls_partitions DROP COLUMN policy');
    const again = await openHsm(home(), { postgres: { url } });
    const slot = again.listPartitions()[0]!.slotId;
    expect(again.device.partitionPolicy(slot)).toEqual({ legacyRsa: false });
    await again.device.setPartitionPolicy(slot, { legacyRsa: true });
    expect(await server.query(database, 'SELECT policy FROM ntls_partitions')).toEqual([{ policy: '{"legacyRsa":true}' }]);
    await again.shutdown();
  });

  it('a write stuck behind a lock fails after the statement timeout, and the next write after the lock goes succeeds', async () => {
    const url = await freshDatabase();
    const store = await PgStore.open(url, { queryTimeoutMs: 500 });
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT version FROM ntls_clock FOR UPDATE');
      const stuck = await store.reserveObjectIds().then(() => 'answered', (e: unknown) => e);
      // reserveObjectIds takes no clock lock; a write does.
      expect(stuck).toBe('answered');
      const write = await store.deletePartition(12345).then(() => 'answered', (e: unknown) => e);
      expect(write).toBeInstanceOf(Error);
      expect((write as Error).message).toMatch(/timeout/i);
      await holder.query('ROLLBACK');
      await store.deletePartition(12345);
    } finally {
      await holder.end();
      await store.close();
    }
  });

  it('a wrong store.url (nothing listening, unknown database) is one clear line with the password masked', async () => {
    const closed = await PgStore.open(`postgresql://ntls:hunter2@127.0.0.1:${server.port + 1}/x`, { connectTimeoutMs: 2000 }).catch((e: unknown) => e);
    expect(closed).toBeInstanceOf(StoreOpenError);
    expect((closed as Error).message).toMatch(/cannot connect/);
    expect((closed as Error).message).not.toContain('hunter2');
    expect((closed as Error).message).not.toContain('\n');
    const missing = await PgStore.open(server.url('no_such_database')).catch((e: unknown) => e);
    expect((missing as Error).message).toMatch(/no_such_database/);
  });
});

describe('two nodes on one PostgreSQL store', () => {
  it('an object made through node 1 is usable through node 2 at its next call', async () => {
    const url = await freshDatabase();
    const { hsm: one, slot } = await readyHsm(home(), { postgres: { url } });
    const two = await openHsm(home(), { postgres: { url } });
    const a = one.application('a');
    const b = two.application('b');
    const sa = await a.C_OpenSession(slot, RW);
    await a.C_Login(sa, CKU.USER, CO_PIN);
    const sb = await b.C_OpenSession(slot, RW);
    await b.C_Login(sb, CKU.USER, CO_PIN);
    const key = await a.C_GenerateKey(sa, mech(CKM.AES_KEY_GEN), [{ type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: true }, { type: CKA.ENCRYPT, value: true }, { type: CKA.DECRYPT, value: true }]);
    await two.device.sync();
    await b.C_EncryptInit(sb, mech(CKM.AES_ECB), key);
    const cipher = await b.C_Encrypt(sb, Buffer.alloc(16, 7));
    await a.C_DecryptInit(sa, mech(CKM.AES_ECB), key);
    expect(await a.C_Decrypt(sa, cipher)).toEqual(Buffer.alloc(16, 7));
    // Destroyed on node 2: gone on node 1 at its next call.
    await b.C_DestroyObject(sb, key);
    await one.device.sync();
    expect(await rv(() => a.C_EncryptInit(sa, mech(CKM.AES_ECB), key))).toBe(CKR.KEY_HANDLE_INVALID);
    // Handles come from blocks: the two nodes never give the same one.
    const k1 = await a.C_GenerateKey(sa, mech(CKM.AES_KEY_GEN), [{ type: CKA.VALUE_LEN, value: 16 }, { type: CKA.TOKEN, value: true }]);
    const k2 = await b.C_GenerateKey(sb, mech(CKM.AES_KEY_GEN), [{ type: CKA.VALUE_LEN, value: 16 }, { type: CKA.TOKEN, value: true }]);
    expect(k1).not.toBe(k2);
    await one.device.sync();
    await a.C_FindObjectsInit(sa, [{ type: CKA.CLASS, value: CKO.SECRET_KEY }]);
    expect((await a.C_FindObjects(sa, 10)).sort()).toEqual([k1, k2].sort());
    await one.shutdown();
    await two.shutdown();
  });

  it('PIN failures are counted across nodes: the lock reached through both holds on both', async () => {
    const url = await freshDatabase();
    const maxFailedLogins = 4;
    const { hsm: one, slot } = await readyHsm(home(), { postgres: { url }, pinPolicy: { maxFailedLogins } });
    const two = await openHsm(home(), { postgres: { url }, pinPolicy: { maxFailedLogins } });
    const a = one.application('a');
    const b = two.application('b');
    const sa = await a.C_OpenSession(slot, RW);
    const sb = await b.C_OpenSession(slot, RW);
    // Two wrong on each node, alternating, each node's view refreshed as the processor does.
    for (const [hsm, app, s] of [[one, a, sa], [two, b, sb], [one, a, sa], [two, b, sb]] as const) {
      await hsm.device.sync();
      expect(await rv(() => app.C_Login(s, CKU.USER, 'wrong-pin-1'))).toBe(CKR.PIN_INCORRECT);
    }
    await one.device.sync();
    await two.device.sync();
    expect(await rv(() => a.C_Login(sa, CKU.USER, CO_PIN))).toBe(CKR.PIN_LOCKED);
    expect(await rv(() => b.C_Login(sb, CKU.USER, CO_PIN))).toBe(CKR.PIN_LOCKED);
    // Without a refresh in between, node 2's view is behind; the stored count still locks.
    await one.shutdown();
    await two.shutdown();
  });

  it('failures counted on a node whose view is behind still add up in the store', async () => {
    const url = await freshDatabase();
    const maxFailedLogins = 3;
    const { hsm: one, slot } = await readyHsm(home(), { postgres: { url }, pinPolicy: { maxFailedLogins } });
    const two = await openHsm(home(), { postgres: { url }, pinPolicy: { maxFailedLogins } });
    const a = one.application('a');
    const b = two.application('b');
    const sa = await a.C_OpenSession(slot, RW);
    const sb = await b.C_OpenSession(slot, RW);
    for (let i = 0; i < maxFailedLogins; i++) expect(await rv(() => a.C_Login(sa, CKU.USER, 'wrong-pin-1'))).toBe(CKR.PIN_INCORRECT);
    // Node 2 has not refreshed: its wrong try finds the stored lock.
    expect(await rv(() => b.C_Login(sb, CKU.USER, 'wrong-pin-1'))).toBe(CKR.PIN_LOCKED);
    await one.shutdown();
    await two.shutdown();
  });

  it('a row written by a node whose view is behind keeps the failure count another node stored', async () => {
    const url = await freshDatabase();
    const { hsm: one, slot } = await readyHsm(home(), { postgres: { url } });
    const two = await openHsm(home(), { postgres: { url } });
    const a = one.application('a');
    const sa = await a.C_OpenSession(slot, RW);
    await a.C_Login(sa, CKU.USER, CO_PIN);
    const b = two.application('b');
    const sb = await b.C_OpenSession(slot, RW);
    expect(await rv(() => b.C_Login(sb, CKU.SO, 'wrong-so-pin'))).toBe(CKR.PIN_INCORRECT);
    // Node 1 has not refreshed: its new CO PIN rewrites the row, not the SO's count.
    await a.C_SetPIN(sa, CO_PIN, 'co-secret-2');
    const database = new URL(url).pathname.slice(1);
    expect(await server.query(database, 'SELECT so_failures, co_failures FROM ntls_partitions')).toEqual([{ so_failures: 1, co_failures: 0 }]);
    await one.device.sync();
    expect(await rv(() => a.C_Logout(sa))).toBe(CKR.OK);
    expect(await rv(() => a.C_Login(sa, CKU.USER, 'co-secret-2'))).toBe(CKR.OK);
    await one.shutdown();
    await two.shutdown();
  });

  it('a partition policy set through node 1 is in force on node 2, kept in its row under the row MAC', async () => {
    const url = await freshDatabase();
    const { hsm: one, slot } = await readyHsm(home(), { postgres: { url } });
    const two = await openHsm(home(), { postgres: { url } });
    const b = two.application('b');
    expect(b.C_GetMechanismInfo(slot, CKM.RSA_PKCS_KEY_PAIR_GEN).minKeySize).toBe(2048);
    expect(await one.device.setPartitionPolicy(slot, { legacyRsa: true })).toEqual({ legacyRsa: true });
    const database = new URL(url).pathname.slice(1);
    expect(await server.query(database, 'SELECT policy FROM ntls_partitions')).toEqual([{ policy: '{"legacyRsa":true}' }]);
    await two.device.sync();
    expect(two.device.partitionPolicy(slot)).toEqual({ legacyRsa: true });
    expect(b.C_GetMechanismInfo(slot, CKM.RSA_PKCS_KEY_PAIR_GEN).minKeySize).toBe(1024);
    await one.shutdown();
    await two.shutdown();
    const again = await openHsm(home(), { postgres: { url } });
    expect(again.device.partitionPolicy(slot)).toEqual({ legacyRsa: true });
    await again.shutdown();
    // The policy is under the MAC: a row whose policy was changed behind ntls's back is not served.
    await server.query(database, 'UPDATE ntls_partitions SET policy = NULL');
    const error = await openHsm(home(), { postgres: { url } }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreOpenError);
    expect((error as StoreOpenError).code).toBe('LUNA_RET_DEVICE_ERROR');
  });

  it('a PIN changed through node 2 drops node 1\'s cached login; a change that keeps the PIN does not', async () => {
    const url = await freshDatabase();
    let kdfRuns = 0;
    const { hsm: one, slot } = await readyHsm(home(), { postgres: { url }, onKdf: () => { kdfRuns++; } });
    const two = await openHsm(home(), { postgres: { url } });
    const a = one.application('a');
    const sa = await a.C_OpenSession(slot, RW);
    await a.C_Login(sa, CKU.USER, CO_PIN);
    await a.C_Logout(sa);
    const id = one.partition(slot).id;
    expect(one.device.logins.holds(id, 'co')).toBe(true);
    // Another node changes the row but not the CO's credential: the cached login stays good.
    await two.device.setPartitionPolicy(slot, { legacyRsa: true });
    await one.device.sync();
    expect(one.device.logins.holds(id, 'co')).toBe(true);
    kdfRuns = 0;
    await a.C_Login(sa, CKU.USER, CO_PIN);
    expect(kdfRuns).toBe(0);
    await a.C_Logout(sa);
    // The CO's PIN changed through node 2: node 1 forgets it, and the old PIN is refused there.
    const b = two.application('b');
    const sb = await b.C_OpenSession(slot, RW);
    await b.C_Login(sb, CKU.USER, CO_PIN);
    await b.C_SetPIN(sb, CO_PIN, 'co-secret-2');
    await one.device.sync();
    expect(one.device.logins.holds(id, 'co')).toBe(false);
    expect(await rv(() => a.C_Login(sa, CKU.USER, CO_PIN))).toBe(CKR.PIN_INCORRECT);
    expect(await rv(() => a.C_Login(sa, CKU.USER, 'co-secret-2'))).toBe(CKR.OK);
    await one.shutdown();
    await two.shutdown();
  });

  it('a partition made or deleted on one node appears or goes on the other', async () => {
    const url = await freshDatabase();
    const { hsm: one } = await readyHsm(home(), { postgres: { url } });
    const two = await openHsm(home(), { postgres: { url } });
    two.device.onPartitionChange((change) => {
      if (change.kind === 'removed') two.model.unmount(change.slot);
      else two.model.mount(change.slot, two.device, change.slot);
    });
    const made = await one.createPartition({ name: 'second', soPin: SO_PIN });
    await two.device.sync();
    expect(two.listPartitions().map((p) => p.name)).toContain('second');
    const b = two.application('b');
    const sb = await b.C_OpenSession(made.slotId, RW);
    await b.C_Login(sb, CKU.SO, SO_PIN);
    await one.deletePartition(made.slotId);
    await two.device.sync();
    expect(two.listPartitions().map((p) => p.name)).not.toContain('second');
    expect(await rv(() => b.C_GetSessionInfo(sb))).toBe(CKR.SESSION_HANDLE_INVALID);
    await one.shutdown();
    await two.shutdown();
  });
});
