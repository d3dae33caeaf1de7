// Every failure a user can cause on the client side: one line naming the cause and the fix, a
// non-zero exit, the guide's line in the client log where the guide has one, nothing written half.
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/certificates/self-signed.js';
import { removeHome } from '../support/daemon.js';
import { CO_PIN, ClientHost, expectOk, expectOneLineFailure, initialiseSlot, setUp, type Setup } from './support.js';

let s: Setup;
let silent: Server;
let serverPem: string;

function listen(server: Server): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
}

beforeAll(async () => {
  s = await setUp();
  await initialiseSlot(s.alice);
  serverPem = join(s.home, 'server', 'server.pem');
  expectOk(await s.alice.run('generate-key', '-t', 'ec-p256', '-l', 'k', '--pin', CO_PIN));
  writeFileSync(join(s.alice.folder, 'in.txt'), 'data');
  // Accepts TCP, never answers: a hung server.
  silent = createServer(() => undefined);
});
afterAll(async () => {
  silent?.close();
  await s?.daemon.stop();
  if (s) removeHome(s.home);
  s?.alice.remove();
});

const clientLog = () => {
  const file = join(s.alice.folder, 'logs', 'ntls-client.log');
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
};

describe('servers', () => {
  it('an unknown server name', async () => {
    const line = expectOneLineFailure(await s.alice.run('sign', '--server', 'nope', '-l', 'k', '--in', join(s.alice.folder, 'in.txt'), '--out', join(s.alice.folder, 'y'), '--pin', CO_PIN), 'NTLS_ERR_UNKNOWN_SERVER');
    expect(line).toContain('list-servers');
  });

  it('a server whose certificate changed is refused until the user accepts the new one with --replace', async () => {
    const other = await createSelfSignedCertificate({ commonName: 'impostor', keyType: 'ecdsa-p256', usage: 'server' });
    const otherFile = join(s.alice.folder, 'other-server.pem');
    writeFileSync(otherFile, other.certificatePem);
    expectOk(await s.alice.run('add-server', '--host', '127.0.0.1', '--port', String(s.daemon.port), '--cert', otherFile, '--name', 'changed'));
    const line = expectOneLineFailure(await s.alice.run('verify', '--server', 'changed'), 'NTLS_ERR_SERVER_CERT_MISMATCH');
    expect(line).toContain('--replace');
    // Adding again without --replace changes nothing.
    expectOneLineFailure(await s.alice.run('add-server', '--host', '127.0.0.1', '--port', String(s.daemon.port), '--cert', serverPem, '--name', 'changed'), 'NTLS_ERR_SERVER_EXISTS');
    expectOneLineFailure(await s.alice.run('verify', '--server', 'changed'), 'NTLS_ERR_SERVER_CERT_MISMATCH');
    // The README's rotation line gives no --port: the port recorded is kept (it was reset to 1792).
    expectOk(await s.alice.run('add-server', '--host', '127.0.0.1', '--cert', serverPem, '--name', 'changed', '--replace'));
    expectOk(await s.alice.run('verify', '--server', 'changed'));
    expectOk(await s.alice.run('delete-server', '--name', 'changed'));
  });

  it('a server that is down', async () => {
    const probe = createServer();
    const port = await listen(probe);
    await new Promise((r) => probe.close(r));
    expectOk(await s.alice.run('add-server', '--host', '127.0.0.1', '--port', String(port), '--cert', serverPem, '--name', 'down'));
    const line = expectOneLineFailure(await s.alice.run('verify', '--server', 'down'), 'NTLS_ERR_SERVER_DOWN');
    expect(line).toContain('ECONNREFUSED');
    expectOk(await s.alice.run('delete-server', '--name', 'down'));
  });

  it('a server that does not answer: the timeout', async () => {
    const port = await listen(silent);
    expectOk(await s.alice.run('add-server', '--host', '127.0.0.1', '--port', String(port), '--cert', serverPem, '--name', 'hung'));
    const started = Date.now();
    expectOneLineFailure(await s.alice.run('verify', '--server', 'hung', '--timeout', '1'), 'NTLS_ERR_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(10_000);
    expectOk(await s.alice.run('delete-server', '--name', 'hung'));
  });

  it('a host with a port in it, or no host at all, is refused with the flags to give instead', async () => {
    const serverPem = join(s.home, 'server', 'server.pem');
    for (const [host, hint] of <Array<[string, string]>>[['127.0.0.1:24100', 'give --host 127.0.0.1 --port 24100'], ['[::1]:1792', 'give --host ::1 --port 1792'], ['hsm one', 'give a host name or an IP address']]) {
      const result = await s.alice.run('add-server', '--host', host, '--cert', serverPem);
      expectOneLineFailure(result, 'NTLS_ERR_ARGUMENT');
      expect(result.status).toBe(2);
      expect(result.stderr).toContain(hint);
    }
    for (const host of ['::1', 'hsm1.example.com', '10.0.0.7']) {
      expectOk(await s.alice.run('add-server', '--host', host, '--cert', serverPem, '--name', 'fine'));
      expectOk(await s.alice.run('delete-server', '--name', 'fine'));
    }
    expect(JSON.parse(expectOk(await s.alice.run('list-servers', '--json')).stdout).map((r: { name: string }) => r.name)).toEqual(['local']);
  });

  it('a server certificate file that is missing or not a certificate', async () => {
    expectOneLineFailure(await s.alice.run('add-server', '--host', 'h', '--cert', join(s.alice.folder, 'missing.pem')), 'NTLS_ERR_SERVER_CERT_FILE');
    expect(clientLog()).toContain('Chrystoki configuration server certificate authority filename invalid: RC_FILE_NAME_INVALID');
    const junk = join(s.alice.folder, 'junk.pem');
    writeFileSync(junk, 'not a certificate');
    expectOneLineFailure(await s.alice.run('add-server', '--host', 'h', '--cert', junk), 'NTLS_ERR_SERVER_CERT_FILE');
    expect(clientLog()).toContain('Error loading server certificate authorities: RC_SSL_CERT_VERIFICATION_LOCATION_ERROR');
    expect(JSON.parse(expectOk(await s.alice.run('list-servers', '--json')).stdout).map((r: { name: string }) => r.name)).toEqual(['local']);
  });
});

describe('the client\'s own files', () => {
  it('a key readable by others is refused until chmod 600', async () => {
    const key = join(s.alice.folder, 'aliceKey.pem');
    chmodSync(key, 0o644);
    try {
      const line = expectOneLineFailure(await s.alice.run('verify'), 'NTLS_ERR_KEY_PERMISSIONS');
      expect(line).toContain('chmod 600');
      expect(clientLog()).toContain('Error loading the client private key: RC_SSL_LOAD_CLIENT_PRIVATE_KEY_ERROR');
    } finally {
      chmodSync(key, 0o600);
    }
    expectOk(await s.alice.run('verify'));
  });

  it('a missing certificate or key file, and a certificate file that is not one', async () => {
    const cert = join(s.alice.folder, 'alice.pem');
    const key = join(s.alice.folder, 'aliceKey.pem');
    renameSync(cert, cert + '.away');
    try {
      expectOneLineFailure(await s.alice.run('verify'), 'NTLS_ERR_CLIENT_CERT_FILE');
      expect(clientLog()).toContain('Chrystoki configuration client certificate file name invalid: RC_FILE_NAME_INVALID');
      writeFileSync(cert, 'garbage');
      expectOneLineFailure(await s.alice.run('verify'), 'NTLS_ERR_CLIENT_CERT_FILE');
      expect(clientLog()).toMatch(/Chrystoki using client certificate failed: .*alice\.pem, RC_SSL_LOAD_CLIENT_CERT_ERROR/);
    } finally {
      renameSync(cert + '.away', cert);
    }
    renameSync(key, key + '.away');
    try {
      expectOneLineFailure(await s.alice.run('verify'), 'NTLS_ERR_CLIENT_KEY_FILE');
      expect(clientLog()).toContain('Chrystoki configuration client private key file name invalid: RC_FILE_NAME_INVALID');
    } finally {
      renameSync(key + '.away', key);
    }
  });

  it('no certificate made yet, and a client.json that is not valid', async () => {
    const config = join(s.alice.folder, 'client.json');
    const saved = readFileSync(config);
    try {
      writeFileSync(config, JSON.stringify({ servers: [] }));
      expectOneLineFailure(await s.alice.run('verify'), 'NTLS_ERR_UNKNOWN_SERVER');
      writeFileSync(config, JSON.stringify({ servers: [{ name: 'x', host: 'h', certificate: 'c.pem' }] }));
      expectOneLineFailure(await s.alice.run('verify'), 'NTLS_ERR_NO_CLIENT_CERT');
      writeFileSync(config, '{ not json');
      expectOneLineFailure(await s.alice.run('list-servers'), 'NTLS_ERR_CLIENT_CONFIG');
      writeFileSync(config, JSON.stringify({ receiveTimeout: 'soon' }));
      expectOneLineFailure(await s.alice.run('list-servers'), 'NTLS_ERR_CLIENT_CONFIG');
    } finally {
      writeFileSync(config, saved);
    }
  });

  it('create-cert does not overwrite a certificate without --force', async () => {
    const before = readFileSync(join(s.alice.folder, 'aliceKey.pem'));
    expectOneLineFailure(await s.alice.run('create-cert', '--cn', 'alice'), 'NTLS_ERR_EXISTS');
    expect(readFileSync(join(s.alice.folder, 'aliceKey.pem')).equals(before)).toBe(true);
  });

  it('create-cert for another name (a --cn left out takes the host name) does not switch the folder\'s client without --force', async () => {
    const config = readFileSync(join(s.alice.folder, 'client.json'), 'utf8');
    const line = expectOneLineFailure(await s.alice.run('create-cert', '--cn', 'someone-else'), 'NTLS_ERR_EXISTS');
    expect(line).toContain('"alice"');
    expect(existsSync(join(s.alice.folder, 'someone-else.pem'))).toBe(false);
    expect(readFileSync(join(s.alice.folder, 'client.json'), 'utf8')).toBe(config);
  });

  it('create-cert --force without --cn renews the folder\'s client under its own name, and says the server must renew it', async () => {
    // It took the host name before: the folder's client was renamed, and refused by the server.
    const carol = new ClientHost('carol');
    try {
      expectOk(await carol.run('create-cert', '--cn', 'carol'));
      const before = readFileSync(carol.certificateFile, 'utf8');
      const renewed = expectOk(await carol.run('create-cert', '--force'));
      expect(renewed.stdout).toContain('ntls client renew --client carol --cert carol.pem');
      expect(readFileSync(carol.certificateFile, 'utf8')).not.toBe(before);
      expect(JSON.parse(readFileSync(join(carol.folder, 'client.json'), 'utf8'))).toMatchObject({ client: { name: 'carol' } });
    } finally {
      carol.remove();
    }
  });
});

describe('PINs and inputs', () => {
  it('a wrong PIN: one line, and no output file', async () => {
    const out = join(s.alice.folder, 'wrong-pin.sig');
    const line = expectOneLineFailure(await s.alice.run('sign', '-l', 'k', '--in', join(s.alice.folder, 'in.txt'), '--out', out, '--pin', 'nope-nope'), 'CKR_PIN_INCORRECT');
    expect(line).toContain('PIN is wrong');
    expect(existsSync(out)).toBe(false);
  });

  it('no PIN at all', async () => {
    expectOneLineFailure(await s.alice.run('sign', '-l', 'k', '--in', join(s.alice.folder, 'in.txt'), '--out', join(s.alice.folder, 'x.sig')), 'NTLS_ERR_NO_PIN');
  });

  it('a key label that does not exist, an input that does not exist, a slot this client does not have', async () => {
    const input = join(s.alice.folder, 'in.txt');
    expectOneLineFailure(await s.alice.run('sign', '-l', 'nokey', '--in', input, '--out', join(s.alice.folder, 'x.sig'), '--pin', CO_PIN), 'NTLS_ERR_NO_SUCH_OBJECT');
    expectOneLineFailure(await s.alice.run('sign', '-l', 'k', '--in', join(s.alice.folder, 'absent'), '--out', join(s.alice.folder, 'x.sig'), '--pin', CO_PIN), 'NTLS_ERR_FILE');
    expectOneLineFailure(await s.alice.run('sign', '-l', 'k', '--in', input, '--out', join(s.alice.folder, 'x.sig'), '--pin', CO_PIN, '--slot', '3'), 'CKR_SLOT_ID_INVALID');
    expectOneLineFailure(await s.alice.run('generate-key', '-t', 'dsa-1024', '-l', 'x', '--pin', CO_PIN), 'NTLS_ERR_ARGUMENT');
    expectOneLineFailure(await s.alice.run('sign', '-l', 'k', '--in', input, '--out', join(s.alice.folder, 'no-such-dir', 'x.sig'), '--pin', CO_PIN), 'NTLS_ERR_FILE');
  });
});
