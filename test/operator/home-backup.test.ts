// docs/operations.md (Backup and restore of a running home) and docs/service.md, done for real.
// Backup of a running home (issue 16): `ntls home backup` while a client signs, `ntls home
// restore` into an empty home, a daemon started on it, and the restored key signs what the
// original key verifies.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packArchive } from '../../src/home/archive.js';
import { makeHome, removeHome, runNtls, startDaemon, type Daemon } from '../support/daemon.js';
import { CO_PIN, ClientHost, expectOk, initialiseSlot } from '../client/support.js';

let home: string;
let scratch: string;
let daemon: Daemon;
let alice: ClientHost;
const restored: Daemon[] = [];

beforeAll(async () => {
  home = makeHome({ hsm: { kdfCost: 1024, pinMinLength: 4 }, datapath: { receiveTimeout: 0 } });
  scratch = mkdtempSync(join(tmpdir(), 'ntls-backup-test-'));
  daemon = await startDaemon(home);
  alice = new ClientHost('alice');
  expectOk(await alice.run('create-cert', '--cn', 'alice'));
  expectOk(await runNtls(['client', 'register', '-c', 'alice', '--cert', alice.certificateFile, '--hostname', '127.0.0.1', '--home', home]));
  expectOk(await runNtls(['client', 'assign-partition', '-c', 'alice', '-p', 'default', '--home', home]));
  expectOk(await alice.run('add-server', '--host', '127.0.0.1', '--port', String(daemon.port), '--cert', join(home, 'server', 'server.pem'), '--name', 'local'));
  await initialiseSlot(alice);
  expectOk(await alice.run('generate-key', '--type', 'ec-p256', '--label', 'k1', '--pin', CO_PIN));
});
afterAll(async () => {
  for (const d of restored) await d.stop();
  await daemon?.stop();
  alice?.remove();
  removeHome(home);
  removeHome(scratch);
});

describe('ntls home backup and restore', () => {
  it('backs up while signing, restores into an empty home, and the restored key signs', async () => {
    const data = join(scratch, 'data.bin');
    writeFileSync(data, 'to be signed');
    // Signing goes on during the backup.
    let backupDone = false;
    const signed: number[] = [];
    const signing = (async () => {
      for (let i = 0; i < 20 && (!backupDone || signed.length === 0); i++) {
        const r = await alice.run('sign', '-l', 'k1', '--in', data, '--out', join(scratch, `sig-${i}`), '--pin', CO_PIN, '--server', 'local');
        expectOk(r);
        signed.push(i);
      }
    })();
    const file = join(scratch, 'home.ntlsbackup');
    const backup = await runNtls(['home', 'backup', '--out', file, '--json', '--home', home]);
    backupDone = true;
    await signing;
    expect(backup.status, backup.stderr).toBe(0);
    const made = JSON.parse(backup.stdout) as { files: string[] };
    for (const f of ['hsm/hsm.db', 'ntls.json', 'server/server.key', 'server/server.pem', 'clients/alice.pem', 'audit/audit.key', 'audit/audit.log']) {
      expect(made.files).toContain(f);
    }
    expect(made.files.some((f) => f.startsWith('logs/'))).toBe(false);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    // Not into a home that is in use or holds anything.
    const full = join(scratch, 'full');
    mkdirSync(full);
    writeFileSync(join(full, 'x'), 'x');
    const refused = await runNtls(['home', 'restore', '--in', file, '--home', full]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('[NTLS_ERR_HOME_NOT_EMPTY]');

    const copy = join(scratch, 'restored');
    expectOk(await runNtls(['home', 'restore', '--in', file, '--home', copy]));
    expect(statSync(join(copy, 'server', 'server.key')).mode & 0o777).toBe(0o600);
    // The secret folders come back owner-only, as a new home has them: the start finds nothing to tighten.
    for (const folder of ['hsm', 'audit', 'server']) expect(statSync(join(copy, folder)).mode & 0o777, folder).toBe(0o700);
    const second = await startDaemon(copy);
    restored.push(second);
    expect(second.stderr).not.toContain(' was mode ');
    expectOk(await alice.run('add-server', '--host', '127.0.0.1', '--port', String(second.port), '--cert', join(copy, 'server', 'server.pem'), '--name', 'restored'));
    const sig = join(scratch, 'restored.sig');
    expectOk(await alice.run('sign', '-l', 'k1', '--in', data, '--out', sig, '--pin', CO_PIN, '--server', 'restored'));
    // The original daemon's key verifies what the restored one signed: the same key.
    const verified = expectOk(await alice.run('verify-signature', '-l', 'k1', '--in', data, '--signature', sig, '--pin', CO_PIN, '--server', 'local'));
    expect(verified.stdout).toContain('signature valid');
    // The audit trail came along and still checks.
    expect((await runNtls(['logs', 'audit', '--verify', '--home', copy])).status).toBe(0);
  });

  it('an existing --out is not written over without --force; devices/ comes back owner-only', async () => {
    const file = join(scratch, 'kept.ntlsbackup');
    writeFileSync(file, 'an earlier backup');
    const refused = await runNtls(['home', 'backup', '--out', file, '--home', home]);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toContain('[NTLS_ERR_FILE_EXISTS]');
    expect(readFileSync(file, 'utf8')).toBe('an earlier backup');
    const archive = join(scratch, 'devices.ntlsbackup');
    writeFileSync(archive, packArchive([{ path: 'ntls.json', mode: 0o640, data: Buffer.from('{}') }, { path: 'devices/deployed.json', mode: 0o600, data: Buffer.from('[]') }]));
    const target = join(scratch, 'with-devices');
    expectOk(await runNtls(['home', 'restore', '--in', archive, '--home', target]));
    expect(statSync(join(target, 'devices')).mode & 0o777).toBe(0o700);
    expectOk(await runNtls(['home', 'backup', '--out', file, '--force', '--home', home]));
    expect(readFileSync(file).subarray(0, 17).toString()).not.toBe('an earlier backup');
  });

  it('a backup that is not whole (cut short, re-packed without its last file) is refused before anything is written', async () => {
    const whole = join(scratch, 'whole.ntlsbackup');
    expectOk(await runNtls(['home', 'backup', '--out', whole, '--home', home]));
    const raw = gunzipSync(readFileSync(whole)).toString('latin1');
    const end = raw.lastIndexOf('{"end"');
    const repacked = join(scratch, 'repacked.ntlsbackup');
    writeFileSync(repacked, gzipSync(Buffer.from(raw.slice(0, raw.lastIndexOf('{"path"', end)) + raw.slice(end), 'latin1')));
    const cut = join(scratch, 'cut.ntlsbackup');
    writeFileSync(cut, readFileSync(whole).subarray(0, 1000));
    for (const file of [repacked, cut]) {
      const target = join(scratch, 'never-restored');
      const result = await runNtls(['home', 'restore', '--in', file, '--home', target]);
      expect(result.status, file).toBe(2);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain('[NTLS_ERR_BACKUP_DAMAGED]');
      expect(existsSync(target)).toBe(false);
    }
  });

  it('restores all or nothing: a backup whose paths cannot all be written leaves nothing behind', async () => {
    const entry = (path: string, data = 'x') => ({ path, mode: 0o600, data: Buffer.from(data) });
    const cases: Array<[string, ReturnType<typeof entry>[]]> = [
      ['a file and a folder of one name', [entry('ntls.json', '{}'), entry('server'), entry('server/server.key')]],
      ['a NUL byte in a path', [entry('ntls.json', '{}'), entry('clients/a\0b.pem')]],
    ];
    for (const [what, entries] of cases) {
      const file = join(scratch, 'crafted.ntlsbackup');
      writeFileSync(file, packArchive(entries));
      const parent = join(scratch, `parent-${cases.findIndex(([w]) => w === what)}`);
      mkdirSync(parent);
      const result = await runNtls(['home', 'restore', '--in', file, '--home', join(parent, 'home')]);
      expect(result.status, what).toBe(2);
      expect(result.stderr).toContain('[NTLS_ERR_BACKUP_DAMAGED]');
      expect(readdirSync(parent), what).toEqual([]);
    }
  });

  it('narrows modes (secret folders owner-only, nothing writable by others) and names the code the restored configuration loads', async () => {
    const file = join(scratch, 'modes.ntlsbackup');
    writeFileSync(file, packArchive([
      { path: 'ntls.json', mode: 0o666, data: Buffer.from(JSON.stringify({ processor: { module: '/opt/vendor/processor.mjs' } })) },
      { path: 'server/server.key', mode: 0o666, data: Buffer.from('key') },
    ]));
    const target = join(scratch, 'narrowed');
    const result = await runNtls(['home', 'restore', '--in', file, '--home', target]);
    expect(result.status, result.stderr).toBe(0);
    expect(statSync(join(target, 'ntls.json')).mode & 0o777).toBe(0o644);
    expect(statSync(join(target, 'server', 'server.key')).mode & 0o777).toBe(0o600);
    expect(result.stderr).toBe('ntls: the restored configuration has the daemon load code: processor.module = /opt/vendor/processor.mjs; check it is what you expect before `ntls start`\n');
  });

  it('a stopped home is pointed at the folder copy; a restore onto a file says it is no folder', async () => {
    const stopped = makeHome({});
    try {
      const result = await runNtls(['home', 'backup', '--out', join(scratch, 'never.ntlsbackup'), '--home', stopped]);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`copy the stopped home as a folder (\`cp -a ${stopped} BACKUP\`). [NTLS_ERR_NO_DAEMON]`);
    } finally {
      removeHome(stopped);
    }
    const file = join(scratch, 'a-file');
    writeFileSync(file, 'x');
    const onto = await runNtls(['home', 'restore', '--in', file, '--home', file]);
    expect(onto.status).toBe(2);
    expect(onto.stderr).toContain(`${file} is not a folder;`);
  });

  it('a file that is not a backup is refused in one line', async () => {
    const bogus = join(scratch, 'bogus');
    writeFileSync(bogus, 'hello');
    const result = await runNtls(['home', 'restore', '--in', bogus, '--home', join(scratch, 'never')]);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('[NTLS_ERR_BACKUP_FILE]');
  });
});
