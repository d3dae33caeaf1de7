// The set-up of docs/ha.md ("Set up from zero", steps 2 and 3) done for real: shared verify location, store.backend and store.url.
// Two ntls nodes, one service: real daemons on one private PostgreSQL store, with the client
// registry folder shared. A key made through node 1 signs through node 2 at once; partitions made
// or deleted through one node are so on the other; a client registered or deleted once is so on
// both; PIN failures count across nodes.

import { verify as nodeVerify, createPublicKey } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NtlsClient } from '../../src/client/ntls-client.js';
import { CKA, CKK, CKM, CKO, CKR, CKU } from '../../src/pkcs11/constants.js';
import { expectOk } from '../client/support.js';
import { runNtls, sleep } from '../support/daemon.js';
import { CO_PIN, initialiseDefault, SO_PIN, startCluster, type Cluster } from './support.js';

let cluster: Cluster;
const clients: NtlsClient[] = [];

beforeAll(async () => {
  cluster = await startCluster(2, { maxFailedLogins: 3 });
  await initialiseDefault(cluster, 'n1');
}, 120_000);
afterAll(async () => {
  for (const client of clients) await client.close().catch(() => undefined);
  await cluster?.destroy();
});

function library(): NtlsClient {
  const client = cluster.alice.library();
  clients.push(client);
  return client;
}

async function partitionNames(node: number): Promise<string[]> {
  const listed = expectOk(await runNtls(['partition', 'list', '--json', '--home', cluster.homes[node]!]));
  return (JSON.parse(listed.stdout) as Array<{ name: string }>).map((p) => p.name);
}

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

describe('two nodes on one PostgreSQL store', () => {
  it('a key pair made through node 1 signs through node 2 at once, and the signature verifies', async () => {
    const client = library();
    const n1 = client.server('n1');
    const n2 = client.server('n2');
    const s1 = await n1.openSession(0);
    await n1.login(s1, CKU.USER, CO_PIN);
    const s2 = await n2.openSession(0);
    await n2.login(s2, CKU.USER, CO_PIN);
    for (let round = 0; round < 5; round++) {
      const pair = await n1.generateKeyPair(s1, { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
        [{ type: CKA.TOKEN, value: true }, { type: CKA.EC_PARAMS, value: P256 }, { type: CKA.VERIFY, value: true }],
        [{ type: CKA.TOKEN, value: true }, { type: CKA.SIGN, value: true }, { type: CKA.LABEL, value: `ha-${round}` }]);
      // No wait: the very next call, on the other node.
      const data = Buffer.from(`round ${round}`);
      const signature = await n2.sign(s2, { type: CKM.ECDSA_SHA256, parameter: null }, pair.privateKey, data);
      const point = (await n1.getAttributeValue(s1, pair.publicKey, [CKA.EC_POINT]))[0] as { value: Buffer };
      const raw = point.value.subarray(2);
      const spki = Buffer.concat([Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex'), raw]);
      const publicKey = createPublicKey({ key: spki, format: 'der', type: 'spki' });
      expect(nodeVerify('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
    }
    const found = await n2.findObjects(s2, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }, { type: CKA.KEY_TYPE, value: CKK.EC }]);
    expect(found).toHaveLength(5);
  });

  it('a partition made through node 1 is listed by node 2; deleted through node 2, it is gone on node 1', async () => {
    expectOk(await runNtls(['partition', 'create', '--name', 'second', '--so-pin', SO_PIN, '--home', cluster.homes[0]!]));
    expect(await partitionNames(1)).toContain('second');
    expectOk(await runNtls(['partition', 'delete', '--partition', 'second', '--force', '--home', cluster.homes[1]!]));
    expect(await partitionNames(0)).not.toContain('second');
  });

  it('a client registered once (through node 1) connects to node 2; deleted through node 2, node 1 refuses it', async () => {
    const client = library();
    expect(await client.server('n2').getSlotList()).toEqual([0]);
    expectOk(await runNtls(['client', 'delete', '-c', 'alice', '--force', '--home', cluster.homes[1]!]));
    // Each node's monitor sees the shared folder change (bounded wait).
    let refused = false;
    for (let i = 0; i < 50 && !refused; i++) {
      const fresh = library();
      refused = await fresh.server('n1').getSlotList().then(() => false, () => true);
      await fresh.close().catch(() => undefined);
      if (!refused) await sleep(200);
    }
    expect(refused).toBe(true);
    expectOk(await runNtls(['client', 'register', '-c', 'alice', '--cert', cluster.alice.certificateFile, '--hostname', '127.0.0.1', '--home', cluster.homes[1]!]));
    expectOk(await runNtls(['client', 'assign-partition', '-c', 'alice', '-p', 'default', '--home', cluster.homes[1]!]));
  });

  it('PIN failures count across nodes: wrong PINs through both lock the role on both', async () => {
    let slots: number[] = [];
    for (let i = 0; i < 50 && slots.length === 0; i++) {
      const probe = library();
      slots = await probe.server('n1').getSlotList().catch(() => []);
      if (slots.length === 0) await sleep(200);
    }
    const client = library();
    const n1 = client.server('n1');
    const n2 = client.server('n2');
    const s1 = await n1.openSession(0);
    const s2 = await n2.openSession(0);
    const wrong = async (p11: typeof n1, s: number) => p11.login(s, CKU.SO, 'wrong-so-pin').then(() => CKR.OK, (e: { rv: number }) => e.rv);
    expect(await wrong(n1, s1)).toBe(CKR.PIN_INCORRECT);
    expect(await wrong(n2, s2)).toBe(CKR.PIN_INCORRECT);
    expect(await wrong(n1, s1)).toBe(CKR.PIN_INCORRECT);
    // Three in all (hsm.maxFailedLogins 3): the right PIN is refused on both nodes now.
    for (const [p11, s] of [[n1, s1], [n2, s2]] as const) {
      expect(await p11.login(s, CKU.SO, SO_PIN).then(() => CKR.OK, (e: { rv: number }) => e.rv)).toBe(CKR.PIN_LOCKED);
    }
  });
});
