// PostgreSQL may end a connection at any moment (a restart, a fast shutdown, an administrator's
// pg_terminate_backend). When that comes while a connection is checked out of the pool but has no
// query running (between COMMIT's answer and the release, both answers in one read), pg reports it
// as an 'error' event on that connection; with nobody listening, that event ended the daemon
// ("CRASH AND BURN", seen in test/ha/outage.test.ts on a loaded machine). Here the store's backends
// are ended again and again under a write loop: writes fail or succeed, the process goes on, and
// the store works once the ending stops.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CKA, CKM, CKR, CKU } from '../../src/pkcs11/constants.js';
import { CO_PIN, RW, mech, readyHsm, removeHome, tempHome } from '../hsm/support.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';

let server: PostgresServer;
let home: string;
beforeAll(async () => {
  server = await startPostgres();
  home = tempHome();
});
afterAll(async () => {
  await server?.destroy();
  if (home) removeHome(home);
});

const DURATION_MS = 6000;

it('connections ended by the server under a write loop: no uncaught error, and writes work again after', async () => {
  const uncaught: unknown[] = [];
  const onUncaught = (error: unknown) => uncaught.push(error);
  process.on('uncaughtException', onUncaught);
  const url = await server.createDatabase('ended');
  const { hsm, slot } = await readyHsm(home, { postgres: { url } });
  try {
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    const makeKey = (i: number) => app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [
      { type: CKA.VALUE_LEN, value: 16 }, { type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: Buffer.from(`k${i}`) },
    ]);
    const outcomes = new Map<string, number>();
    const until = Date.now() + DURATION_MS;
    let ended = 0;
    const writers = [0, 1, 2].map(async (w) => {
      for (let i = 0; Date.now() < until; i++) {
        const rv = await makeKey(w * 1_000_000 + i).then(() => CKR.OK, (error: unknown) => (error as { rv?: number }).rv ?? -1);
        const name = rv === CKR.OK ? 'ok' : rv === CKR.DEVICE_ERROR ? 'device error' : `other ${rv}`;
        outcomes.set(name, (outcomes.get(name) ?? 0) + 1);
      }
    });
    const ender = (async () => {
      while (Date.now() < until) {
        const rows = await server.query<{ ended: boolean }>('ended', "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name = 'ntls'");
        ended += rows.length;
      }
    })();
    await Promise.all([...writers, ender]);
    expect(uncaught).toEqual([]);
    expect(ended).toBeGreaterThan(0);
    expect([...outcomes.keys()].filter((k) => k !== 'ok' && k !== 'device error'), JSON.stringify(Object.fromEntries(outcomes))).toEqual([]);
    // Once the ending stops, the next write works (the pool made new connections).
    await expect(makeKey(-1)).resolves.toBeDefined();
  } finally {
    process.off('uncaughtException', onUncaught);
    await hsm.shutdown();
  }
}, 60_000);
