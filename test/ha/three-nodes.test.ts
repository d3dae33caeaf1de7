// Three ntls nodes on one PostgreSQL store: a key made through any node signs through the two
// others on their very next call; a wrong PIN through each node counts toward one lock.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NtlsClient } from '../../src/client/ntls-client.js';
import { CKA, CKM, CKR, CKU } from '../../src/pkcs11/constants.js';
import { CO_PIN, initialiseDefault, startCluster, type Cluster } from './support.js';

let cluster: Cluster;
let client: NtlsClient | undefined;

beforeAll(async () => {
  cluster = await startCluster(3, { maxFailedLogins: 3 });
  await initialiseDefault(cluster, 'n2');
}, 180_000);
afterAll(async () => {
  await client?.close().catch(() => undefined);
  await cluster?.destroy();
});

const P256 = Buffer.from('06082a8648ce3d030107', 'hex');

describe('three nodes on one PostgreSQL store', () => {
  it('a key pair made through each node signs through the two others at once', async () => {
    client = cluster.alice.library();
    const nodes = ['n1', 'n2', 'n3'].map((name) => client!.server(name));
    const sessions: number[] = [];
    for (const p11 of nodes) {
      const s = await p11.openSession(0);
      await p11.login(s, CKU.USER, CO_PIN);
      sessions.push(s);
    }
    for (let maker = 0; maker < 3; maker++) {
      const pair = await nodes[maker]!.generateKeyPair(sessions[maker]!, { type: CKM.EC_KEY_PAIR_GEN, parameter: null },
        [{ type: CKA.TOKEN, value: true }, { type: CKA.EC_PARAMS, value: P256 }, { type: CKA.VERIFY, value: true }],
        [{ type: CKA.TOKEN, value: true }, { type: CKA.SIGN, value: true }]);
      for (let other = 0; other < 3; other++) {
        if (other === maker) continue;
        const data = Buffer.from(`made on ${maker}, signed on ${other}`);
        const signature = await nodes[other]!.sign(sessions[other]!, { type: CKM.ECDSA_SHA256, parameter: null }, pair.privateKey, data);
        // Verified through the third node.
        const third = 3 - maker - other;
        expect(await nodes[third]!.verify(sessions[third]!, { type: CKM.ECDSA_SHA256, parameter: null }, pair.publicKey, data, signature)).toBe(true);
      }
    }
    for (const [i, p11] of nodes.entries()) await p11.logout(sessions[i]!);
  });

  it('one wrong PIN through each node locks the role on all three', async () => {
    const nodes = ['n1', 'n2', 'n3'].map((name) => client!.server(name));
    const sessions = await Promise.all(nodes.map((p11) => p11.openSession(0)));
    const login = (i: number, pin: string) => nodes[i]!.login(sessions[i]!, CKU.USER, pin).then(() => CKR.OK, (e: { rv: number }) => e.rv);
    for (let i = 0; i < 3; i++) expect(await login(i, 'wrong-pin-9')).toBe(CKR.PIN_INCORRECT);
    for (let i = 0; i < 3; i++) expect(await login(i, CO_PIN)).toBe(CKR.PIN_LOCKED);
  });
});
