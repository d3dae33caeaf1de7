// Java 17's SunPKCS11 provider on libntls-pkcs11.so (java/SunPkcs11Check.java, run as a source
// file): AES-GCM, AES-CBC and AES-ECB against SunJCE, ECDH against SunEC, SHA256withECDSA and
// RSASSA-PSS verified by the JDK's own providers; keytool -genkeypair and jarsigner with a key in
// the token. And AES-ECB through p11-kit-client.so 0.24.1, which the daemon's empty byte array
// for an empty final makes work.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, P11KIT_CLIENT, run, startRelay, type Relay, type ToolResult } from '../support/e2e.js';
import { here, moduleWorld, PIN, type ModuleWorld } from './support.js';

let world: ModuleWorld;
let config: string;
const CHECK = join(here, 'java', 'SunPkcs11Check.java');
const ok = (r: ToolResult) => {
  expect(r.status, explain(r)).toBe(0);
  return r;
};

/**
 * The SunPKCS11 configuration docs/client.md gives: ECDH needs the EC private keys Java makes
 * to allow derivation, and the derived secret to be readable (the token's keys are sensitive
 * unless told otherwise).
 */
function sunPkcs11Config(name: string, library: string): string {
  const file = join(world.work, `${name}.cfg`);
  writeFileSync(file, [
    `name = ${name}`,
    `library = ${library}`,
    'slot = 0',
    'attributes(generate, CKO_PRIVATE_KEY, CKK_EC) = {',
    '  CKA_DERIVE = true',
    '}',
    'attributes(generate, CKO_SECRET_KEY, CKK_GENERIC_SECRET) = {',
    '  CKA_SENSITIVE = false',
    '  CKA_EXTRACTABLE = true',
    '}',
    '',
  ].join('\n'));
  return file;
}

const java = (args: string[], env: NodeJS.ProcessEnv = world.env) => run('java', args, { env, cwd: world.work, timeoutMs: 180_000 });
const store = (cfg: string) => ['-keystore', 'NONE', '-storetype', 'PKCS11', '-providerClass', 'sun.security.pkcs11.SunPKCS11', '-providerArg', cfg, '-storepass', PIN];

beforeAll(async () => {
  world = await moduleWorld('jill', { initialize: true });
  config = sunPkcs11Config('ntls', world.module);
});

afterAll(async () => {
  await world?.close();
});

describe('Java 17 SunPKCS11 on libntls-pkcs11.so', () => {
  it('AES-GCM, AES-CBC, AES-ECB, ECDH, SHA256withECDSA and RSASSA-PSS agree with the JDK\'s software providers', async () => {
    const r = await java([CHECK, config, PIN, 'aes-gcm', 'aes-cbc', 'aes-ecb', 'ecdh', 'ecdsa', 'rsa-pss']);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('OK ')), explain(r)).toEqual(
      ['OK aes-gcm', 'OK aes-cbc', 'OK aes-ecb', 'OK ecdh', 'OK ecdsa', 'OK rsa-pss']);
    expect(r.status, explain(r)).toBe(0);
  });

  it('keytool -genkeypair makes a key pair and its certificate in the token; keytool -list shows them', async () => {
    ok(await run('keytool', ['-genkeypair', '-alias', 'signer', '-keyalg', 'EC', '-groupname', 'secp256r1', '-dname', 'CN=ntls-java',
      ...store(config)], { env: world.env, cwd: world.work, timeoutMs: 120_000 }));
    const list = ok(await run('keytool', ['-list', ...store(config)], { env: world.env, cwd: world.work, timeoutMs: 120_000 }));
    expect(list.stdout).toMatch(/^signer, PrivateKeyEntry,/m);
  });

  it('jarsigner signs a jar with that key; jarsigner -verify accepts it', async () => {
    writeFileSync(join(world.work, 'hello.txt'), 'signed in ntls\n');
    ok(await run('jar', ['cf', 'app.jar', 'hello.txt'], { cwd: world.work, timeoutMs: 60_000 }));
    const signed = ok(await run('jarsigner', [...store(config), 'app.jar', 'signer'], { env: world.env, cwd: world.work, timeoutMs: 120_000 }));
    expect(signed.stdout).toContain('jar signed.');
    const verified = ok(await run('jarsigner', ['-verify', 'app.jar'], { cwd: world.work, timeoutMs: 60_000 }));
    expect(verified.stdout).toContain('jar verified.');
  });
});

describe('Java 17 SunPKCS11 on p11-kit-client.so 0.24.1', () => {
  let relay: Relay;

  afterAll(async () => {
    await relay?.stop();
  });

  it('AES-ECB works: the daemon answers the empty final buffer with an empty byte array', async () => {
    const files = { name: 'jill', dir: world.folder, cert: join(world.folder, 'jill.pem'), key: join(world.folder, 'jillKey.pem') };
    relay = await startRelay(world.daemon, files, join(world.work, 'relay.sock'));
    const cfg = sunPkcs11Config('p11kit', P11KIT_CLIENT);
    const r = await java([CHECK, cfg, PIN, 'aes-ecb', 'ecdsa'], { P11_KIT_SERVER_ADDRESS: `unix:path=${relay.socketPath}` });
    expect(r.stdout.split('\n').filter((l) => l.startsWith('OK ')), explain(r)).toEqual(['OK aes-ecb', 'OK ecdsa']);
    expect(r.status, explain(r)).toBe(0);
  });
});
