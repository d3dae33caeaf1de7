// The passthrough backend in the running daemon: a module that cannot be used stops the start
// with the guide's lines; a bad mapping is a configuration error; partitions are the module's
// tokens (the admin CLI lists them and refuses to create or delete them).
import { createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeHome, removeHome, runNtls, startDaemon, type Daemon } from '../support/daemon.js';
import { SOFTHSM_MODULE, SoftHsm, type SoftHsmToken } from '../support/softhsm.js';
import { ClientHost, expectOk } from '../client/support.js';
import { keyIdOf } from '../../src/client/public-key.js';

let softhsm: SoftHsm;
let token: SoftHsmToken;
const homes: string[] = [];

beforeAll(() => {
  softhsm = new SoftHsm();
  token = softhsm.initToken('daemon-token', 'token-so', 'token-user');
});

afterAll(() => {
  for (const h of homes) removeHome(h);
  softhsm?.remove();
});

function home(pkcs11: Record<string, unknown>): string {
  const h = makeHome({ hsm: { backend: 'pkcs11', pkcs11 } });
  homes.push(h);
  return h;
}

const bodies = (h: string) => readFileSync(join(h, 'logs', 'lunalogs'), 'utf8').split('\n').filter(Boolean).map((l) => l.slice(l.indexOf(']: ') + 3));

describe('start-up', () => {
  it('a module that does not load: "Fail to initialize token interface", no start, exit 1', async () => {
    const h = home({ module: '/nonexistent/libnothing.so', tokens: [{ partition: 'p', label: 'x' }] });
    const result = await runNtls(['start', '--home', h, '--quiet'], softhsm.env);
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('/nonexistent/libnothing.so');
    expect(bodies(h).some((b) => b.includes('Fail to initialize token interface : RC_GENERAL_ERROR'))).toBe(true);
    expect(bodies(h).some((b) => b.includes('NTLS is online'))).toBe(false);
  });

  it('a token the module does not have: the same, naming the partition', async () => {
    const h = home({ module: SOFTHSM_MODULE, tokens: [{ partition: 'ghost', serial: '0000000000000000' }] });
    const result = await runNtls(['start', '--home', h, '--quiet'], softhsm.env);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('ghost');
    expect(bodies(h).some((b) => b.includes('Fail to initialize token interface : RC_GENERAL_ERROR'))).toBe(true);
  });

  it('a mapping without label or serial, or no module: configuration errors naming the key, exit 2', async () => {
    const noMapping = await runNtls(['start', '--home', home({ module: SOFTHSM_MODULE, tokens: [{ partition: 'p' }] }), '--quiet'], softhsm.env);
    expect(noMapping.status).toBe(2);
    expect(noMapping.stderr).toContain('hsm.pkcs11.tokens.0');
    const noModule = await runNtls(['start', '--home', home({ tokens: [{ partition: 'p', label: 'x' }] }), '--quiet'], softhsm.env);
    expect(noModule.status).toBe(2);
    expect(noModule.stderr).toContain('hsm.pkcs11.module');
  });
});

describe('administration', () => {
  let daemon: Daemon;
  let h: string;
  beforeAll(async () => {
    h = home({ module: SOFTHSM_MODULE, tokens: [{ partition: 'front', serial: token.serial }] });
    daemon = await startDaemon(h, softhsm.env);
  });
  afterAll(async () => { await daemon?.stop(); });

  it('the start message offers a partition that is there: the mapped one, not "default"', () => {
    expect(daemon.stdout).toContain(`ntls client assign-partition --client NAME --partition front --home ${h}`);
  });

  it('lists the mapped tokens as partitions', async () => {
    const listed = await runNtls(['partition', 'list', '--json', '--home', h]);
    expect(listed.status).toBe(0);
    const rows = JSON.parse(listed.stdout) as Array<{ name: string; serial: string; initialized: boolean; tokenObjects: number | null }>;
    expect(rows).toEqual([expect.objectContaining({ name: 'front', serial: token.serial, initialized: true, tokenObjects: null })]);
  });

  it('refuses to create or delete partitions: they are the module\'s tokens', async () => {
    const created = await runNtls(['partition', 'create', '--label', 'more', '--so-pin', 'so-pin-1', '--home', h, '--json']);
    expect(created.status).not.toBe(0);
    expect(created.stderr).toContain('NTLS_ERR_PKCS11_BACKEND');
    const deleted = await runNtls(['partition', 'delete', '-p', 'front', '--force', '--home', h, '--json']);
    expect(deleted.status).not.toBe(0);
    expect(deleted.stderr).toContain('NTLS_ERR_PKCS11_BACKEND');
  });

  it('ntls-client exports the public keys of pairs the module made (SoftHSM2 has no CKA_PUBLIC_KEY_INFO): EC, RSA, Ed25519', async () => {
    const host = new ClientHost('front-user');
    try {
      expectOk(await host.run('create-cert', '--cn', 'front-user'));
      expectOk(await runNtls(['client', 'register', '-c', 'front-user', '--cert', host.certificateFile, '--hostname', '127.0.0.1', '--home', h]));
      expectOk(await runNtls(['client', 'assign-partition', '-c', 'front-user', '-p', 'front', '--home', h]));
      expectOk(await host.run('add-server', '--host', '127.0.0.1', '--port', String(daemon.port), '--cert', join(h, 'server', 'server.pem'), '--name', 'front'));
      for (const type of ['ec-p256', 'rsa-2048', 'ed25519']) {
        const publicOut = join(host.folder, `${type}.pem`);
        const made = JSON.parse(expectOk(await host.run('generate-key', '-t', type, '-l', type, '--public-out', publicOut, '--pin', token.userPin, '--json')).stdout) as { id: string };
        const exported = expectOk(await host.run('export-public-key', '-l', type)).stdout;
        expect(exported, type).toBe(readFileSync(publicOut, 'utf8'));
        // The default CKA_ID is the key identifier of that public key.
        expect(made.id, type).toBe(keyIdOf(createPublicKey(exported)).toString('hex'));
      }
    } finally {
      host.remove();
    }
  });

  it('stops cleanly: the module hosts go with the daemon', async () => {
    const stopped = await daemon.stop();
    expect(stopped.status).toBe(0);
  });
});
