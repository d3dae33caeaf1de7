// Issue 16, what a user of a network HSM's client tool expects: --version, an example in every
// command's --help, a PIN asked on the terminal without echo, ECDSA signatures that OpenSSL
// reads (--format der), and the public key of a pair exported as PEM.
import { spawnSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeHome, repoRoot } from '../support/daemon.js';
import { keyIdOf } from '../../src/client/public-key.js';
import { CO_PIN, SO_PIN, clientBin, expectOk, expectOneLineFailure, initialiseSlot, runClient, setUp, type Setup } from './support.js';

let s: Setup;
let work: string;

beforeAll(async () => {
  s = await setUp();
  await initialiseSlot(s.alice);
  work = mkdtempSync(join(tmpdir(), 'ntls-cli-basics-'));
  writeFileSync(join(work, 'data.txt'), 'an invoice to sign\n');
});
afterAll(async () => {
  await s?.daemon.stop();
  if (s) removeHome(s.home);
  s?.alice.remove();
  if (work) rmSync(work, { recursive: true, force: true });
});

function openssl(...args: string[]): ReturnType<typeof spawnSync> {
  return spawnSync('openssl', args, { encoding: 'utf8', timeout: 20_000 });
}

describe('--version and --help', () => {
  it('--version prints the package version', async () => {
    const version = (JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
    expect(expectOk(await runClient(['--version'])).stdout.trim()).toBe(version);
  });

  it('--json failures have the shape `ntls --json` prints: {ok:false, error:{code, message}}', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'ntls-client-empty-'));
    try {
      const result = await runClient(['verify', '--json', '--config-dir', empty]);
      expect(result.status).not.toBe(0);
      const printed = JSON.parse(result.stdout) as { ok: boolean; error: { code: string; message: string } };
      expect(printed.ok).toBe(false);
      expect(printed.error.code).toMatch(/^NTLS_ERR_/);
      expect(result.stderr).toContain(`[${printed.error.code}]`);
      expect(result.stderr).toContain(printed.error.message);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  // A failure of the operation (a server down) is status 1: test/client/cli.test.ts.
  it('exit statuses are ntls\'s: a usage error or bad input is one line and status 2', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'ntls-client-empty-'));
    try {
      for (const args of [['bogus'], ['sign', '--nope'], ['ha', 'show', '--bogus'], ['sign', '-l', 'k'], ['bench', '--connections', '0']]) {
        const usage = await runClient([...args, '--config-dir', empty]);
        expectOneLineFailure(usage, 'NTLS_ERR_USAGE');
        expect(usage.status, args.join(' ')).toBe(2);
        expect(usage.stderr, args.join(' ')).not.toContain('.;');
      }
      const unknownServer = await runClient(['ping', '--server', 'nowhere', '--config-dir', empty]);
      expect(unknownServer.status, unknownServer.stderr).toBe(2);
      const json = await runClient(['sign', '--nope', '--json', '--config-dir', empty]);
      expect((JSON.parse(json.stdout) as { error: { code: string } }).error.code).toBe('NTLS_ERR_USAGE');
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it('every command\'s --help has an example that uses it', async () => {
    const help = expectOk(await runClient(['--help'])).stdout;
    const commands = [...help.slice(help.indexOf('Commands:')).matchAll(/^ {2}([a-z][a-z0-9-]+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
    expect(commands.length).toBeGreaterThanOrEqual(18);
    expect(commands).toContain('export-public-key');
    for (const command of commands) {
      const text = expectOk(await runClient([command, '--help'])).stdout;
      expect(text, command).toMatch(/\nExamples?:\n/);
      expect(text, command).toContain(command === 'module-path' ? '$(ntls-client module-path)' : `ntls-client ${command}`);
    }
  });
});

describe('the words (docs/architecture.md#words)', () => {
  it('verify lists SLOT, LABEL (token label) and SERIAL; init-token speaks of the token label', async () => {
    const out = expectOk(await s.alice.run('verify')).stdout;
    expect(out).toMatch(/^SLOT\s+LABEL\s+SERIAL\s+INITIALIZED$/m);
    expect(out).toMatch(/^0\s+default\s+\d+\s+yes$/m);
    const help = expectOk(await s.alice.run('init-token', '--help')).stdout;
    expect(help).toContain('not its partition name');
    const blank = await s.alice.run('init-token', '--slot', '7', '--so-pin', 'so-secret-1', '-l', 'x');
    expectOneLineFailure(blank, 'CKR_SLOT_ID_INVALID');
  });
});

describe('the PIN', () => {
  it('a command that needs it and has no terminal says so', async () => {
    const line = expectOneLineFailure(await s.alice.run('generate-key', '-t', 'aes-128', '-l', 'no-pin'), 'NTLS_ERR_NO_PIN');
    expect(line).toContain('not a terminal');
  });

  it('without --so-pin and no terminal: one line naming --so-pin', async () => {
    const line = expectOneLineFailure(await s.alice.run('init-pin', '--pin', CO_PIN), 'NTLS_ERR_NO_PIN');
    expect(line).toContain('--so-pin');
  });

  // A pseudo-terminal (python's pty): for each prompt, wait for it, type the next answer, and
  // read everything the terminal shows.
  const PTY = `
import os, pty, sys, select
pid, fd = pty.fork()
if pid == 0:
    os.environ['NTLS_PIN'] = ''
    os.execv(sys.argv[1], sys.argv[1:])
seen = b''
def read_until(pred, limit=400):
    global seen
    for _ in range(limit):
        r, _, _ = select.select([fd], [], [], 0.1)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen += chunk
            if pred(): return
for n, answer in enumerate(sys.stdin.read().split('\\n')):
    read_until(lambda: seen.count(b'PIN: ') > n)
    os.write(fd, answer.encode() + b'\\r')
read_until(lambda: False)
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode('utf8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status))
`;
  function onTerminal(args: string[], answers: string[]): ReturnType<typeof spawnSync> {
    return spawnSync('python3', ['-c', PTY, process.execPath, clientBin, ...args, '--config-dir', s.alice.folder], { input: answers.join('\n'), encoding: 'utf8', timeout: 60_000 });
  }

  it('on a terminal it is asked for and not echoed', () => {
    const run = onTerminal(['generate-key', '-t', 'aes-128', '-l', 'typed-pin'], [CO_PIN]);
    expect(run.status, String(run.stdout) + String(run.stderr)).toBe(0);
    expect(run.stdout).toContain('Crypto Officer PIN: ');
    expect(run.stdout).toContain('generated aes-128 "typed-pin"');
    expect(run.stdout).not.toContain(CO_PIN);
  });

  it('the SO PIN and the new Crypto Officer PIN of init-pin too', () => {
    const run = onTerminal(['init-pin'], [SO_PIN, CO_PIN]);
    expect(run.status, String(run.stdout) + String(run.stderr)).toBe(0);
    expect(run.stdout).toContain('Security Officer PIN: ');
    expect(run.stdout).toContain('Crypto Officer PIN of slot 0 set');
    expect(run.stdout).not.toContain(SO_PIN);
    expect(run.stdout).not.toContain(CO_PIN);
  });
});

describe('ECDSA signatures OpenSSL reads, and public keys as PEM', () => {
  it('sign --format der: openssl dgst -verify accepts it with the exported public key', async () => {
    expectOk(await s.alice.run('generate-key', '-t', 'ec-p256', '-l', 'signing', '--id', '0a01', '--pin', CO_PIN));
    expectOk(await s.alice.run('export-public-key', '-l', 'signing', '--out', join(work, 'pub.pem')));
    const byId = expectOk(await s.alice.run('export-public-key', '--id', '0A01')).stdout;
    expect(byId).toEqual(readFileSync(join(work, 'pub.pem'), 'utf8'));
    expect(byId).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);

    expectOk(await s.alice.run('sign', '-l', 'signing', '--in', join(work, 'data.txt'), '--out', join(work, 'sig.der'), '--format', 'der', '--pin', CO_PIN));
    const verified = openssl('dgst', '-sha256', '-verify', join(work, 'pub.pem'), '-signature', join(work, 'sig.der'), join(work, 'data.txt'));
    expect(verified.status, String(verified.stderr)).toBe(0);
    expect(verified.stdout).toContain('Verified OK');
    // The same signature read back by the HSM, and the raw one refused by OpenSSL (it is r‖s).
    expectOk(await s.alice.run('verify-signature', '-l', 'signing', '--in', join(work, 'data.txt'), '--signature', join(work, 'sig.der'), '--format', 'der'));
    expectOk(await s.alice.run('sign', '-l', 'signing', '--in', join(work, 'data.txt'), '--out', join(work, 'sig.raw'), '--pin', CO_PIN));
    expect(readFileSync(join(work, 'sig.raw'))).toHaveLength(64);
    expect(openssl('dgst', '-sha256', '-verify', join(work, 'pub.pem'), '-signature', join(work, 'sig.raw'), join(work, 'data.txt')).status).not.toBe(0);
  });

  it('P-384 as well, and an RSA key\'s exported key verifies its signature', async () => {
    expectOk(await s.alice.run('generate-key', '-t', 'ec-p384', '-l', 'p384', '--pin', CO_PIN));
    expectOk(await s.alice.run('export-public-key', '-l', 'p384', '--out', join(work, 'p384.pem')));
    expectOk(await s.alice.run('sign', '-l', 'p384', '--in', join(work, 'data.txt'), '--out', join(work, 'p384.der'), '--format', 'der', '--pin', CO_PIN));
    expect(openssl('dgst', '-sha384', '-verify', join(work, 'p384.pem'), '-signature', join(work, 'p384.der'), join(work, 'data.txt')).stdout).toContain('Verified OK');
    // Made without --id: both keys get the key identifier OpenSSL writes into the key's certificates,
    // so OpenSSL's pkcs11 engine pairs them with each other, not with another key without an id.
    const objects = JSON.parse(expectOk(await s.alice.run('list-objects', '--json', '--pin', CO_PIN)).stdout) as Array<{ label: string; class: string; id: string }>;
    const p384 = objects.filter((o) => o.label === 'p384');
    expect(p384.map((o) => o.class).sort()).toEqual(['private-key', 'public-key']);
    const expectedId = keyIdOf(createPublicKey(readFileSync(join(work, 'p384.pem')))).toString('hex');
    for (const o of p384) expect(o.id).toBe(expectedId);
    expect(objects.find((o) => o.label === 'signing')!.id).toBe('0a01');

    expectOk(await s.alice.run('generate-key', '-t', 'rsa-2048', '-l', 'rsa', '--pin', CO_PIN));
    expectOk(await s.alice.run('export-public-key', '-l', 'rsa', '--out', join(work, 'rsa.pem')));
    expectOk(await s.alice.run('sign', '-l', 'rsa', '--in', join(work, 'data.txt'), '--out', join(work, 'rsa.sig'), '--pin', CO_PIN));
    expect(openssl('dgst', '-sha256', '-verify', join(work, 'rsa.pem'), '-signature', join(work, 'rsa.sig'), join(work, 'data.txt')).stdout).toContain('Verified OK');
    const line = expectOneLineFailure(await s.alice.run('sign', '-l', 'rsa', '--in', join(work, 'data.txt'), '--out', join(work, 'x.sig'), '--format', 'der', '--pin', CO_PIN), 'NTLS_ERR_ARGUMENT');
    expect(line).toContain('--format der does not apply');
  });

  it('export-public-key of a label that is not there: NTLS_ERR_NO_SUCH_OBJECT', async () => {
    expectOneLineFailure(await s.alice.run('export-public-key', '-l', 'nothing-here'), 'NTLS_ERR_NO_SUCH_OBJECT');
    expectOneLineFailure(await s.alice.run('export-public-key'), 'NTLS_ERR_ARGUMENT');
  });
});
