// PostgreSQL stopped for 10 s under a sign + create loop, then started again: calls that need the
// store answer CKR_DEVICE_ERROR meanwhile (with the guide's device-error line), signatures with
// keys already loaded go on, the link and its session stay, nothing is half written (every key
// pair is two objects or none), and the service resumes by itself, without restarting ntls.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NtlsClient } from '../../src/client/ntls-client.js';
import { CKA, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import { sleep } from '../support/daemon.js';
import { CO_PIN, initialiseDefault, startCluster, type Cluster } from './support.js';

let cluster: Cluster;
let client: NtlsClient | undefined;

beforeAll(async () => {
  cluster = await startCluster(1);
  await initialiseDefault(cluster, 'n1');
}, 120_000);
afterAll(async () => {
  await client?.close().catch(() => undefined);
  await cluster?.destroy();
});

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');
const ECDSA = { type: CKM.ECDSA_SHA256, parameter: null };

interface Tally { ok: number; deviceError: number; other: number[] }

describe('PostgreSQL stopped for 10 s under load', () => {
  it('device errors meanwhile, no torn object, and the service resumes without a restart', async () => {
    client = cluster.alice.library();
    const p11 = client.server('n1');
    const session = await p11.openSession(0);
    await p11.login(session, CKU.USER, CO_PIN);
    const makePair = (i: number) => p11.generateKeyPair(session, { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
      [{ type: CKA.TOKEN, value: true }, { type: CKA.EC_PARAMS, value: P256 }, { type: CKA.LABEL, value: `pair-${i}` }],
      [{ type: CKA.TOKEN, value: true }, { type: CKA.SIGN, value: true }, { type: CKA.LABEL, value: `pair-${i}` }]);
    const first = await makePair(0);

    const creates: Tally = { ok: 0, deviceError: 0, other: [] };
    const signs: Tally = { ok: 0, deviceError: 0, other: [] };
    const state = { phase: 'before' as 'before' | 'down' | 'after' };
    const createdAfter: number[] = [];
    const errorsAfter: string[] = [];
    let stop = false;
    const loop = (async () => {
      for (let i = 1; !stop && i < 100_000; i++) {
        try {
          await makePair(i);
          creates.ok++;
          if (state.phase === 'after') createdAfter.push(i);
        } catch (error) {
          const rv = (error as { rv?: number }).rv;
          if (rv === CKR.DEVICE_ERROR) creates.deviceError++;
          else creates.other.push(rv ?? -1);
          if (state.phase === 'after') errorsAfter.push(`${(error as Error).message}`);
        }
        try {
          await p11.sign(session, ECDSA, first.privateKey, Buffer.from(`data ${i}`));
          signs.ok++;
        } catch (error) {
          const rv = (error as { rv?: number }).rv;
          if (rv === CKR.DEVICE_ERROR) signs.deviceError++;
          else signs.other.push(rv ?? -1);
        }
        await sleep(50);
      }
    })();

    await sleep(1500);
    const logFrom = cluster.nodes[0]!.log().length;
    await cluster.postgres.stop();
    state.phase = 'down';
    await sleep(10_000);
    await cluster.postgres.start();
    state.phase = 'after';
    // Resumes by itself: a few key pairs made after the start (bounded wait).
    for (let i = 0; i < 600 && createdAfter.length < 3; i++) await sleep(100);
    stop = true;
    await loop;

    const seen = JSON.stringify({ creates, signs, errorsAfter: errorsAfter.slice(-5), log: cluster.nodes[0]!.log().slice(-15) });
    expect(createdAfter.length, seen).toBeGreaterThanOrEqual(3);
    expect(creates.deviceError).toBeGreaterThan(0);
    expect(creates.other).toEqual([]);
    expect(signs.other).toEqual([]);
    // The key was loaded before: signing never needed the database.
    expect(signs.deviceError).toBe(0);
    expect(cluster.nodes[0]!.log().slice(logFrom).some((l) => l.includes('Fail to retrieve container list : LUNA_RET_DEVICE_ERROR'))).toBe(true);
    // Still the same daemon and the same link and session.
    expect(cluster.nodes[0]!.child.exitCode).toBeNull();
    await p11.sign(session, ECDSA, first.privateKey, Buffer.from('after'));

    // No torn object: every label is a public and a private key, or neither.
    const labels = async (objectClass: number) => {
      const handles = await p11.findObjects(session, [{ type: CKA.CLASS, value: objectClass }]);
      const read = await Promise.all(handles.map(async (h) => ((await p11.getAttributeValue(session, h, [CKA.LABEL]))[0] as { value: Buffer }).value.toString()));
      return read.sort();
    };
    const publics = await labels(CKO.PUBLIC_KEY);
    expect(await labels(CKO.PRIVATE_KEY)).toEqual(publics);
    expect(publics.length).toBeGreaterThanOrEqual(1 + createdAfter.length);
    // And the store agrees with the node (a second view: a fresh session after all this).
    const rows = await cluster.postgres.query<{ n: number }>('ntls', 'SELECT count(*)::int AS n FROM ntls_objects');
    expect(rows[0]!.n).toBe(publics.length * 2);
  }, 120_000);
});
