// docs/ha.md, step 4 (an existing single-node home moves its store into PostgreSQL), done for real.
// `ntls store migrate`: a home's SQLite store into PostgreSQL and back, through the real CLI,
// all or nothing; the keys work afterwards with the same PINs.

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storePath } from '../../src/store/hsm-store.js';
import { CKA, CKM, CKU } from '../../src/pkcs11/constants.js';
import { runNtls } from '../support/daemon.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';
import { CO_PIN, RW, mech, openHsm, readyHsm, removeHome, tempHome } from '../hsm/support.js';

let server: PostgresServer;
const homes: string[] = [];

beforeAll(async () => { server = await startPostgres(); }, 120_000);
afterAll(async () => {
  await server?.destroy();
  for (const home of homes) removeHome(home);
});

function home(): string {
  const made = tempHome();
  homes.push(made);
  return made;
}

/** A home whose SQLite store holds a partition with `count` token keys labelled k0... */
async function filledHome(count: number): Promise<string> {
  const dir = home();
  writeFileSync(join(dir, 'ntls.json'), '{}\n');
  const { hsm, slot } = await readyHsm(dir);
  const app = hsm.application('a');
  const s = await app.C_OpenSession(slot, RW);
  await app.C_Login(s, CKU.USER, CO_PIN);
  for (let i = 0; i < count; i++) {
    await app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [{ type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: true },
      { type: CKA.ENCRYPT, value: true }, { type: CKA.LABEL, value: Buffer.from(`k${i}`) }]);
  }
  hsm.close();
  return dir;
}

/** The labels of the token keys a CO login finds, through an HSM opened with these options. */
async function labels(dir: string, options: Parameters<typeof openHsm>[1] = {}): Promise<string[]> {
  const hsm = await openHsm(dir, options);
  try {
    const app = hsm.application('check');
    const s = await app.C_OpenSession(0, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    await app.C_FindObjectsInit(s, []);
    const found = await app.C_FindObjects(s, 1000);
    const read = await Promise.all(found.map(async (h) => ((await app.C_GetAttributeValue(s, h, [{ type: CKA.LABEL }])).attributes[0]!.value as Buffer).toString()));
    return read.sort();
  } finally {
    await hsm.shutdown();
  }
}

describe('ntls store migrate', () => {
  it('moves a SQLite store into PostgreSQL and back; keys and PINs work on each side', async () => {
    const dir = await filledHome(70);
    const expected = Array.from({ length: 70 }, (_, i) => `k${i}`).sort();
    const url = await server.createDatabase('migrate_ok');
    const moved = await runNtls(['store', 'migrate', '--to', 'postgres', '--url', url, '--home', dir, '--json']);
    expect(moved.status, moved.stderr).toBe(0);
    expect(JSON.parse(moved.stdout)).toMatchObject({ partitions: 1, objects: 70 });
    const config = JSON.parse(readFileSync(join(dir, 'ntls.json'), 'utf8')) as { store: { backend: string; url: string } };
    expect(config.store).toEqual({ backend: 'postgres', url });
    expect(await labels(dir, { postgres: { url } })).toEqual(expected);

    // And back: the old file moved away first (the command refuses to overwrite one).
    const refused = await runNtls(['store', 'migrate', '--to', 'sqlite', '--home', dir]);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/exists; move it away first/);
    renameSync(storePath(dir), `${storePath(dir)}.old`);
    const back = await runNtls(['store', 'migrate', '--to', 'sqlite', '--home', dir]);
    expect(back.status, back.stderr).toBe(0);
    expect(existsSync(storePath(dir))).toBe(true);
    expect(await labels(dir)).toEqual(expected);
  });

  it('all or nothing: into a database that already holds partitions nothing is added, the configuration unchanged', async () => {
    const dir = await filledHome(3);
    const url = await server.createDatabase('migrate_busy');
    const other = await readyHsm(home(), { postgres: { url } });
    await other.hsm.shutdown();
    const before = await server.query('migrate_busy', 'SELECT (SELECT count(*) FROM ntls_partitions)::int AS p, (SELECT count(*) FROM ntls_objects)::int AS o');
    const configBefore = readFileSync(join(dir, 'ntls.json'), 'utf8');
    const result = await runNtls(['store', 'migrate', '--to', 'postgres', '--url', url, '--home', dir]);
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/already holds 1 partition.*nothing was moved/);
    expect(await server.query('migrate_busy', 'SELECT (SELECT count(*) FROM ntls_partitions)::int AS p, (SELECT count(*) FROM ntls_objects)::int AS o')).toEqual(before);
    expect(readFileSync(join(dir, 'ntls.json'), 'utf8')).toBe(configBefore);
  });
});
