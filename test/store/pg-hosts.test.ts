// store.url with several hosts (libpq's form, target_session_attrs=read-write): a host that is
// down or a read-only standby is passed over, and a primary switch (the primary stopped, its
// streaming-replication standby promoted) is followed without restarting the node.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHosts } from '../../src/store/pg-hosts.js';
import { CKA, CKM, CKR, CKU } from '../../src/pkcs11/constants.js';
import { CO_PIN, RW, mech, readyHsm, removeHome, rv, tempHome } from '../hsm/support.js';
import { sleep } from '../support/daemon.js';
import { startPostgres, startStandby, type PostgresServer, type StandbyServer } from '../support/postgres.js';

let primary: PostgresServer;
let standby: StandbyServer;
const homes: string[] = [];

beforeAll(async () => {
  primary = await startPostgres();
  await primary.createDatabase('ntls');
  standby = await startStandby(primary);
}, 120_000);
afterAll(async () => {
  await standby?.destroy();
  await primary?.destroy();
  for (const home of homes) removeHome(home);
});

describe('several hosts in store.url', () => {
  it('are split as libpq lists them', () => {
    expect(parseHosts('postgresql://u@a:1,b:2/db?target_session_attrs=read-write&sslmode=disable')).toEqual({
      urls: ['postgresql://u@a:1/db?sslmode=disable', 'postgresql://u@b:2/db?sslmode=disable'], readWrite: true,
    });
    expect(parseHosts('postgresql://u@a:1/db')).toEqual({ urls: ['postgresql://u@a:1/db'], readWrite: false });
  });

  it('a read-only standby first in the list is passed over; a primary switch is followed', async () => {
    const url = `postgresql://ntls@127.0.0.1:${standby.port},127.0.0.1:${primary.port}/ntls?target_session_attrs=read-write`;
    const home = tempHome();
    homes.push(home);
    const { hsm, slot } = await readyHsm(home, { postgres: { url, poolSize: 2 } });
    const app = hsm.application('a');
    const s = await app.C_OpenSession(slot, RW);
    await app.C_Login(s, CKU.USER, CO_PIN);
    const key = (label: string) => app.C_GenerateKey(s, mech(CKM.AES_KEY_GEN), [{ type: CKA.VALUE_LEN, value: 16 }, { type: CKA.TOKEN, value: true }, { type: CKA.LABEL, value: Buffer.from(label) }]);
    await key('before');
    // The standby has it too (streaming replication; bounded wait). Until it has replayed the
    // schema, the table is not there yet: that is "not yet" too.
    for (let i = 0; i < 100; i++) {
      const rows = await standby.query<{ n: number }>('ntls', 'SELECT count(*)::int AS n FROM ntls_objects').catch(() => [{ n: 0 }]);
      if (rows[0]!.n === 1) break;
      await sleep(100);
    }
    await primary.stop();
    await standby.promote();
    // Device errors while the pool finds the new primary, then creation works again.
    let made = false;
    const failures: number[] = [];
    for (let i = 0; i < 50 && !made; i++) {
      const code = await rv(() => key('after'));
      if (code === CKR.OK) made = true;
      else {
        failures.push(code);
        await sleep(200);
      }
    }
    expect(made).toBe(true);
    expect(failures.every((code) => code === CKR.DEVICE_ERROR)).toBe(true);
    await app.C_FindObjectsInit(s, []);
    expect(await app.C_FindObjects(s, 10)).toHaveLength(2);
    expect((await standby.query<{ n: number }>('ntls', 'SELECT count(*)::int AS n FROM ntls_objects'))[0]!.n).toBe(2);
    await hsm.shutdown();
  });
});
