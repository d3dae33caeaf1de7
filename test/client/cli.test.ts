// ntls-client as a user runs it, against a real daemon over mutual TLS on loopback.
import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/certificates/self-signed.js';
import { removeHome, runNtls } from '../support/daemon.js';
import { CO_PIN, ClientHost, expectOk, expectOneLineFailure, initialiseSlot, setUp, type Setup } from './support.js';

let s: Setup;

beforeAll(async () => {
  s = await setUp();
  await initialiseSlot(s.alice);
});
afterAll(async () => {
  await s?.daemon.stop();
  if (s) removeHome(s.home);
  s?.alice.remove();
});

describe('verify', () => {
  it('lists exactly the partitions assigned to this client', async () => {
    const human = expectOk(await s.alice.run('verify'));
    expect(human.stdout).toMatch(/server local \(127\.0\.0\.1:\d+\): 1 slot\(s\)/);
    const json = JSON.parse(expectOk(await s.alice.run('verify', '--json')).stdout);
    expect(json).toHaveLength(1);
    expect(json[0].slots.map((x: { slot: number; label: string }) => [x.slot, x.label])).toEqual([[0, 'default']]);
    expect(json[0].slots[0].serial).toMatch(/^\d{12}$/);
  });

  it('connects to each server added; a failing one is one line and a non-zero status, the others still listed', async () => {
    expectOk(await s.alice.run('add-server', '--host', 'localhost', '--port', String(s.daemon.port), '--cert', join(s.home, 'server', 'server.pem'), '--name', 'again'));
    const both = JSON.parse(expectOk(await s.alice.run('verify', '--json')).stdout);
    expect(both.map((r: { server: string; slots: unknown[] }) => [r.server, r.slots.length])).toEqual([['local', 1], ['again', 1]]);
    expectOk(await s.alice.run('add-server', '--host', '127.0.0.1', '--port', '1', '--cert', join(s.home, 'server', 'server.pem'), '--name', 'nothing-there'));
    const result = await s.alice.run('verify');
    expect(result.status).toBe(1);
    expect(result.stdout).toContain('server local');
    expect(result.stdout).toContain('server again');
    expect(result.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^ntls-client: server nothing-there .*\[NTLS_ERR_SERVER_DOWN\]$/)]);
    expectOk(await s.alice.run('delete-server', '--name', 'again'));
    expectOk(await s.alice.run('delete-server', '--name', 'nothing-there'));
  });

  it('a port where something other than NTLS answers (an ssh banner, an HTTP server) is NTLS_ERR_NOT_NTLS, one line', async () => {
    const banner = createServer((socket) => socket.end('SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n'));
    const http = createServer((socket) => socket.once('data', () => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n')));
    try {
      for (const [name, server] of [['ssh', banner], ['web', http]] as const) {
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const port = (server.address() as AddressInfo).port;
        expectOk(await s.alice.run('add-server', '--host', '127.0.0.1', '--port', String(port), '--cert', join(s.home, 'server', 'server.pem'), '--name', name));
        const result = await s.alice.run('verify', '--server', name);
        expectOneLineFailure(result, 'NTLS_ERR_NOT_NTLS');
        expect(result.stderr).toContain(`server ${name} (127.0.0.1:${port}) does not speak NTLS`);
        expectOk(await s.alice.run('delete-server', '--name', name));
      }
    } finally {
      banner.close();
      http.close();
    }
  });
});

describe('generate, sign, verify', () => {
  it('an EC P-256 key: the signature checks with node:crypto and with verify-signature', async () => {
    const publicPem = join(s.alice.folder, 'ec.pub.pem');
    expectOk(await s.alice.run('generate-key', '--type', 'ec-p256', '--label', 'ec1', '--pin', CO_PIN, '--public-out', publicPem));
    const data = join(s.alice.folder, 'data.bin');
    writeFileSync(data, 'the data to sign');
    const sig = join(s.alice.folder, 'data.sig');
    expectOk(await s.alice.runWith({ NTLS_PIN: CO_PIN }, 'sign', '--label', 'ec1', '--in', data, '--out', sig));
    const signature = readFileSync(sig);
    expect(signature).toHaveLength(64);
    expect(nodeVerify('sha256', readFileSync(data), { key: createPublicKey(readFileSync(publicPem)), dsaEncoding: 'ieee-p1363' }, signature)).toBe(true);
    expect(expectOk(await s.alice.run('verify-signature', '--label', 'ec1', '--in', data, '--signature', sig, '--pin', CO_PIN)).stdout).toContain('signature valid');
    writeFileSync(data, 'other data');
    expectOneLineFailure(await s.alice.run('verify-signature', '--label', 'ec1', '--in', data, '--signature', sig, '--pin', CO_PIN), 'CKR_SIGNATURE_INVALID');
  });
});

describe('more key types and operations', () => {
  it('RSA-2048 and Ed25519 sign and verify; the public keys check the signatures in node:crypto', async () => {
    const data = join(s.alice.folder, 'doc.txt');
    writeFileSync(data, 'a document');
    for (const [type, check] of [
      ['rsa-2048', (pub: string, sig: Buffer) => nodeVerify('sha256', readFileSync(data), createPublicKey(pub), sig)],
      ['ed25519', (pub: string, sig: Buffer) => nodeVerify(null, readFileSync(data), createPublicKey(pub), sig)],
    ] as const) {
      const pub = join(s.alice.folder, `${type}.pub.pem`);
      const sig = join(s.alice.folder, `${type}.sig`);
      expectOk(await s.alice.run('generate-key', '-t', type, '-l', `k-${type}`, '--pin', CO_PIN, '--public-out', pub));
      expectOk(await s.alice.run('sign', '-l', `k-${type}`, '--in', data, '--out', sig, '--pin', CO_PIN));
      expect(check(readFileSync(pub, 'utf8'), readFileSync(sig))).toBe(true);
      expectOk(await s.alice.run('verify-signature', '-l', `k-${type}`, '--in', data, '--signature', sig));
    }
    // A named mechanism: RSA-PSS with SHA-256.
    const sig = join(s.alice.folder, 'pss.sig');
    expectOk(await s.alice.run('sign', '-l', 'k-rsa-2048', '--in', data, '--out', sig, '--pin', CO_PIN, '-m', 'sha256-rsa-pkcs-pss'));
    expectOk(await s.alice.run('verify-signature', '-l', 'k-rsa-2048', '--in', data, '--signature', sig, '-m', 'SHA256_RSA_PKCS_PSS'));
  });

  it('AES-256 and RSA encrypt and decrypt files back to the plaintext, with each cipher', async () => {
    const plain = join(s.alice.folder, 'plain.bin');
    writeFileSync(plain, Buffer.from('attack at dawn, '.repeat(100)));
    expectOk(await s.alice.run('generate-key', '-t', 'aes-256', '-l', 'aes1', '--pin', CO_PIN));
    for (const [label, cipher] of [['aes1', 'aes-gcm'], ['aes1', 'aes-cbc-pad'], ['aes1', 'aes-ctr'], ['k-rsa-2048', 'rsa-oaep']] as const) {
      const input = cipher.startsWith('rsa') ? join(s.alice.folder, 'short.bin') : plain;
      if (cipher.startsWith('rsa')) writeFileSync(input, 'a short secret');
      const enc = join(s.alice.folder, `${cipher}.enc`);
      const dec = join(s.alice.folder, `${cipher}.dec`);
      expectOk(await s.alice.run('encrypt', '-l', label, '-c', cipher, '--in', input, '--out', enc, '--pin', CO_PIN));
      expect(readFileSync(enc).equals(readFileSync(input))).toBe(false);
      expectOk(await s.alice.run('decrypt', '-l', label, '-c', cipher, '--in', enc, '--out', dec, '--pin', CO_PIN));
      expect(readFileSync(dec).equals(readFileSync(input))).toBe(true);
    }
  });

  it('a tampered GCM message fails and writes nothing', async () => {
    const enc = join(s.alice.folder, 'aes-gcm.enc');
    const bad = Buffer.from(readFileSync(enc));
    bad[bad.length - 1]! ^= 1;
    writeFileSync(enc, bad);
    const out = join(s.alice.folder, 'tampered.dec');
    expectOneLineFailure(await s.alice.run('decrypt', '-l', 'aes1', '--in', enc, '--out', out, '--pin', CO_PIN), 'CKR_ENCRYPTED_DATA_INVALID');
    expect(existsSync(out)).toBe(false);
  });

  it('random bytes, to a file and as hex', async () => {
    const out = join(s.alice.folder, 'random.bin');
    expectOk(await s.alice.run('random', '-n', '48', '--out', out));
    expect(readFileSync(out)).toHaveLength(48);
    expect(expectOk(await s.alice.run('random', '-n', '16')).stdout.trim()).toMatch(/^[0-9a-f]{32}$/);
  });

  it('list-objects shows the keys with the PIN, only public ones without', async () => {
    const all = JSON.parse(expectOk(await s.alice.run('list-objects', '--json', '--pin', CO_PIN)).stdout);
    const labels = all.map((o: { label: string; class: string }) => `${o.class}:${o.label}`);
    expect(labels).toEqual(expect.arrayContaining(['private-key:ec1', 'public-key:ec1', 'secret-key:aes1']));
    const pub = JSON.parse(expectOk(await s.alice.run('list-objects', '--json')).stdout);
    expect(pub.every((o: { private: boolean }) => !o.private)).toBe(true);
    expect(pub.map((o: { label: string }) => o.label)).toContain('ec1');
  });

  it('a label in use is refused, and the key is not made twice', async () => {
    expectOneLineFailure(await s.alice.run('generate-key', '-t', 'ec-p256', '-l', 'ec1', '--pin', CO_PIN), 'NTLS_ERR_EXISTS');
  });
});

describe('list-servers and delete-server', () => {
  it('list-servers shows the server and its certificate fingerprint', async () => {
    const rows = JSON.parse(expectOk(await s.alice.run('list-servers', '--json')).stdout);
    expect(rows).toEqual([expect.objectContaining({ name: 'local', host: '127.0.0.1', port: s.daemon.port, fingerprint: expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/) })]);
  });

  it('delete-server forgets a server', async () => {
    expectOk(await s.alice.run('add-server', '--host', 'example.invalid', '--cert', join(s.home, 'server', 'server.pem'), '--name', 'spare'));
    expect(JSON.parse(expectOk(await s.alice.run('list-servers', '--json')).stdout)).toHaveLength(2);
    expectOk(await s.alice.run('delete-server', '--name', 'spare'));
    expect(JSON.parse(expectOk(await s.alice.run('list-servers', '--json')).stdout).map((r: { name: string }) => r.name)).toEqual(['local']);
    expect(existsSync(join(s.alice.folder, 'servers', 'spare.pem'))).toBe(false);
    expectOneLineFailure(await s.alice.run('delete-server', '--name', 'spare'), 'NTLS_ERR_UNKNOWN_SERVER');
  });
});

describe('an unregistered client', () => {
  it('is refused, with the daemon\'s reference line in its log and one line for the user', async () => {
    const bob = new ClientHost('bob');
    try {
      // Its hint names everything the server's command needs.
      expect(expectOk(await bob.run('create-cert', '--cn', 'bob')).stdout).toMatch(/ntls client register --client bob --cert \S+bob\.pem --hostname /);
      expectOk(await bob.run('add-server', '--host', '127.0.0.1', '--port', String(s.daemon.port), '--cert', join(s.home, 'server', 'server.pem')));
      const from = s.daemon.log().length;
      const line = expectOneLineFailure(await bob.run('verify'), 'NTLS_ERR_CLIENT_REFUSED');
      expect(line).toContain('ntls client register --client bob');
      await s.daemon.waitForLog('Client credentials cannot be verified. Connection terminated', 10_000, from);
      expectOneLineFailure(await bob.run('list-objects'), 'NTLS_ERR_CLIENT_REFUSED');
    } finally {
      bob.remove();
    }
  });

  it('once registered and assigned, bob sees his slot', async () => {
    const bob = new ClientHost('bob2');
    try {
      expectOk(await bob.run('create-cert', '--cn', 'bob2'));
      expectOk(await bob.run('add-server', '--host', '127.0.0.1', '--port', String(s.daemon.port), '--cert', join(s.home, 'server', 'server.pem')));
      expectOk(await runNtls(['client', 'register', '-c', 'bob2', '--cert', bob.certificateFile, '--hostname', '127.0.0.1', '--home', s.home]));
      const none = JSON.parse(expectOk(await bob.run('verify', '--json')).stdout);
      expect(none[0].slots).toEqual([]);
      expectOk(await runNtls(['client', 'assign-partition', '-c', 'bob2', '-p', 'default', '--home', s.home]));
      const one = JSON.parse(expectOk(await bob.run('verify', '--json')).stdout);
      expect(one[0].slots.map((x: { label: string }) => x.label)).toEqual(['default']);
    } finally {
      bob.remove();
    }
  });
});

describe('partition set-up from the client, ping, and an expired certificate', () => {
  it('init-token and init-pin make a new partition usable', async () => {
    expectOk(await runNtls(['partition', 'create', '--label', 'pay', '--home', s.home]));
    expectOk(await runNtls(['client', 'assign-partition', '-c', 'alice', '-p', 'pay', '--home', s.home]));
    const before = JSON.parse(expectOk(await s.alice.run('verify', '--json')).stdout);
    expect(before[0].slots.map((x: { label: string; tokenInitialized: boolean }) => [x.label, x.tokenInitialized])).toEqual([['default', true], ['pay', false]]);
    expectOneLineFailure(await s.alice.run('generate-key', '--slot', '1', '-t', 'aes-128', '-l', 'a', '--pin', '5678'), 'CKR_TOKEN_NOT_RECOGNIZED');
    expectOk(await s.alice.run('init-token', '--slot', '1', '--so-pin', 'so-pay-1', '--label', 'pay'));
    expectOneLineFailure(await s.alice.run('generate-key', '--slot', '1', '-t', 'aes-128', '-l', 'a', '--pin', '5678'), 'CKR_USER_PIN_NOT_INITIALIZED');
    expectOneLineFailure(await s.alice.run('init-pin', '--slot', '1', '--so-pin', 'wrong-so', '--pin', '5678'), 'CKR_PIN_INCORRECT');
    // NTLS_PIN exported as the README says, holding the PIN being set: the SO alone logs in.
    expectOk(await s.alice.runWith({ NTLS_PIN: '5678' }, 'init-pin', '--slot', '1', '--so-pin', 'so-pay-1'));
    expectOk(await s.alice.run('generate-key', '--slot', '1', '-t', 'aes-128', '-l', 'a', '--pin', '5678'));
    const objects = JSON.parse(expectOk(await s.alice.run('list-objects', '--slot', '1', '--pin', '5678', '--json')).stdout);
    expect(objects.map((o: { label: string }) => o.label)).toEqual(['a']);
  });

  it('ping links with client.json and with flags', async () => {
    expect(expectOk(await s.alice.run('ping')).stdout).toMatch(/keepalive answered in/);
    const flags = await s.alice.run('ping', '--server', `127.0.0.1:${s.daemon.port}`, '--server-cert', join(s.home, 'server', 'server.pem'),
      '--cert', join(s.alice.folder, 'alice.pem'), '--key', join(s.alice.folder, 'aliceKey.pem'), '--name', 'alice');
    expect(expectOk(flags).stdout).toMatch(/keepalive answered in/);
    expectOneLineFailure(await s.alice.run('ping', '--server', '127.0.0.1', '--cert', join(s.alice.folder, 'alice.pem')), 'NTLS_ERR_ARGUMENT');
  });

  it('an expired client certificate is named as such before any connection', async () => {
    const old = new ClientHost('old');
    try {
      const made = await createSelfSignedCertificate({
        commonName: 'old', keyType: 'ecdsa-p256', usage: 'client', notBefore: new Date(Date.now() - 20 * 86400_000), notAfter: new Date(Date.now() - 86400_000),
      });
      writeFileSync(join(old.folder, 'old.pem'), made.certificatePem);
      writeFileSync(join(old.folder, 'oldKey.pem'), made.keyPem, { mode: 0o600 });
      writeFileSync(join(old.folder, 'client.json'), JSON.stringify({ client: { certificate: 'old.pem', key: 'oldKey.pem' } }));
      expectOk(await old.run('add-server', '--host', '127.0.0.1', '--port', String(s.daemon.port), '--cert', join(s.home, 'server', 'server.pem')));
      const line = expectOneLineFailure(await old.run('verify'), 'NTLS_ERR_CLIENT_CERT_EXPIRED');
      expect(line).toContain('create-cert --force');
      expect(readFileSync(join(old.folder, 'logs', 'ntls-client.log'), 'utf8')).toContain('RC_SSL_LOAD_CLIENT_CERT_ERROR');
    } finally {
      old.remove();
    }
  });
});
