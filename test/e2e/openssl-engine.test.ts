// OpenSSL with libengine-pkcs11-openssl (engine "pkcs11", MODULE_PATH = p11-kit-client.so, set in
// an openssl config file in a temporary folder) uses keys held in ntls, through the TLS relay:
// signatures made in ntls verify with plain openssl, and RSA decryption happens in the token.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, removeHome } from '../support/daemon.js';
import {
  createClientCert, createPartition, explain, openssl, p11kitEnv, pkcs11Tool, registerClient, removeDir,
  startE2eDaemon, startRelay, tempDir, waitFor, writeEngineConfig, type Relay, type ToolResult,
} from '../support/e2e.js';
import { freePort } from '../support/ports.js';

let daemon: Daemon;
let work: string;
let relay: Relay;
let env: NodeJS.ProcessEnv;

const PIN = '4321';
const TOKEN = 'engine-token';
const ok = (r: ToolResult) => {
  expect(r.status, explain(r)).toBe(0);
  return r;
};
const file = (n: string) => join(work, n);
const uri = (object: string, withPin = true) => `pkcs11:token=${TOKEN};object=${object};type=private${withPin ? `?pin-value=${PIN}` : ''}`;
const ossl = (args: string[]) => openssl(args, { env, cwd: work });

beforeAll(async () => {
  work = tempDir('ntls-e2e-engine-');
  daemon = await startE2eDaemon();
  await createPartition(daemon, 'engine-part');
  const client = await createClientCert('erin', work);
  await registerClient(daemon, client, 'engine-part');
  relay = await startRelay(daemon, client, join(work, 'relay.sock'));
  env = { ...p11kitEnv(relay.socketPath), OPENSSL_CONF: writeEngineConfig(work) };
  const t = (args: string[]) => pkcs11Tool(relay.socketPath, args, { cwd: work });
  ok(await t(['--init-token', '--slot', '0', '--label', TOKEN, '--so-pin', '12345678']));
  ok(await t(['--init-pin', '--slot', '0', '--login', '--login-type', 'so', '--so-pin', '12345678', '--pin', PIN]));
  ok(await t(['--slot', '0', '--login', '--pin', PIN, '--keypairgen', '--key-type', 'rsa:2048', '--label', 'eng-rsa', '--id', '11']));
  ok(await t(['--slot', '0', '--login', '--pin', PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'eng-ec', '--id', '12']));
  for (const [id, name] of [['11', 'rsa'], ['12', 'ec']]) {
    ok(await t(['--slot', '0', '--read-object', '--type', 'pubkey', '--id', id!, '-o', file(`${name}.der`)]));
    ok(await openssl(['pkey', '-pubin', '-inform', 'DER', '-in', file(`${name}.der`), '-out', file(`${name}.pem`)]));
  }
  writeFileSync(file('message.txt'), 'signed by a key that never left ntls\n');
});

afterAll(async () => {
  await relay?.stop();
  await daemon?.stop();
  if (daemon) removeHome(daemon.home);
  if (work) removeDir(work);
});

describe('openssl with the pkcs11 engine on p11-kit-client.so', () => {
  it('the engine loads from the config file', async () => {
    const r = ok(await ossl(['engine', '-t', 'pkcs11']));
    expect(r.stdout).toContain('[ available ]');
  });

  it('openssl dgst -sign with an RSA key in ntls (PIN in the URI); plain openssl verifies', async () => {
    ok(await ossl(['dgst', '-sha256', '-engine', 'pkcs11', '-keyform', 'engine', '-sign', uri('eng-rsa'), '-out', file('rsa.sig'), file('message.txt')]));
    const v = ok(await openssl(['dgst', '-sha256', '-verify', file('rsa.pem'), '-signature', file('rsa.sig'), file('message.txt')]));
    expect(v.stdout).toContain('Verified OK');
  });

  it('openssl dgst -sign with an EC P-256 key in ntls; plain openssl verifies', async () => {
    ok(await ossl(['dgst', '-sha256', '-engine', 'pkcs11', '-keyform', 'engine', '-sign', uri('eng-ec'), '-out', file('ec.sig'), file('message.txt')]));
    const v = ok(await openssl(['dgst', '-sha256', '-verify', file('ec.pem'), '-signature', file('ec.sig'), file('message.txt')]));
    expect(v.stdout).toContain('Verified OK');
  });

  it('openssl pkeyutl -sign (PIN by -passin, key by id); plain openssl verifies', async () => {
    const digest = createHash('sha256').update(readFileSync(file('message.txt'))).digest();
    writeFileSync(file('digest.bin'), digest);
    ok(await ossl(['pkeyutl', '-engine', 'pkcs11', '-keyform', 'engine', '-sign', '-inkey', `pkcs11:token=${TOKEN};id=%11;type=private`,
      '-passin', `pass:${PIN}`, '-in', file('digest.bin'), '-out', file('pkeyutl.sig'), '-pkeyopt', 'digest:sha256']));
    const v = ok(await openssl(['pkeyutl', '-verify', '-pubin', '-inkey', file('rsa.pem'), '-in', file('digest.bin'),
      '-sigfile', file('pkeyutl.sig'), '-pkeyopt', 'digest:sha256']));
    expect(v.stdout).toContain('Signature Verified Successfully');
  });

  it('openssl req -x509 makes a self-signed certificate with the ntls key; openssl verifies it', async () => {
    ok(await ossl(['req', '-new', '-x509', '-engine', 'pkcs11', '-keyform', 'engine', '-key', uri('eng-ec'), '-subj', '/CN=ntls-e2e',
      '-days', '1', '-sha256', '-out', file('cert.pem')]));
    const v = ok(await openssl(['verify', '-CAfile', file('cert.pem'), file('cert.pem')]));
    expect(v.stdout).toContain('OK');
    const pub = ok(await openssl(['x509', '-in', file('cert.pem'), '-pubkey', '-noout']));
    expect(pub.stdout.trim()).toBe(readFileSync(file('ec.pem'), 'utf8').trim());
  });

  it('openssl pkeyutl -decrypt in the token: RSA-OAEP (SHA-256 and SHA-1) and PKCS#1 v1.5', async () => {
    const secret = 'decrypted inside ntls';
    writeFileSync(file('secret.txt'), secret);
    const cases: Array<[string, string[]]> = [
      ['oaep256', ['-pkeyopt', 'rsa_padding_mode:oaep', '-pkeyopt', 'rsa_oaep_md:sha256', '-pkeyopt', 'rsa_mgf1_md:sha256']],
      ['oaep1', ['-pkeyopt', 'rsa_padding_mode:oaep']],
      ['pkcs1', []],
    ];
    for (const [name, opts] of cases) {
      ok(await openssl(['pkeyutl', '-encrypt', '-pubin', '-inkey', file('rsa.pem'), '-in', file('secret.txt'), '-out', file(`${name}.enc`), ...opts]));
      ok(await ossl(['pkeyutl', '-decrypt', '-engine', 'pkcs11', '-keyform', 'engine', '-inkey', uri('eng-rsa'),
        '-in', file(`${name}.enc`), '-out', file(`${name}.dec`), ...opts]));
      expect(readFileSync(file(`${name}.dec`), 'utf8'), name).toBe(secret);
    }
  });

  it('openssl s_server serves TLS 1.3 with ntls-held keys (ECDSA and RSA-PSS); s_client verifies', async () => {
    for (const [key, signature] of [['eng-ec', 'ECDSA'], ['eng-rsa', 'RSA-PSS']] as const) {
      const cert = file(`server-${key}.pem`);
      ok(await ossl(['req', '-new', '-x509', '-engine', 'pkcs11', '-keyform', 'engine', '-key', uri(key), '-subj', '/CN=localhost',
        '-days', '1', '-out', cert]));
      const port = await freePort();
      const server = spawn('openssl', ['s_server', '-engine', 'pkcs11', '-keyform', 'engine', '-key', uri(key), '-cert', cert,
        '-accept', `127.0.0.1:${port}`, '-naccept', '1'], { env: { ...process.env, ...env }, cwd: work, stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      server.stdout.on('data', (d) => (out += d));
      server.stderr.on('data', (d) => (out += d));
      const exited = new Promise<number | null>((r) => server.once('close', (code) => r(code)));
      const guard = setTimeout(() => server.kill('SIGKILL'), 30_000);
      try {
        await waitFor(`s_server to accept (output: ${out})`, () => out.includes('ACCEPT'), 15_000);
        const client = await openssl(['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', cert, '-verify_return_error', '-brief'],
          { input: 'Q\n', env: { OPENSSL_CONF: '/dev/null' }, timeoutMs: 15_000 });
        const text = client.stdout + client.stderr;
        expect(text, explain(client)).toContain('CONNECTION ESTABLISHED');
        expect(text).toContain('Protocol version: TLSv1.3');
        expect(text).toContain(`Signature type: ${signature}`);
        expect(text).toContain('Verification: OK');
      } finally {
        server.stdin.end();
        // -naccept 1: s_server ends after the one client; bounded all the same.
        await Promise.race([exited, new Promise<void>((r) => setTimeout(() => { server.kill('SIGKILL'); r(); }, 10_000))]);
        clearTimeout(guard);
      }
    }
  });

  it('the PIN can come from the engine section of the openssl config instead of the URI', async () => {
    const dir = join(work, 'pin-in-config');
    mkdirSync(dir, { recursive: true });
    const withPin = { ...env, OPENSSL_CONF: writeEngineConfig(dir, `PIN = ${PIN}`) };
    const r = await openssl(['dgst', '-sha256', '-engine', 'pkcs11', '-keyform', 'engine', '-sign', uri('eng-rsa', false),
      '-out', file('config-pin.sig'), file('message.txt')], { env: withPin, cwd: work });
    expect(r.status, explain(r)).toBe(0);
    const v = ok(await openssl(['dgst', '-sha256', '-verify', file('rsa.pem'), '-signature', file('config-pin.sig'), file('message.txt')]));
    expect(v.stdout).toContain('Verified OK');
  });

  it('a wrong PIN in the URI fails the signature', async () => {
    const r = await ossl(['dgst', '-sha256', '-engine', 'pkcs11', '-keyform', 'engine', '-sign',
      `pkcs11:token=${TOKEN};object=eng-rsa;type=private?pin-value=0000`, '-out', file('nope.sig'), file('message.txt')]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/PIN|Login/i);
    // …and the right one still works afterwards.
    ok(await ossl(['dgst', '-sha256', '-engine', 'pkcs11', '-keyform', 'engine', '-sign', uri('eng-rsa'), '-out', file('again.sig'), file('message.txt')]));
  });
});
