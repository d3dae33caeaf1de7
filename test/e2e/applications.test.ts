// Two applications that users put in front of a network HSM (docs/client.md, "OpenSSH" and "NSS"),
// each run the same way against ntls, through p11-kit-client.so and the TLS relay and through
// ntls's own module (libntls-pkcs11.so, starting its relay from the client's configuration), and
// against p11-kit server + SoftHSM2 on its unix socket, with the same keys made the same way:
//   - OpenSSH (openssh-client): `ssh-keygen -D` lists the token's keys; `ssh-agent` loads the
//     module through `ssh-add -s` (the PIN from SSH_ASKPASS; a module outside /usr/lib needs the
//     agent's `-P`) and signs with each key for `ssh-keygen -Y sign`; the signatures verify
//     against the listed public keys.
//   - NSS (libnss3-tools), as Firefox and Chromium load a module: `modutil -add`; `certutil -S`
//     makes an RSA-2048 and a P-256 key pair on the token and a self-signed certificate of each
//     (signed there); `certutil -L`, `-K` and `-V` find and check them, and OpenSSL checks each
//     certificate's signature with its own public key.
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, openssl, run, type ToolResult } from '../support/e2e.js';
import { ThreeStacks, type Stack } from '../support/stacks.js';
import { waitForUnixListener } from '../support/unix-socket.js';

const SO_PIN = '87654321';
const PIN = '1234';
const TOKEN = 'apps';

const ok = (r: ToolResult): ToolResult => {
  expect(r.status, explain(r)).toBe(0);
  return r;
};

/** A stack; its folder holds the askpass script, the NSS database and the files to sign. */
type Target = Stack;

/** A foreground ssh-agent on a socket in `dir`, stopped by `stop()`. */
class SshAgent {
  private constructor(readonly socket: string, private readonly child: ChildProcess) {}

  /** `module` is allowed to the agent (by default it loads modules from /usr/lib and /usr/local/lib only). */
  static async start(dir: string, module: string, env: NodeJS.ProcessEnv): Promise<SshAgent> {
    const socket = join(dir, 'agent.sock');
    const child = spawn('ssh-agent', ['-D', '-a', socket, '-P', module], { env: { ...process.env, ...env }, stdio: 'ignore' });
    if (!(await waitForUnixListener(socket, () => child.exitCode === null, 5000))) {
      child.kill('SIGKILL');
      throw new Error(`ssh-agent did not listen on ${socket}`);
    }
    return new SshAgent(socket, child);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }
}

let stacks: ThreeStacks;
const targets: Target[] = [];

beforeAll(async () => {
  stacks = await ThreeStacks.start('apps', TOKEN, SO_PIN, PIN);
  targets.push(...stacks.all);
  const tool = (target: Target, args: string[]) => stacks.tool(target, args);
  for (const target of targets) {
    ok(await tool(target, ['--login', '--pin', PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'ssh-ec', '--id', '51']));
    ok(await tool(target, ['--login', '--pin', PIN, '--keypairgen', '--key-type', 'rsa:2048', '--label', 'ssh-rsa', '--id', '52']));
  }
}, 180_000);

afterAll(async () => {
  await stacks?.stop();
});

describe('OpenSSH through p11-kit-client.so and libntls-pkcs11.so: ntls beside p11-kit server + SoftHSM2', () => {
  /** `ssh-keygen -D`'s lines, keyed by comment (the key's label). */
  const listings = new Map<string, Map<string, string>>();

  it('ssh-keygen -D lists the P-256 and RSA-2048 public keys by label, as on the reference', async () => {
    for (const target of targets) {
      const r = ok(await run('ssh-keygen', ['-D', target.module], { env: target.env, cwd: target.dir }));
      const keys = new Map<string, string>();
      for (const line of r.stdout.split('\n').filter((l) => l.trim() !== '')) keys.set(line.split(' ')[2]!, line);
      listings.set(target.name, keys);
      expect([...keys.keys()].sort(), `${target.name}\n${explain(r)}`).toEqual(['ssh-ec', 'ssh-rsa']);
      expect(keys.get('ssh-ec'), target.name).toMatch(/^ecdsa-sha2-nistp256 AAAA\S+ ssh-ec$/);
      expect(keys.get('ssh-rsa'), target.name).toMatch(/^ssh-rsa AAAA\S+ ssh-rsa$/);
    }
  });

  it('ssh-agent loads the module with the PIN (ssh-add -s), signs with each key, and the signatures verify; ssh-add -e unloads it', async () => {
    for (const target of targets) {
      const askpass = join(target.dir, 'askpass');
      writeFileSync(askpass, `#!/bin/sh\necho ${PIN}\n`);
      chmodSync(askpass, 0o700);
      // The agent's helper (ssh-pkcs11-helper) loads the module: the module's environment is the agent's.
      const agent = await SshAgent.start(target.dir, target.module, target.env);
      try {
        const env = { SSH_AUTH_SOCK: agent.socket, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DISPLAY: '' };
        const added = ok(await run('ssh-add', ['-s', target.module], { env, cwd: target.dir }));
        expect(added.stderr, target.name).toContain('Card added');
        const held = ok(await run('ssh-add', ['-L'], { env, cwd: target.dir }));
        const keys = listings.get(target.name)!;
        for (const line of keys.values()) expect(held.stdout, target.name).toContain(line.split(' ').slice(0, 2).join(' '));
        for (const [label, line] of keys) {
          const publicKey = join(target.dir, `${label}.pub`);
          const data = join(target.dir, `${label}.txt`);
          writeFileSync(publicKey, `${line}\n`);
          writeFileSync(data, `signed by ${label} on ${target.name}\n`);
          ok(await run('ssh-keygen', ['-Y', 'sign', '-f', publicKey, '-n', 'file', data], { env, cwd: target.dir }));
          const allowed = join(target.dir, `${label}.allowed`);
          writeFileSync(allowed, `signer ${line.split(' ').slice(0, 2).join(' ')}\n`);
          const verified = ok(await run('ssh-keygen', ['-Y', 'verify', '-f', allowed, '-I', 'signer', '-n', 'file', '-s', `${data}.sig`], {
            env, cwd: target.dir, input: `signed by ${label} on ${target.name}\n`,
          }));
          expect(verified.stdout, `${target.name} ${label}`).toContain('Good "file" signature for signer');
          const forged = await run('ssh-keygen', ['-Y', 'verify', '-f', allowed, '-I', 'signer', '-n', 'file', '-s', `${data}.sig`], {
            env, cwd: target.dir, input: 'something else\n',
          });
          expect(forged.status, `${target.name} ${label}: another text must not verify`).not.toBe(0);
        }
        ok(await run('ssh-add', ['-e', target.module], { env, cwd: target.dir }));
        const after = await run('ssh-add', ['-L'], { env, cwd: target.dir });
        expect(after.stdout, target.name).not.toMatch(/ecdsa-sha2-nistp256|ssh-rsa/);
      } finally {
        await agent.stop();
      }
    }
  }, 120_000);
});

describe('NSS (certutil, modutil) through p11-kit-client.so and libntls-pkcs11.so: ntls beside p11-kit server + SoftHSM2', () => {
  // certutil names the database with -d, modutil with -dbdir.
  const nss = (target: Target, tool: 'certutil' | 'modutil', args: string[]) => run(tool, [
    tool === 'certutil' ? '-d' : '-dbdir', `sql:${join(target.dir, 'nssdb')}`, ...args,
  ], {
    env: target.env, cwd: target.dir, timeoutMs: 60_000,
  });

  it('modutil adds the module; certutil -S makes an RSA-2048 and a P-256 key pair on the token and self-signs a certificate with each', async () => {
    for (const target of targets) {
      ok(await run('mkdir', ['-p', join(target.dir, 'nssdb')]));
      ok(await nss(target, 'certutil', ['-N', '--empty-password']));
      const added = ok(await nss(target, 'modutil', ['-add', 'hsm', '-libfile', target.module, '-force']));
      expect(added.stdout, target.name).toContain('Module "hsm" added to database.');
      const listed = ok(await nss(target, 'modutil', ['-list', 'hsm']));
      expect(listed.stdout, target.name).toContain(`Token Name: ${target.token}`);
      writeFileSync(join(target.dir, 'pin'), `${PIN}\n`);
      writeFileSync(join(target.dir, 'noise'), 'noise for the keys of the NSS test, not used for the keys themselves on the token');
      for (const [nick, keyArgs] of [['nss-rsa', ['-k', 'rsa', '-g', '2048']], ['nss-ec', ['-k', 'ec', '-q', 'nistp256']]] as const) {
        ok(await nss(target, 'certutil', [
          '-S', '-h', target.token, '-f', join(target.dir, 'pin'), '-n', nick, '-s', `CN=${nick}`, '-x', '-t', 'CT,C,C', ...keyArgs,
          '-z', join(target.dir, 'noise'), '-v', '12',
        ]));
      }
    }
  }, 120_000);

  it('certutil -K and -L find the keys and certificates on the token (logged in), -V finds each certificate valid', async () => {
    for (const target of targets) {
      const keys = ok(await nss(target, 'certutil', ['-K', '-h', target.token, '-f', join(target.dir, 'pin')]));
      expect(keys.stdout, target.name).toMatch(/<\s*\d+> rsa\s+\S+\s+.*nss-rsa/);
      expect(keys.stdout, target.name).toMatch(/<\s*\d+> ec\s+\S+\s+.*nss-ec/);
      expect(keys.stdout, target.name).toMatch(/<\s*\d+> ec\s+\S+\s+ssh-ec/);
      const certs = ok(await nss(target, 'certutil', ['-L', '-h', target.token, '-f', join(target.dir, 'pin')]));
      expect(certs.stdout, target.name).toMatch(new RegExp(`^${target.token}:nss-rsa\\s+CTu,Cu,Cu`, 'm'));
      expect(certs.stdout, target.name).toMatch(new RegExp(`^${target.token}:nss-ec\\s+CTu,Cu,Cu`, 'm'));
      for (const nick of ['nss-rsa', 'nss-ec']) {
        const valid = ok(await nss(target, 'certutil', ['-V', '-n', nick, '-u', 'C', '-f', join(target.dir, 'pin')]));
        expect(valid.stdout, `${target.name} ${nick}`).toContain('certificate is valid');
      }
    }
  });

  it('each certificate, exported from the token, carries a signature its own public key verifies (OpenSSL)', async () => {
    for (const target of targets) {
      for (const nick of ['nss-rsa', 'nss-ec']) {
        const pem = ok(await nss(target, 'certutil', ['-L', '-n', nick, '-a']));
        const file = join(target.dir, `${nick}.pem`);
        writeFileSync(file, pem.stdout);
        const verified = ok(await openssl(['verify', '-CAfile', file, '-check_ss_sig', file]));
        expect(verified.stdout, `${target.name} ${nick}`).toContain(': OK');
        const text = ok(await openssl(['x509', '-in', file, '-noout', '-text']));
        expect(text.stdout, `${target.name} ${nick}`).toContain(nick === 'nss-rsa' ? 'Public-Key: (2048 bit)' : 'NIST CURVE: P-256');
      }
    }
  });

  it('a wrong PIN: certutil stops with NSS\'s bad-password error on both, and the right PIN still works', async () => {
    for (const target of targets) {
      const wrong = join(target.dir, 'wrong-pin');
      writeFileSync(wrong, '0000\n');
      const refused = await nss(target, 'certutil', ['-K', '-h', target.token, '-f', wrong]);
      expect(refused.status, `${target.name}\n${explain(refused)}`).not.toBe(0);
      expect(refused.stderr, target.name).toMatch(/SEC_ERROR_BAD_PASSWORD|Incorrect password/i);
      ok(await nss(target, 'certutil', ['-K', '-h', target.token, '-f', join(target.dir, 'pin')]));
    }
  });
});
