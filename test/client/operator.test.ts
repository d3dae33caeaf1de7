// Issue 16, the client side of a first week: what ntls-client says when it cannot link (what
// this side can know, and a suggestion that runs as written), and a running relay that follows
// a regenerated server certificate without a restart. Runs the `p11-relay --listen` blocks of
// README.md and docs/client.md (a relay in a missing $XDG_RUNTIME_DIR/ntls folder, pkcs11-tool
// through p11-kit-client.so on its socket).
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSelfSignedCertificate } from '../../src/certificates/self-signed.js';
import { removeHome, runNtls } from '../support/daemon.js';
import { CO_PIN, ClientHost, expectOk, expectOneLineFailure, initialiseSlot, runClient, setUp, startRelay, type Setup } from './support.js';

const P11KIT_CLIENT = '/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so';

let s: Setup;
let scratch: string;

beforeAll(async () => {
  s = await setUp();
  await initialiseSlot(s.alice);
  scratch = mkdtempSync(join(tmpdir(), 'ntls-operator-'));
});
afterAll(async () => {
  await s?.daemon.stop();
  if (s) removeHome(s.home);
  s?.alice.remove();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

function flags(host: ClientHost, serverCert: string, name = host.name): string[] {
  return ['--server', `127.0.0.1:${s.daemon.port}`, '--server-cert', serverCert,
    '--cert', join(host.folder, `${host.name}.pem`), '--key', join(host.folder, `${host.name}Key.pem`), '--name', name];
}

function pkcs11ToolList(socket: string): ReturnType<typeof spawnSync> {
  return spawnSync('pkcs11-tool', ['--module', P11KIT_CLIENT, '-L'], {
    env: { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${socket}` }, encoding: 'utf8', timeout: 20_000,
  });
}

async function waitFor(what: string, test: () => boolean): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (test()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('flag mode checks the certificate first', () => {
  it('ping --cert expired.pem: NTLS_ERR_CLIENT_CERT_EXPIRED, one line, before any link', async () => {
    const old = new ClientHost('old');
    try {
      const made = await createSelfSignedCertificate({
        commonName: 'old', keyType: 'ecdsa-p256', usage: 'client', notBefore: new Date(Date.now() - 20 * 86400_000), notAfter: new Date(Date.now() - 86400_000),
      });
      writeFileSync(join(old.folder, 'old.pem'), made.certificatePem);
      writeFileSync(join(old.folder, 'oldKey.pem'), made.keyPem, { mode: 0o600 });
      const before = s.daemon.log().length;
      const line = expectOneLineFailure(await runClient(['ping', ...flags(old, join(s.home, 'server', 'server.pem'))]), 'NTLS_ERR_CLIENT_CERT_EXPIRED');
      expect(line).toContain('expired on');
      // No connection was made: the daemon logged nothing for it.
      expect(s.daemon.log().slice(before).join('\n')).not.toContain('Connection accepted');
    } finally {
      old.remove();
    }
  });
});

describe('a certificate whose start date is to come', () => {
  it('ping --cert: NTLS_ERR_CLIENT_CERT_NOT_YET_VALID naming this host\'s time and the clock, not "expired"', async () => {
    const early = new ClientHost('early');
    try {
      const made = await createSelfSignedCertificate({
        commonName: 'early', keyType: 'ecdsa-p256', usage: 'client', notBefore: new Date(Date.now() + 600_000), notAfter: new Date(Date.now() + 86400_000),
      });
      writeFileSync(join(early.folder, 'early.pem'), made.certificatePem);
      writeFileSync(join(early.folder, 'earlyKey.pem'), made.keyPem, { mode: 0o600 });
      const line = expectOneLineFailure(await runClient(['ping', ...flags(early, join(s.home, 'server', 'server.pem'))]), 'NTLS_ERR_CLIENT_CERT_NOT_YET_VALID');
      expect(line).toContain('is not valid before');
      expect(line).toContain('clock');
    } finally {
      early.remove();
    }
  });
});

describe('flag mode checks the key against the certificate', () => {
  it('ping --key of another certificate: NTLS_ERR_CLIENT_KEY_FILE, one line', async () => {
    const other = new ClientHost('other');
    try {
      expectOk(await other.run('create-cert', '--cn', 'other'));
      const line = expectOneLineFailure(await runClient(['ping', '--server', `127.0.0.1:${s.daemon.port}`, '--server-cert', join(s.home, 'server', 'server.pem'),
        '--cert', join(s.alice.folder, 'alice.pem'), '--key', join(other.folder, 'otherKey.pem')]), 'NTLS_ERR_CLIENT_KEY_FILE');
      expect(line).toContain('is not the key of');
    } finally {
      other.remove();
    }
  });
});

describe('a refusal says what this side knows', () => {
  it('a client registered for another host is not told to register', async () => {
    const bob = new ClientHost('bob');
    try {
      expectOk(await bob.run('create-cert', '--cn', 'bob'));
      expectOk(await runNtls(['client', 'register', '-c', 'bob', '--cert', bob.certificateFile, '--hostname', '10.9.9.9', '--home', s.home]));
      expectOk(await runNtls(['client', 'assign-partition', '-c', 'bob', '-p', 'default', '--home', s.home]));
      expectOk(await bob.run('add-server', '--host', '127.0.0.1', '--port', String(s.daemon.port), '--cert', join(s.home, 'server', 'server.pem'), '--name', 'local'));
      for (const result of [await bob.run('ping'), await runClient(['ping', ...flags(bob, join(s.home, 'server', 'server.pem'))])]) {
        const line = expectOneLineFailure(result, 'NTLS_ERR_CLIENT_REFUSED');
        expect(line).not.toMatch(/ask its administrator to run `ntls client register/);
        expect(line).toContain('sent from 127.0.0.1');
        expect(line).toContain('the certificate is valid');
        expect(line).toContain('ntls client show --client bob');
        expect(line).toContain('ntls client hostip --client bob --hostname 127.0.0.1');
      }
    } finally {
      bob.remove();
    }
  });

  it('a registered client without a partition is told so by verify', async () => {
    const carol = new ClientHost('carol');
    try {
      expectOk(await carol.run('create-cert', '--cn', 'carol'));
      expectOk(await runNtls(['client', 'register', '-c', 'carol', '--cert', carol.certificateFile, '--hostname', '127.0.0.1', '--home', s.home]));
      expectOk(await carol.run('add-server', '--host', '127.0.0.1', '--port', String(s.daemon.port), '--cert', join(s.home, 'server', 'server.pem'), '--name', 'local'));
      const out = expectOk(await carol.run('verify')).stdout;
      expect(out).toContain('0 slot(s)');
      expect(out).toContain('ntls client assign-partition --client carol --partition NAME');
      expect(out).not.toContain('client register');
    } finally {
      carol.remove();
    }
  });
});

describe('p11-relay --listen', () => {
  it('makes the socket\'s missing folder, owner-only', async () => {
    const socket = join(scratch, 'run', 'user', 'ntls.sock');
    const relay = await startRelay(['--listen', socket, '--config-dir', s.alice.folder]);
    try {
      expect(statSync(join(scratch, 'run', 'user')).mode & 0o777).toBe(0o700);
      expect(pkcs11ToolList(socket).stdout).toMatch(/token label\s*:\s*default/);
    } finally {
      relay.child.kill('SIGTERM');
    }
  });

  it('a socket folder other users can write is refused (they could swap the socket and read PINs); a sticky one is not', async () => {
    const shared = join(scratch, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const line = expectOneLineFailure(await runClient(['p11-relay', '--listen', join(shared, 'relay.sock'), '--config-dir', s.alice.folder]), 'NTLS_ERR_FILE');
    expect(line).toContain('other users can write the folder');
    expect(existsSync(join(shared, 'relay.sock'))).toBe(false);
    chmodSync(shared, 0o1777);
    const relay = await startRelay(['--listen', join(shared, 'relay.sock'), '--config-dir', s.alice.folder]);
    relay.child.kill('SIGTERM');
  });

  it('SIGUSR1 opens no debugger in the relay (it carries PINs and holds the client key); SIGUSR2 and SIGALRM do not end it', async () => {
    const socket = join(scratch, 'signals', 'relay.sock');
    const relay = await startRelay(['--listen', socket, '--config-dir', s.alice.folder]);
    try {
      for (const signal of ['SIGUSR1', 'SIGUSR2', 'SIGALRM'] as const) relay.child.kill(signal);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(relay.child.exitCode).toBeNull();
      expect(relay.stderr()).not.toMatch(/Debugger listening|inspector/i);
      expect(pkcs11ToolList(socket).stdout).toMatch(/token label\s*:\s*default/);
    } finally {
      relay.child.kill('SIGTERM');
    }
  });

  it('a socket folder that cannot be made: one line, NTLS_ERR_FILE', async () => {
    const blocker = join(scratch, 'a-file');
    writeFileSync(blocker, 'x');
    const line = expectOneLineFailure(await runClient(['p11-relay', '--listen', join(blocker, 'ntls.sock'), '--config-dir', s.alice.folder]), 'NTLS_ERR_FILE');
    expect(line).toContain('--listen');
  });
});

// Both relays run through one `ntls cert regen`; kept in one test so the order is fixed.
describe('after ntls cert regen, running relays recover without a restart', () => {
  it('flag mode (a new --server-cert file) and client.json (add-server --replace)', async () => {
    const pinned = join(scratch, 'server.pem');
    copyFileSync(join(s.home, 'server', 'server.pem'), pinned);
    const flagSocket = join(scratch, 'flag.sock');
    const configSocket = join(scratch, 'config.sock');
    const flagRelay = await startRelay([...flags(s.alice, pinned, 'alice'), '--listen', flagSocket]);
    const configRelay = await startRelay(['--server', 'local', '--listen', configSocket, '--config-dir', s.alice.folder]);
    try {
      expect(pkcs11ToolList(flagSocket).stdout).toMatch(/token label\s*:\s*default/);
      expect(pkcs11ToolList(configSocket).stdout).toMatch(/token label\s*:\s*default/);

      expectOk(await runNtls(['cert', 'regen', '--force', '--home', s.home]));
      const fresh = join(s.home, 'server', 'server.pem');
      expect(readFileSync(fresh, 'utf8')).not.toEqual(readFileSync(pinned, 'utf8'));

      // The old pin: refused, and the flag-mode relay's suggestion is a command that runs.
      expect(pkcs11ToolList(flagSocket).stdout).not.toMatch(/token label\s*:\s*default/);
      await waitFor('the relay\'s mismatch line', () => flagRelay.stderr().includes('NTLS_ERR_SERVER_CERT_MISMATCH'));
      const suggestion = /`(ntls-client add-server [^`]+)`/.exec(flagRelay.stderr())?.[1];
      expect(suggestion, flagRelay.stderr()).toBeDefined();
      expect(suggestion).not.toContain(`127.0.0.1:${s.daemon.port}`);
      const trying = new ClientHost('trying');
      try {
        const args = suggestion!.split(/\s+/).slice(1).map((a) => (a === 'NEW.pem' ? fresh : a));
        expectOk(await trying.run(...args));
      } finally {
        trying.remove();
      }

      // The new certificate trusted: the next program works through the same relays.
      copyFileSync(fresh, pinned);
      expect(pkcs11ToolList(flagSocket).stdout).toMatch(/token label\s*:\s*default/);
      expectOk(await s.alice.run('add-server', '--name', 'local', '--host', '127.0.0.1', '--port', String(s.daemon.port), '--cert', fresh, '--replace'));
      const listed = pkcs11ToolList(configSocket);
      expect(listed.stdout, String(listed.stderr)).toMatch(/token label\s*:\s*default/);
      const login = spawnSync('pkcs11-tool', ['--module', P11KIT_CLIENT, '--login', '--pin', CO_PIN, '-O'], {
        env: { ...process.env, P11_KIT_SERVER_ADDRESS: `unix:path=${configSocket}` }, encoding: 'utf8', timeout: 20_000,
      });
      expect(login.status, login.stderr).toBe(0);
      expect(flagRelay.child.exitCode).toBeNull();
      expect(configRelay.child.exitCode).toBeNull();
    } finally {
      flagRelay.child.kill('SIGTERM');
      configRelay.child.kill('SIGTERM');
    }
  });
});

describe('a running relay follows a renewed client certificate', () => {
  it('create-cert --force, the new certificate registered: the next program links through the same relay', async () => {
    const dave = new ClientHost('dave');
    const socket = join(scratch, 'dave.sock');
    try {
      expectOk(await dave.run('create-cert', '--cn', 'dave'));
      expectOk(await runNtls(['client', 'register', '-c', 'dave', '--cert', dave.certificateFile, '--hostname', '127.0.0.1', '--home', s.home]));
      expectOk(await runNtls(['client', 'assign-partition', '-c', 'dave', '-p', 'default', '--home', s.home]));
      expectOk(await dave.run('add-server', '--host', '127.0.0.1', '--port', String(s.daemon.port), '--cert', join(s.home, 'server', 'server.pem'), '--name', 'local'));
      const relay = await startRelay(['--listen', socket, '--config-dir', dave.folder]);
      try {
        expect(pkcs11ToolList(socket).stdout).toMatch(/token label\s*:\s*default/);
        expectOk(await dave.run('create-cert', '--cn', 'dave', '--force'));
        expectOk(await runNtls(['client', 'delete', '-c', 'dave', '--force', '--home', s.home]));
        expectOk(await runNtls(['client', 'register', '-c', 'dave', '--cert', dave.certificateFile, '--hostname', '127.0.0.1', '--home', s.home]));
        expectOk(await runNtls(['client', 'assign-partition', '-c', 'dave', '-p', 'default', '--home', s.home]));
        const listed = pkcs11ToolList(socket);
        expect(listed.stdout, `${String(listed.stderr)}\n${relay.stderr()}`).toMatch(/token label\s*:\s*default/);
      } finally {
        relay.child.kill('SIGTERM');
      }
    } finally {
      dave.remove();
    }
  });
});

it('p11-kit-client.so is installed', () => {
  expect(existsSync(P11KIT_CLIENT)).toBe(true);
});
