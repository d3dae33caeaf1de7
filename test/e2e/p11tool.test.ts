// GnuTLS p11tool (gnutls-bin) with --provider p11-kit-client.so, through the TLS relay: tokens,
// objects, login, key generation (ECDSA P-256 and RSA-2048), signing tests, public key export.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, removeHome } from '../support/daemon.js';
import {
  P11KIT_CLIENT, createClientCert, createPartition, explain, openssl, p11kitEnv, partitions, pkcs11Tool, registerClient, removeDir, run,
  startE2eDaemon, startRelay, tempDir, type Relay, type ToolResult,
} from '../support/e2e.js';

let daemon: Daemon;
let work: string;
let relay: Relay;
let serial = '';

const PIN = '5678';
const TOKEN = 'gnutls-token';
const TOKEN_URL = `pkcs11:token=${TOKEN}`;
const ok = (r: ToolResult) => {
  expect(r.status, explain(r)).toBe(0);
  return r;
};
const p11tool = (args: string[], pin = PIN) => run('p11tool', ['--provider', P11KIT_CLIENT, ...args], {
  env: { ...p11kitEnv(relay.socketPath), GNUTLS_PIN: pin }, cwd: work,
});

beforeAll(async () => {
  work = tempDir('ntls-e2e-gnutls-');
  daemon = await startE2eDaemon();
  serial = (await createPartition(daemon, 'gnutls-part')).serial;
  const client = await createClientCert('gina', work);
  await registerClient(daemon, client, 'gnutls-part');
  relay = await startRelay(daemon, client, join(work, 'relay.sock'));
});

afterAll(async () => {
  await relay?.stop();
  await daemon?.stop();
  if (daemon) removeHome(daemon.home);
  if (work) removeDir(work);
});

describe('p11tool through the relay', () => {
  it('--initialize (C_InitToken, GnuTLS\'s unterminated 32-byte label) and --initialize-pin set up the token', async () => {
    const so = { GNUTLS_SO_PIN: '12345678' };
    const init = await run('p11tool', ['--provider', P11KIT_CLIENT, '--initialize', '--label', TOKEN, `pkcs11:serial=${serial}`], {
      env: { ...p11kitEnv(relay.socketPath), ...so }, cwd: work,
    });
    expect(init.status, explain(init)).toBe(0);
    expect(init.stdout + init.stderr).toContain('Token was successfully initialized');
    const pin = await run('p11tool', ['--provider', P11KIT_CLIENT, '--initialize-pin', `pkcs11:serial=${serial}`], {
      env: { ...p11kitEnv(relay.socketPath), ...so, GNUTLS_PIN: PIN }, cwd: work,
    });
    expect(pin.status, explain(pin)).toBe(0);
    const listing = await pkcs11Tool(relay.socketPath, ['-L'], { cwd: work });
    expect(listing.stdout).toContain(`token label        : ${TOKEN}`);
    expect(listing.stdout).toMatch(/token flags\s+:.*token initialized, PIN initialized/);
    const row = (await partitions(daemon)).find((p) => p.serial === serial)!;
    expect(row).toMatchObject({ label: TOKEN, initialized: true });
  });

  it('--list-tokens shows the ntls partition (and only it)', async () => {
    const r = ok(await p11tool(['--list-tokens']));
    expect(r.stdout).toContain(`Label: ${TOKEN}`);
    expect(r.stdout).toContain(`Serial: ${serial}`);
    expect(r.stdout).toContain('Manufacturer: NTLS');
    expect(r.stdout).toMatch(/Flags: .*Requires login/);
    expect(r.stdout.match(/^Token \d+:/gm)).toHaveLength(1);
    const urls = ok(await p11tool(['--list-token-urls']));
    expect(urls.stdout).toContain(`serial=${serial};token=${TOKEN}`);
  });

  it('--list-all on a fresh token lists nothing', async () => {
    // p11tool's own wording and exit status (2) for an empty result.
    const r = await p11tool(['--list-all', TOKEN_URL]);
    expect(r.stderr, explain(r)).toContain('No matching objects found');
    expect(r.stdout).not.toMatch(/^Object \d+:/m);
  });

  it('login and --generate-privkey ecdsa (P-256) and rsa (2048)', async () => {
    const ec = ok(await p11tool(['--login', '--generate-privkey', 'ecdsa', '--curve', 'secp256r1', '--label', 'gt-ec', '--outfile', join(work, 'gt-ec.pem'), TOKEN_URL]));
    expect(ec.stderr + ec.stdout).not.toMatch(/error/i);
    ok(await p11tool(['--login', '--generate-privkey', 'rsa', '--bits', '2048', '--label', 'gt-rsa', '--outfile', join(work, 'gt-rsa.pem'), TOKEN_URL]));
    const pub = ok(await openssl(['pkey', '-pubin', '-in', join(work, 'gt-rsa.pem'), '-text', '-noout']));
    expect(pub.stdout).toContain('Public-Key: (2048 bit)');
  });

  it('--list-privkeys (logged in) shows both private keys; without login they are hidden', async () => {
    const r = ok(await p11tool(['--login', '--list-privkeys', TOKEN_URL]));
    expect(r.stdout).toMatch(/Type: Private key \(EC\/ECDSA-SECP256R1\)\n\s+Label: gt-ec/);
    expect(r.stdout).toMatch(/Type: Private key \(RSA-2048\)\n\s+Label: gt-rsa/);
    expect(r.stdout).toMatch(/Flags: .*CKA_PRIVATE; .*CKA_SENSITIVE;/);
    const all = ok(await p11tool(['--list-all', TOKEN_URL]));
    expect(all.stdout).toMatch(/Type: Public key \(EC\/ECDSA-SECP256R1\)/);
    expect(all.stdout).not.toMatch(/Type: Private key/);
  });

  it('--test-sign signs in ntls and checks against the token\'s public key (EC and RSA)', async () => {
    for (const label of ['gt-ec', 'gt-rsa']) {
      const r = ok(await p11tool(['--login', '--test-sign', `${TOKEN_URL};object=${label};type=private`]));
      expect(r.stderr).toMatch(/Verifying against public key in the token\.\.\. ok/);
    }
  });

  it('--export-pubkey gives the key generate-privkey printed', async () => {
    const r = ok(await p11tool(['--login', '--export-pubkey', `${TOKEN_URL};object=gt-ec;type=public`, '--outfile', join(work, 'exported.pem')]));
    expect(r.status).toBe(0);
    ok(await openssl(['pkey', '-pubin', '-in', join(work, 'exported.pem'), '-outform', 'DER', '-out', join(work, 'a.der')]));
    ok(await openssl(['pkey', '-pubin', '-in', join(work, 'gt-ec.pem'), '-outform', 'DER', '-out', join(work, 'b.der')]));
    expect(readFileSync(join(work, 'a.der')).equals(readFileSync(join(work, 'b.der')))).toBe(true);
  });

  it('--list-mechanisms and --generate-random', async () => {
    const m = ok(await p11tool(['--list-mechanisms', TOKEN_URL]));
    for (const name of ['CKM_RSA_PKCS_KEY_PAIR_GEN', 'CKM_RSA_PKCS_PSS', 'CKM_ECDSA_KEY_PAIR_GEN', 'CKM_ECDSA', 'CKM_AES_ECB', 'CKM_SHA256_HMAC']) {
      expect(m.stdout, name).toContain(name);
    }
    ok(await p11tool(['--generate-random', '48', '--outfile', join(work, 'random.bin'), TOKEN_URL]));
    expect(readFileSync(join(work, 'random.bin'))).toHaveLength(48);
  });

  it('a wrong PIN is refused', async () => {
    const r = await p11tool(['--login', '--list-privkeys', TOKEN_URL], '0000');
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/PIN|login/i);
  });

  it('--delete removes a key pair\'s private half', async () => {
    ok(await p11tool(['--login', '--batch', '--delete', `${TOKEN_URL};object=gt-rsa;type=private`]));
    const r = ok(await p11tool(['--login', '--list-privkeys', TOKEN_URL]));
    expect(r.stdout).not.toContain('gt-rsa');
    expect(r.stdout).toContain('gt-ec');
  });
});
