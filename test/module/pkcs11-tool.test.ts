// Stock OpenSC pkcs11-tool (0.23) on libntls-pkcs11.so, which starts its own relay from the
// ntls-client config folder: the whole mechanism list of the partition (what p11-kit-client.so
// 0.24.1 hides included), pkcs11-tool's own test suites (--test, --test-ec, --test-fork,
// --test-threads), and the mechanisms with parameters, each cross-checked with openssl.
// pkcs11-tool 0.23 has no AES-GCM in --encrypt ("Mechanism AES-GCM illegal"): GCM is checked by
// module-check (mechanisms.test.ts) and Java (java.test.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NtlsClient } from '../../src/client/ntls-client.js';
import { explain, openssl, run, type ToolResult } from '../support/e2e.js';
import { here, moduleTool, moduleWorld, PIN, type ModuleWorld } from './support.js';

let world: ModuleWorld;
const file = (name: string) => join(world.work, name);
const ok = (r: ToolResult) => {
  expect(r.status, explain(r)).toBe(0);
  return r;
};
const user = (args: string[]) => moduleTool(world, ['--slot', '0', '--login', '--pin', PIN, ...args]);
const message = Buffer.from('signed through ntls\'s own PKCS#11 module\n');

beforeAll(async () => {
  world = await moduleWorld('tina', { initialize: true });
  writeFileSync(file('message.txt'), message);
});

afterAll(async () => {
  await world?.close();
});

describe('pkcs11-tool --module libntls-pkcs11.so', () => {
  it('-L lists the client\'s one partition, through a relay the module started', async () => {
    const r = ok(await moduleTool(world, ['-L']));
    expect(r.stdout).toContain(`serial num         : ${world.serial}`);
    expect(r.stdout).toContain('token label        : tina-token');
    expect(world.daemon.log().some((l) => l.includes('NTLS Client "tina" connected and authenticated'))).toBe(true);
  });

  // A program run per signature starts a relay each time: the relay loads its own code only (the
  // whole CLI took two thirds of its start-up; bench/module-relay-start.ts), never the other
  // commands' (certificates, HA groups, the library, bench).
  it.skipIf(!('register' in nodeModule))('the relay the module starts loads the relay\'s code only (ntls-client.js → p11-relay.js)', async () => {
    const imports = file('relay-imports.txt');
    const r = ok(await moduleTool(world, ['-L'], {
      env: { NODE_OPTIONS: `--import=${join(here, 'fixtures', 'record-imports.mjs')}`, NTLS_TEST_IMPORTS: imports },
    }));
    expect(r.stdout).toContain('token label        : tina-token');
    const loaded = readFileSync(imports, 'utf8').split('\n').filter((url) => url.startsWith('file:'));
    const ours = (name: string) => loaded.some((url) => url.endsWith(`/dist/src/${name}`));
    expect(ours('cli/ntls-client.js') && ours('cli/p11-relay.js') && ours('cli/relay-commands.js') && ours('client/relay.js'), loaded.join('\n')).toBe(true);
    for (const name of ['cli/ntls-client-commands.js', 'cli/ha-relay.js', 'certificates/self-signed.js', 'client/ntls-client.js', 'client/ha-connection.js', 'client/bench.js']) {
      expect(ours(name), name).toBe(false);
    }
    expect(loaded.filter((url) => url.includes('/node_modules/@peculiar/'))).toEqual([]);
  });

  it('-M lists every mechanism the partition offers, those p11-kit-client.so hides included', async () => {
    const client = NtlsClient.fromConfig({ folder: world.folder });
    let offered: number[];
    try {
      offered = await client.server().getMechanismList(0);
    } finally {
      await client.close();
    }
    const r = ok(await moduleTool(world, ['--slot', '0', '-M']));
    const listed = r.stdout.split('\n').filter((l) => /^ {2}\S/.test(l));
    expect(listed).toHaveLength(offered.length);
    for (const name of ['ECDSA-SHA256,', 'EDDSA,', 'EC-EDWARDS-KEY-PAIR-GEN,', 'ECDH1-DERIVE,', 'AES-GCM,', 'AES-CBC,', 'AES-CBC-PAD,',
      'AES-CTR,', 'AES-KEY-WRAP,', 'SHA256-RSA-PKCS-PSS,', 'RSA-PKCS-OAEP,']) {
      expect(r.stdout, name).toContain(`  ${name}`);
    }
  });

  it('generates the keys the suites use', async () => {
    ok(await user(['--keypairgen', '--key-type', 'rsa:2048', '--label', 'rsa-key', '--id', '01']));
    ok(await user(['--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'ec-key', '--id', '02']));
    ok(await user(['--keypairgen', '--key-type', 'EC:edwards25519', '--label', 'ed-key', '--id', '05']));
    ok(await user(['--keygen', '--key-type', 'AES:32', '--label', 'aes-key', '--id', '03']));
    const key = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');
    writeFileSync(file('aes.key'), key);
    ok(await user(['--write-object', file('aes.key'), '--type', 'secrkey', '--key-type', 'AES:32', '--label', 'aes-known', '--id', '06']));
    ok(await moduleTool(world, ['--slot', '0', '--read-object', '--type', 'pubkey', '--id', '02', '-o', file('ec.der')]));
    ok(await openssl(['pkey', '-pubin', '-inform', 'DER', '-in', file('ec.der'), '-out', file('ec.pem')]));
    // pkcs11-tool 0.23 writes an Ed25519 public key out as PEM already.
    ok(await moduleTool(world, ['--slot', '0', '--read-object', '--type', 'pubkey', '--id', '05', '-o', file('ed.pem')]));
  });

  it('--test --login: no errors (the empty-buffer C_GenerateRandom check p11-kit-client.so fails passes here)', async () => {
    const r = ok(await user(['--test']));
    expect(`${r.stdout}\n${r.stderr}`).not.toContain('ERR:');
    expect(r.stdout).toMatch(/^No errors$/m);
    expect(r.stdout).toContain('all 4 digest functions seem to work');
    expect(r.stdout).toMatch(/Decryption \(currently only for RSA\)\n\s+testing key \d+ \(rsa-key\)\n\s+RSA-PKCS: OK/);
  });

  it('--test-ec: generates, signs with a hash-ECDSA mechanism, changes attributes, deletes', async () => {
    const r = ok(await user(['--test-ec', '--session-rw', '--id', 'ee', '--key-type', 'EC:prime256v1']));
    expect(r.stdout).toContain('==> OK');
  });

  it('--test-fork: the child\'s C_Initialize succeeds', async () => {
    const r = ok(await moduleTool(world, ['--test-fork']));
    expect(r.stdout).toContain('Calling C_Initialize in forked child process');
  });

  it('--test-threads: four threads initialise (CKF_OS_LOCKING_OK and NULL) and read the token together', async () => {
    // -L -M keep the main thread busy meanwhile: pkcs11-tool sleeps 30 s when its threads outlive it.
    const r = ok(await moduleTool(world, ['--test-threads', 'ILGISLT0', '--test-threads', 'ILGISLT0', '--test-threads', 'INGISLT0',
      '--test-threads', 'ILGISLT0', '-L', '-M'], { timeoutMs: 90_000 }));
    const text = `${r.stdout}\n${r.stderr}`;
    // Every thread ends with CKR_OK (one C_Initialize wins, the others are CKR_CRYPTOKI_ALREADY_INITIALIZED).
    expect(text).toContain('test_threads all threads have ended with CKR_OK');
    expect(text.match(/Test thread \d returning rv = 0/g), text).toHaveLength(4);
    expect(text.match(/C_GetTokenInfo from slot_index 0/g)).toHaveLength(4);
  });

  it('ECDSA-SHA256 (the hash in the token, which p11-kit-client.so refuses): openssl verifies', async () => {
    ok(await user(['--sign', '-m', 'ECDSA-SHA256', '--id', '02', '-i', file('message.txt'), '-o', file('ec.sig'), '--signature-format', 'openssl']));
    const v = ok(await openssl(['dgst', '-sha256', '-verify', file('ec.pem'), '-signature', file('ec.sig'), file('message.txt')]));
    expect(v.stdout).toContain('Verified OK');
  });

  it('EdDSA (Ed25519): openssl verifies', async () => {
    ok(await user(['--sign', '-m', 'EDDSA', '--id', '05', '-i', file('message.txt'), '-o', file('ed.sig')]));
    expect(readFileSync(file('ed.sig'))).toHaveLength(64);
    const v = ok(await openssl(['pkeyutl', '-verify', '-pubin', '-inkey', file('ed.pem'), '-rawin', '-in', file('message.txt'), '-sigfile', file('ed.sig')]));
    expect(v.stdout).toContain('Signature Verified Successfully');
  });

  it('AES-CBC and AES-CBC-PAD with an IV: what openssl gives, both ways', async () => {
    const iv = '000102030405060708090a0b0c0d0e0f';
    const key = readFileSync(file('aes.key')).toString('hex');
    const plain = Buffer.alloc(61);
    for (let i = 0; i < plain.length; i++) plain[i] = (i * 13 + 1) & 0xff;
    writeFileSync(file('plain61.bin'), plain);
    writeFileSync(file('plain64.bin'), Buffer.concat([plain, Buffer.from([1, 2, 3])]));
    for (const [mechanism, input, pad] of [['AES-CBC', 'plain64.bin', ['-nopad']], ['AES-CBC-PAD', 'plain61.bin', []]] as const) {
      ok(await user(['--encrypt', '-m', mechanism, '--id', '06', '--iv', iv, '-i', file(input), '-o', file(`${mechanism}.enc`)]));
      ok(await openssl(['enc', '-aes-256-cbc', ...pad, '-K', key, '-iv', iv, '-in', file(input), '-out', file(`${mechanism}.ossl`)]));
      expect(readFileSync(file(`${mechanism}.enc`)).equals(readFileSync(file(`${mechanism}.ossl`))), mechanism).toBe(true);
      ok(await user(['--decrypt', '-m', mechanism, '--id', '06', '--iv', iv, '-i', file(`${mechanism}.ossl`), '-o', file(`${mechanism}.dec`)]));
      expect(readFileSync(file(`${mechanism}.dec`)).equals(readFileSync(file(input))), mechanism).toBe(true);
    }
  });

  it('ECDH1-DERIVE with an openssl peer: the same secret on both sides', async () => {
    ok(await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('peer.pem')]));
    ok(await openssl(['pkey', '-in', file('peer.pem'), '-pubout', '-outform', 'DER', '-out', file('peer.der')]));
    ok(await user(['--derive', '-m', 'ECDH1-DERIVE', '--id', '02', '-i', file('peer.der'), '-o', file('secret.token')]));
    ok(await openssl(['pkeyutl', '-derive', '-inkey', file('peer.pem'), '-peerkey', file('ec.pem'), '-out', file('secret.ossl')]));
    const secret = readFileSync(file('secret.token'));
    expect(secret).toHaveLength(32);
    expect(secret.equals(readFileSync(file('secret.ossl')))).toBe(true);
  });

  it('ECDH1-COFACTOR-DERIVE with the same openssl peer: P-256\'s cofactor is 1, so openssl\'s ECDH secret', async () => {
    ok(await user(['--derive', '-m', 'ECDH1-COFACTOR-DERIVE', '--id', '02', '-i', file('peer.der'), '-o', file('cofactor.token')]));
    const secret = readFileSync(file('cofactor.token'));
    expect(secret.toString('hex')).toBe(readFileSync(file('secret.ossl')).toString('hex'));
    expect(secret).toHaveLength(32);
  });

  it('GnuTLS p11tool loads the module as a provider and lists the token', async () => {
    const r = ok(await run('p11tool', ['--provider', world.module, '--list-tokens'], { env: world.env }));
    expect(r.stdout).toContain('tina-token');
    expect(r.stdout).toContain(`Serial: ${world.serial}`);
  });
});
