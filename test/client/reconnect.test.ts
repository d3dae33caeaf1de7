// A lost link fails the calls in flight with a LinkError; the next call links again, to the
// restarted daemon on the same address.
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LinkError } from '../../src/client/link.js';
import { NtlsClient } from '../../src/client/ntls-client.js';
import { CKM, CKR, CKU } from '../../src/pkcs11/constants.js';
import { keyGeneration } from '../../src/client/key-specs.js';
import { removeHome, runNtls, startDaemon, type Daemon } from '../support/daemon.js';
import { CO_PIN, ClientHost, clientTestHome, expectOk, initialiseSlot } from './support.js';
import { freePort } from '../support/ports.js';

let home: string;
let daemon: Daemon;
let alice: ClientHost;
let client: NtlsClient;

beforeAll(async () => {
  home = clientTestHome({ server: { bind: '127.0.0.1', port: await freePort() } });
  daemon = await startDaemon(home);
  alice = new ClientHost('alice');
  expectOk(await alice.run('create-cert', '--cn', 'alice'));
  expectOk(await runNtls(['client', 'register', '-c', 'alice', '--cert', alice.certificateFile, '--hostname', '127.0.0.1', '--home', home]));
  expectOk(await runNtls(['client', 'assign-partition', '-c', 'alice', '-p', 'default', '--home', home]));
  expectOk(await alice.run('add-server', '--host', '127.0.0.1', '--port', String(daemon.port), '--cert', join(home, 'server', 'server.pem'), '--name', 'local'));
  await initialiseSlot(alice);
  client = alice.library();
});
afterAll(async () => {
  await client?.close();
  await daemon?.stop();
  removeHome(home);
  alice?.remove();
});

describe('a lost link', () => {
  it('fails the calls in flight with NTLS_ERR_LINK_CLOSED, refuses while the server is down, and links again once it is back', async () => {
    const p11 = client.server();
    const session = await p11.openSession(0);
    await p11.login(session, CKU.USER, CO_PIN);
    expect(p11.connection.generation).toBe(1);

    // Slow calls queue on the link (the server handles one at a time); the daemon dies under them.
    const plan = keyGeneration('rsa-4096', { label: 'slow', token: false });
    if (!plan.pair) throw new Error('a pair was expected');
    const inFlight = Array.from({ length: 20 }, () => p11.generateKeyPair(session, plan.mechanism, plan.publicTemplate, plan.privateTemplate));
    const settled = Promise.allSettled(inFlight);
    await new Promise((r) => setTimeout(r, 200));
    expect(p11.connection.inFlight).toBeGreaterThan(0);
    await daemon.stop('SIGKILL');
    const outcomes = await settled;
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(failures.length).toBeGreaterThan(0);
    for (const f of failures) {
      expect(f.reason).toBeInstanceOf(LinkError);
      expect((f.reason as LinkError).code).toBe('NTLS_ERR_LINK_CLOSED');
    }

    // Down: the next call tries to link and is refused at once.
    const down = await p11.getSlotList().catch((e: unknown) => e);
    expect(down).toBeInstanceOf(LinkError);
    expect((down as LinkError).errno).toBe('ECONNREFUSED');

    daemon = await startDaemon(home);
    expect(await p11.getSlotList()).toEqual([0]);
    expect(p11.connection.generation).toBe(2);
    // Sessions belonged to the old link.
    await expect(p11.closeSession(session)).rejects.toMatchObject({ rv: CKR.SESSION_HANDLE_INVALID });
    const token = await client.openToken({ pin: CO_PIN });
    const key = await token.generateKeyPair('ec-p256', { label: 'after', token: false });
    expect(await token.sign(key.privateKey!, Buffer.from('x'), { type: CKM.ECDSA_SHA256, parameter: null })).toHaveLength(64);
    await token.close();
  });
});
