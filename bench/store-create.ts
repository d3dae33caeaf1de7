// Added latency of the PostgreSQL store on key creation: the same in-process software HSM on
// the home's SQLite file and on a private PostgreSQL 15 (test/support/postgres.ts, loopback,
// synchronous_commit on), alternating rounds so a shared machine's load skews both alike. Each
// creation is a C_GenerateKey (AES-256) or C_GenerateKeyPair (P-256) of token objects, awaited
// until its write is durable; the figures are means per creation and the PostgreSQL/SQLite ratio.
// PostgreSQL is also measured as a second node sees it: the one-query refresh before each call.
//
//   npm run bench:store

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { SoftwareHsm, type HsmOptions } from '../src/hsm/index.js';
import { singlePartMechanisms, softwareMechanisms } from '../src/hsm/mechanisms/index.js';
import { CKA, CKF, CKM, CKU } from '../src/pkcs11/constants.js';
import { TokenModel } from '../src/token/index.js';
import { startPostgres } from '../test/support/postgres.js';

const ROUNDS = 3;
const PER_ROUND = 150;
const SO_PIN = 'so-secret-1';
const CO_PIN = 'co-secret-1';
const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

interface Rig {
  hsm: SoftwareHsm;
  create(kind: 'aes' | 'ec'): Promise<void>;
  close(): Promise<void>;
}

async function rig(options: Partial<HsmOptions>): Promise<Rig> {
  const home = mkdtempSync(join(tmpdir(), 'ntls-bench-store-'));
  const hsm = await SoftwareHsm.open({ home, mechanisms: softwareMechanisms, singlePartMechanisms, kdf: { cost: 1 << 10 }, ...options });
  const model = new TokenModel(hsm.libraryInfo);
  model.mountAll(hsm);
  const made = await hsm.createPartition({ name: `bench-${Date.now()}`, soPin: SO_PIN });
  model.mount(made.slot, hsm, made.slot);
  const app = model.application('bench');
  const rw = CKF.SERIAL_SESSION | CKF.RW_SESSION;
  const so = await app.C_OpenSession(made.slot, rw);
  await app.C_Login(so, CKU.SO, SO_PIN);
  await app.C_InitPIN(so, CO_PIN);
  await app.C_Logout(so);
  const s = await app.C_OpenSession(made.slot, rw);
  await app.C_Login(s, CKU.USER, CO_PIN);
  return {
    hsm,
    async create(kind) {
      if (kind === 'aes') {
        await app.C_GenerateKey(s, { type: CKM.AES_KEY_GEN, parameter: null }, [{ type: CKA.VALUE_LEN, value: 32 }, { type: CKA.TOKEN, value: true }]);
      } else {
        await app.C_GenerateKeyPair(s, { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
          [{ type: CKA.TOKEN, value: true }, { type: CKA.EC_PARAMS, value: P256 }], [{ type: CKA.TOKEN, value: true }, { type: CKA.SIGN, value: true }]);
      }
    },
    async close() {
      model.close();
      await hsm.shutdown();
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Mean milliseconds per creation over `count`, `before` run ahead of each (the node's refresh). */
async function timed(r: Rig, kind: 'aes' | 'ec', count: number, before?: () => Promise<void>): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    await before?.();
    await r.create(kind);
  }
  return (performance.now() - start) / count;
}

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;

async function main(): Promise<void> {
  const postgres = await startPostgres();
  try {
    const url = await postgres.createDatabase('bench');
    const sqlite = await rig({});
    const pg = await rig({ postgres: { url, poolSize: 4 } });
    const rows = [];
    for (const kind of ['aes', 'ec'] as const) {
      for (let i = 0; i < 20; i++) {
        await sqlite.create(kind);
        await pg.create(kind);
      }
      const figures = { sqlite: [] as number[], postgres: [] as number[], postgresWithRefresh: [] as number[] };
      for (let round = 0; round < ROUNDS; round++) {
        figures.sqlite.push(await timed(sqlite, kind, PER_ROUND));
        figures.postgres.push(await timed(pg, kind, PER_ROUND));
        figures.postgresWithRefresh.push(await timed(pg, kind, PER_ROUND, () => pg.hsm.sync()));
      }
      const row = {
        creation: kind === 'aes' ? 'C_GenerateKey AES-256 (1 token object)' : 'C_GenerateKeyPair P-256 (2 token objects, one transaction)',
        sqliteMs: Number(mean(figures.sqlite).toFixed(3)),
        postgresMs: Number(mean(figures.postgres).toFixed(3)),
        postgresWithRefreshMs: Number(mean(figures.postgresWithRefresh).toFixed(3)),
        addedMs: Number((mean(figures.postgres) - mean(figures.sqlite)).toFixed(3)),
        ratio: Number((mean(figures.postgres) / mean(figures.sqlite)).toFixed(2)),
        ratioWithRefresh: Number((mean(figures.postgresWithRefresh) / mean(figures.sqlite)).toFixed(2)),
        rounds: figures,
      };
      rows.push(row);
      process.stdout.write(`${row.creation}: SQLite ${row.sqliteMs} ms, PostgreSQL ${row.postgresMs} ms (${row.ratio}x), with the per-call refresh ${row.postgresWithRefreshMs} ms (${row.ratioWithRefresh}x)\n`);
    }
    await sqlite.close();
    await pg.close();
    const result = {
      benchmark: 'store-create',
      command: 'npm run bench:store',
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      rounds: ROUNDS,
      creationsPerRound: PER_ROUND,
      systems: {
        sqlite: 'SoftwareHsm on the home\'s SQLite file (WAL, synchronous=FULL), in process',
        postgres: 'SoftwareHsm on PostgreSQL 15 (Debian), private cluster on 127.0.0.1, fsync and synchronous_commit on, pool of 4, in process',
      },
      notes: ['Means per creation, rounds alternating between the stores on a shared 2-core machine; compare the ratios, not the absolute times.'],
      rows,
    };
    mkdirSync(join('bench', 'results'), { recursive: true });
    writeFileSync(join('bench', 'results', 'store-create.json'), JSON.stringify(result, null, 2) + '\n');
  } finally {
    await postgres.destroy();
  }
}

await main();
