// The client commands of docs/ha.md and docs/client.md (HA groups: create, add-member, set, show) run for real here.
// HA groups over two real daemons, apart from failover under a loop (ha-failover.test.ts):
// least-busy distribution, the virtual slot and the members' own slots (HA-only), a multi-part
// operation whose member is lost, and members refused for a certificate other than the one
// added or for a partition they do not expose.
import { createHash, verify as verifySignature } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/certificates/self-signed.js';
import { clientLogFile } from '../../src/client/client-log.js';
import { CKA, CKF, CKO, CKR, Pkcs11Error, CKM } from '../../src/pkcs11/constants.js';
import { encryptionFor } from '../../src/client/cipher.js';
import type { NtlsClient } from '../../src/client/ntls-client.js';
import { sleep } from '../support/daemon.js';
import { AES_LABEL, ECDSA_SHA256, GROUP, KEY_LABEL, setUpGroup, type HaSetup } from './ha-support.js';
import { CO_PIN, expectOk, expectOneLineFailure } from './support.js';

let s: HaSetup;

beforeAll(async () => {
  s = await setUpGroup({ recoveryInterval: 1 });
}, 120_000);
afterAll(async () => {
  await s?.cleanup();
});

/** A session on the group's virtual slot, logged in, and the private key it holds. */
async function loggedInOnGroup(client: NtlsClient) {
  const p11 = client.group(GROUP);
  const session = await p11.openSession(0, CKF.SERIAL_SESSION | CKF.RW_SESSION);
  await p11.login(session, 1, CO_PIN);
  const [handle] = await p11.findObjects(session, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }]);
  return { p11, session, handle };
}

function rvOf(error: unknown): number | null {
  return error instanceof Pkcs11Error ? error.rv : null;
}

describe('HA group', () => {
  it('spreads concurrent signatures over both members (least busy first)', async () => {
    const client = s.alice.library();
    try {
      const tokens = await Promise.all(Array.from({ length: 6 }, () => client.openToken({ group: GROUP, pin: CO_PIN })));
      const handle = await tokens[0]!.findKey(KEY_LABEL, [CKO.PRIVATE_KEY]);
      const before = client.groupStatus(GROUP).members.map((m) => m.calls);
      await Promise.all(tokens.map(async (token) => {
        for (let i = 0; i < 20; i++) await token.remote.sign(token.session, ECDSA_SHA256, handle, Buffer.from(`m${i}`));
      }));
      const after = client.groupStatus(GROUP).members.map((m) => m.calls);
      const taken = after.map((n, i) => n - before[i]!);
      const total = taken[0]! + taken[1]!;
      // Each signature is C_SignInit + C_Sign: 240 calls, spread over both. How evenly depends on
      // how fast each member answers on a shared machine (the choice itself: ha-units.test.ts).
      expect(total).toBeGreaterThanOrEqual(240);
      expect(Math.min(...taken) / total).toBeGreaterThan(0.1);
      for (const token of tokens) await token.close();
    } finally {
      await client.close();
    }
  }, 60_000);

  it('an init and its operation sent together (one round trip): the init\'s failure is the init\'s, a bad signature is false', async () => {
    const client = s.alice.library();
    try {
      const p11 = client.group(GROUP);
      const token = await client.openToken({ group: GROUP, pin: CO_PIN });
      const key = await token.findKey(KEY_LABEL, [CKO.PRIVATE_KEY]);
      const publicKey = await token.findKey(KEY_LABEL, [CKO.PUBLIC_KEY]);
      const failed = await p11.sign(token.session, ECDSA_SHA256, 0x7ffffff0, Buffer.from('x')).then(() => null, (error: unknown) => error);
      expect(rvOf(failed)).toBe(CKR.KEY_HANDLE_INVALID);
      const signature = await p11.sign(token.session, ECDSA_SHA256, key, Buffer.from('x'));
      expect(await p11.verify(token.session, ECDSA_SHA256, publicKey, Buffer.from('x'), signature)).toBe(true);
      expect(await p11.verify(token.session, ECDSA_SHA256, publicKey, Buffer.from('y'), signature)).toBe(false);
      await token.close();
    } finally {
      await client.close();
    }
  });

  it('a private key\'s handle found before C_Logout signs on either member after a new login (members keep handles for the HA client)', async () => {
    const client = s.alice.library();
    try {
      const { p11, session, handle } = await loggedInOnGroup(client);
      await p11.sign(session, ECDSA_SHA256, handle!, Buffer.from('before'));
      await p11.logout(session);
      await p11.login(session, 1, CO_PIN);
      expect(await p11.findObjects(session, [{ type: CKA.CLASS, value: CKO.PRIVATE_KEY }])).toEqual([handle]);
      const before = client.groupStatus(GROUP).members.map((m) => m.calls);
      const sessions = [session, ...await Promise.all(Array.from({ length: 5 }, () => p11.openSession(0, CKF.SERIAL_SESSION | CKF.RW_SESSION)))];
      await Promise.all(sessions.map(async (each, n) => {
        for (let i = 0; i < 10; i++) await p11.sign(each, ECDSA_SHA256, handle!, Buffer.from(`after ${n} ${i}`));
      }));
      const taken = client.groupStatus(GROUP).members.map((m, i) => m.calls - before[i]!);
      expect(Math.min(...taken), 'both members signed').toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('shows one virtual slot per group, and the members\' own slots unless HA-only', async () => {
    let client = s.alice.library();
    try {
      const group = client.group(GROUP);
      expect(await group.getSlotList()).toEqual([0, 1, 2]);
      expect((await group.getSlotInfo(0)).slotDescription.trim()).toBe(`HA group ${GROUP}`);
      const infos = await Promise.all([0, 1, 2].map((slot) => group.getTokenInfo(slot)));
      expect(new Set(infos.map((i) => i.serialNumber)).size).toBe(1);
      expect(infos.every((i) => i.label.trim() === 'default')).toBe(true);
    } finally {
      await client.close();
    }
    expectOk(await s.alice.run('ha', 'set', '--group', GROUP, '--ha-only', 'on'));
    client = s.alice.library();
    try {
      expect(await client.group(GROUP).getSlotList()).toEqual([0]);
    } finally {
      await client.close();
      expectOk(await s.alice.run('ha', 'set', '--group', GROUP, '--ha-only', 'off'));
    }
  });

  it('C_SessionCancel ends the operation on the group and on the member that ran it', async () => {
    const client = s.alice.library();
    try {
      const { p11, session, handle } = await loggedInOnGroup(client);
      // Inits turn among the members: a member that still ran a cancelled operation would answer
      // the next init there CKR_OPERATION_ACTIVE.
      for (let i = 0; i < 4; i++) {
        await p11.signInit(session, ECDSA_SHA256, handle!);
        await p11.signUpdate(session, Buffer.from('part one'));
        await p11.sessionCancel(session, CKF.SIGN | CKF.DECRYPT);
        expect(rvOf(await p11.signFinal(session).then(() => null, (error: unknown) => error))).toBe(CKR.OPERATION_NOT_INITIALIZED);
      }
      await p11.signInit(session, ECDSA_SHA256, handle!);
      await p11.signUpdate(session, Buffer.from('part one'));
      expect((await p11.signFinal(session)).length).toBe(64);
      await p11.closeSession(session);
    } finally {
      await client.close();
    }
  });

  it('a multi-part operation whose member is lost ends with CKR_DEVICE_ERROR; the session goes on elsewhere', async () => {
    const client = s.alice.library();
    try {
      const { p11, session, handle } = await loggedInOnGroup(client);
      const before = client.groupStatus(GROUP).members.map((m) => m.calls);
      await p11.signInit(session, ECDSA_SHA256, handle!);
      const after = client.groupStatus(GROUP).members.map((m) => m.calls);
      const owner = after[0]! > before[0]! ? 0 : 1;
      await p11.signUpdate(session, Buffer.from('part one'));
      await s.nodes[owner].kill();
      const final = await p11.signFinal(session).then(() => null, (error: unknown) => error);
      expect(rvOf(final)).toBe(CKR.DEVICE_ERROR);
      // A single-part signature on the same session: the other member, logged in again, no error.
      const digest = createHash('sha256').update('after').digest();
      expect((await p11.sign(session, { type: 0x1041 /* CKM_ECDSA */, parameter: null }, handle!, digest)).length).toBe(64);
      await p11.closeSession(session);
      await s.nodes[owner].restart();
    } finally {
      await client.close();
    }
  }, 60_000);

  it('a single-part operation whose member is lost after its init is made on the other member: no error, right output', async () => {
    const client = s.alice.library();
    try {
      const p11 = client.group(GROUP);
      const token = await client.openToken({ group: GROUP, pin: CO_PIN });
      const session = token.session;
      const signKey = await token.findKey(KEY_LABEL, [CKO.PRIVATE_KEY]);
      const verifyKey = await token.findKey(KEY_LABEL, [CKO.PUBLIC_KEY]);
      const aes = await token.findKey(AES_LABEL, [CKO.SECRET_KEY]);
      const publicKey = await token.publicKey(KEY_LABEL);
      const cbc = encryptionFor('aes-cbc-pad').mechanism;
      const data = Buffer.from('single-part, failed over');
      const ciphertext = await p11.encrypt(session, cbc, aes, data);
      const signature = await p11.sign(session, ECDSA_SHA256, signKey, data);
      const kinds: Array<[string, (init: boolean) => Promise<unknown>]> = [
        ['sign', (init) => (init ? p11.signInit(session, ECDSA_SHA256, signKey) : signOnly(client, session, data))],
        ['verify', (init) => (init ? p11.verifyInit(session, ECDSA_SHA256, verifyKey) : client.group(GROUP).connection.call('C_Verify', { session, data, signature }))],
        ['encrypt', (init) => (init ? p11.encryptInit(session, cbc, aes) : client.group(GROUP).connection.call('C_Encrypt', { session, data, encryptedData: { query: false, capacity: 4096 } }))],
        ['decrypt', (init) => (init ? p11.decryptInit(session, cbc, aes) : client.group(GROUP).connection.call('C_Decrypt', { session, encryptedData: ciphertext, data: { query: false, capacity: 4096 } }))],
        ['digest', (init) => (init ? p11.digestInit(session, { type: CKM.SHA256, parameter: null }) : client.group(GROUP).connection.call('C_Digest', { session, data, digest: { query: false, capacity: 64 } }))],
      ];
      for (const [kind, step] of kinds) {
        const before = client.groupStatus(GROUP).members.map((m) => m.calls);
        await step(true);
        const after = client.groupStatus(GROUP).members.map((m) => m.calls);
        const owner = after[0]! > before[0]! ? 0 : 1;
        await s.nodes[owner].kill();
        const answer = await step(false) as Record<string, unknown>;
        if (kind === 'sign') expect(verifySignature('sha256', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, answer.signature as Buffer)).toBe(true);
        if (kind === 'encrypt') expect(answer.encryptedData).toEqual(ciphertext);
        if (kind === 'decrypt') expect(answer.data).toEqual(data);
        if (kind === 'digest') expect(answer.digest).toEqual(createHash('sha256').update(data).digest());
        await s.nodes[owner].restart();
        for (let i = 0; i < 300 && client.groupStatus(GROUP).members[owner]!.state !== 'up'; i++) await sleep(50);
        expect(client.groupStatus(GROUP).members[owner]!.state, kind).toBe('up');
      }
      // Random: the member lost under it, the bytes come from the other one.
      await s.nodes[1].kill();
      for (let i = 0; i < 4; i++) expect((await p11.generateRandom(session, 32)).length).toBe(32);
      await s.nodes[1].restart();
      await token.close();
    } finally {
      await client.close();
    }
  }, 120_000);

  it('refuses as a member a server presenting another certificate than the one added: one line, client.json unchanged', async () => {
    const impostor = await createSelfSignedCertificate({ commonName: 'impostor', keyType: 'ecdsa-p256', usage: 'server', dnsNames: ['impostor'] });
    const pem = join(s.alice.folder, 'impostor.pem');
    writeFileSync(pem, impostor.certificatePem);
    expectOk(await s.alice.run('add-server', '--name', 'impostor', '--host', '127.0.0.1', '--port', String(s.nodes[1].port), '--cert', pem));
    const configFile = join(s.alice.folder, 'client.json');
    const before = readFileSync(configFile);
    const line = expectOneLineFailure(await s.alice.run('ha', 'add-member', '--group', GROUP, '--server', 'impostor'), 'NTLS_ERR_HA_MEMBER_REFUSED');
    expect(line).toContain('presented a certificate other than the one added for it');
    expect(line).toContain('--replace');
    expect(readFileSync(configFile)).toEqual(before);

    // Recorded in client.json by hand (or the server's certificate changed since): refused at
    // start, logged, and the group works on the other member.
    const config = JSON.parse(before.toString('utf8')) as { haGroups: Array<{ name: string; members: string[] }> };
    config.haGroups.push({ ...config.haGroups[0]!, name: 'g2', members: ['node1', 'impostor'] });
    writeFileSync(configFile, JSON.stringify(config, null, 2));
    const client = s.alice.library();
    try {
      const token = await client.openToken({ group: 'g2', pin: CO_PIN });
      const signature = await token.sign(KEY_LABEL, Buffer.from('x'), ECDSA_SHA256);
      expect(signature.length).toBe(64);
      const member = client.groupStatus('g2').members.find((m) => m.name === 'impostor')!;
      expect(member.state).toBe('refused');
      expect(member.lastError?.code).toBe('NTLS_ERR_SERVER_CERT_MISMATCH');
      await token.close();
    } finally {
      await client.close();
      writeFileSync(configFile, before);
    }
    expect(readFileSync(clientLogFile(s.alice.folder), 'utf8')).toMatch(/HA group g2: member impostor refused: server impostor \(127\.0\.0\.1:\d+\) presented a certificate other than the one added for it/);
  }, 60_000);

  it('refuses as a member a server that does not expose the partition, and names unknown groups and servers', async () => {
    expectOk(await s.alice.run('ha', 'create', '--group', 'g3', '--partition', 'no-such-partition'));
    const line = expectOneLineFailure(await s.alice.run('ha', 'add-member', '--group', 'g3', '--server', 'node1'), 'NTLS_ERR_HA_MEMBER_REFUSED');
    expect(line).toContain('does not expose partition "no-such-partition"');
    expectOneLineFailure(await s.alice.run('ha', 'add-member', '--group', 'nope', '--server', 'node1'), 'NTLS_ERR_UNKNOWN_GROUP');
    expectOneLineFailure(await s.alice.run('ha', 'add-member', '--group', 'g3', '--server', 'nope'), 'NTLS_ERR_UNKNOWN_SERVER');
    expectOneLineFailure(await s.alice.run('ha', 'create', '--group', 'g3', '--partition', 'x'), 'NTLS_ERR_EXISTS');
    expectOneLineFailure(await s.alice.run('delete-server', '--name', 'node1'), 'NTLS_ERR_HA_MEMBER_IN_USE');
    expectOk(await s.alice.run('ha', 'delete', '--group', 'g3'));
  }, 60_000);

  it('slot commands take --group: sign and verify-signature on the group\'s virtual slot', async () => {
    const input = join(s.alice.folder, 'doc.txt');
    const signature = join(s.alice.folder, 'doc.sig');
    writeFileSync(input, 'signed through the group');
    expectOk(await s.alice.run('sign', '--group', GROUP, '-l', KEY_LABEL, '--in', input, '--out', signature, '--pin', CO_PIN));
    const checked = expectOk(await s.alice.run('verify-signature', '--group', GROUP, '-l', KEY_LABEL, '--in', input, '--signature', signature));
    expect(checked.stdout).toContain('signature valid');
    expectOneLineFailure(await s.alice.run('sign', '--group', 'nope', '-l', KEY_LABEL, '--in', input, '--out', signature, '--pin', CO_PIN), 'NTLS_ERR_UNKNOWN_GROUP');
  }, 60_000);

  it('ha show probes the members when no process uses the group', async () => {
    const result = expectOk(await s.alice.run('ha', 'show', '--json'));
    const rows = JSON.parse(result.stdout) as Array<{ group: string; source: string; serial: string; members: Array<{ name: string; state: string; slot: number }> }>;
    const row = rows.find((r) => r.group === GROUP)!;
    expect(row.source).toBe('probe');
    expect(row.serial).toMatch(/\S/);
    expect(row.members.map((m) => [m.name, m.state])).toEqual([['node1', 'up'], ['node2', 'up']]);
    const human = expectOk(await s.alice.run('ha', 'show', '--group', GROUP)).stdout;
    expect(human).toContain(`HA group ${GROUP}: partition default`);
    expect(human).toMatch(/node1\s+127\.0\.0\.1:\d+\s+up/);
  }, 60_000);
});

/** C_Sign alone (its init was made before), through the group's connection. */
function signOnly(client: NtlsClient, session: number, data: Buffer): Promise<unknown> {
  return client.group(GROUP).connection.call('C_Sign', { session, data, signature: { query: false, capacity: 4096 } });
}
