// OpenSSL 3 with libengine-pkcs11-openssl, MODULE_PATH = libntls-pkcs11.so (the module starts
// its relay from the ntls-client config folder named by NTLS_CLIENT_HOME): req -x509 and
// dgst -sign with keys that never leave ntls, verified by plain openssl, and s_server serving
// TLS 1.3 with a token key.
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, openssl, PKCS11_ENGINE, waitFor, type ToolResult } from '../support/e2e.js';
import { moduleTool, moduleWorld, PIN, type ModuleWorld } from './support.js';
import { freePort } from '../support/ports.js';

let world: ModuleWorld;
let env: NodeJS.ProcessEnv;
const file = (n: string) => join(world.work, n);
const ok = (r: ToolResult) => {
  expect(r.status, explain(r)).toBe(0);
  return r;
};
const uri = (object: string) => `pkcs11:token=eve-token;object=${object};type=private?pin-value=${PIN}`;
const ossl = (args: string[]) => openssl(args, { env, cwd: world.work, timeoutMs: 60_000 });

beforeAll(async () => {
  world = await moduleWorld('eve', { initialize: true });
  const config = file('openssl-ntls.cnf');
  writeFileSync(config, [
    'openssl_conf = openssl_init',
    '[openssl_init]',
    'engines = engine_section',
    '[engine_section]',
    'pkcs11 = pkcs11_section',
    '[pkcs11_section]',
    'engine_id = pkcs11',
    `dynamic_path = ${PKCS11_ENGINE}`,
    `MODULE_PATH = ${world.module}`,
    'init = 0',
    '',
  ].join('\n'));
  env = { ...world.env, OPENSSL_CONF: config };
  const user = (args: string[]) => moduleTool(world, ['--slot', '0', '--login', '--pin', PIN, ...args]);
  ok(await user(['--keypairgen', '--key-type', 'rsa:2048', '--label', 'eng-rsa', '--id', '11']));
  ok(await user(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'eng-ec', '--id', '12']));
  for (const [id, name] of [['11', 'rsa'], ['12', 'ec']] as const) {
    ok(await moduleTool(world, ['--slot', '0', '--read-object', '--type', 'pubkey', '--id', id, '-o', file(`${name}.der`)]));
    ok(await openssl(['pkey', '-pubin', '-inform', 'DER', '-in', file(`${name}.der`), '-out', file(`${name}.pem`)]));
  }
  writeFileSync(file('message.txt'), 'signed by a key that never left ntls\n');
});

afterAll(async () => {
  await world?.close();
});

describe('openssl with the pkcs11 engine on libntls-pkcs11.so', () => {
  it('dgst -sign with RSA and EC keys in ntls; plain openssl verifies', async () => {
    for (const name of ['rsa', 'ec']) {
      ok(await ossl(['dgst', '-sha256', '-engine', 'pkcs11', '-keyform', 'engine', '-sign', uri(`eng-${name}`), '-out', file(`${name}.sig`), file('message.txt')]));
      const v = ok(await openssl(['dgst', '-sha256', '-verify', file(`${name}.pem`), '-signature', file(`${name}.sig`), file('message.txt')]));
      expect(v.stdout, name).toContain('Verified OK');
    }
  });

  it('req -x509 makes a self-signed certificate with the ntls key; openssl verifies it', async () => {
    ok(await ossl(['req', '-new', '-x509', '-engine', 'pkcs11', '-keyform', 'engine', '-key', uri('eng-ec'), '-subj', '/CN=ntls-module',
      '-days', '1', '-sha256', '-out', file('cert.pem')]));
    expect(ok(await openssl(['verify', '-CAfile', file('cert.pem'), file('cert.pem')])).stdout).toContain('OK');
    const pub = ok(await openssl(['x509', '-in', file('cert.pem'), '-pubkey', '-noout']));
    expect(pub.stdout.trim()).toBe(readFileSync(file('ec.pem'), 'utf8').trim());
  });

  it('s_server serves TLS 1.3 with the ntls-held EC key; s_client verifies', async () => {
    const cert = file('server.pem');
    ok(await ossl(['req', '-new', '-x509', '-engine', 'pkcs11', '-keyform', 'engine', '-key', uri('eng-ec'), '-subj', '/CN=localhost',
      '-days', '1', '-out', cert]));
    const port = await freePort();
    const server = spawn('openssl', ['s_server', '-engine', 'pkcs11', '-keyform', 'engine', '-key', uri('eng-ec'), '-cert', cert,
      '-accept', `127.0.0.1:${port}`, '-naccept', '1'], { env: { ...process.env, ...env }, cwd: world.work, stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    server.stdout.on('data', (d) => (out += d));
    server.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => server.once('close', (code) => r(code)));
    const guard = setTimeout(() => server.kill('SIGKILL'), 60_000);
    try {
      await waitFor(`s_server to accept (output: ${out})`, () => out.includes('ACCEPT'), 20_000);
      const client = await openssl(['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', cert, '-verify_return_error', '-brief'],
        { input: 'Q\n', env: { OPENSSL_CONF: '/dev/null' }, timeoutMs: 20_000 });
      const text = client.stdout + client.stderr;
      expect(text, explain(client)).toContain('CONNECTION ESTABLISHED');
      expect(text).toContain('Protocol version: TLSv1.3');
      expect(text).toContain('Signature type: ECDSA');
      expect(text).toContain('Verification: OK');
    } finally {
      server.stdin.end();
      await Promise.race([exited, new Promise<void>((r) => setTimeout(() => { server.kill('SIGKILL'); r(); }, 10_000))]);
      clearTimeout(guard);
    }
  });
});
