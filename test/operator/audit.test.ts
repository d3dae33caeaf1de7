// docs/operations.md (audit trail: ntls logs audit --verify), done for real.
// Audit trail (issue 16): operator changes and failed or locked logins leave a record (who, what,
// when, result) in <home>/audit/audit.log, chained by HMAC-SHA256; `ntls logs audit --verify`
// finds an edited, removed or reordered record and names its line. `partition show` gives
// failed-login counts and lock state.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { userInfo } from 'node:os';
import { CKU } from '../../src/pkcs11/constants.js';
import type { AuditRecord } from '../../src/audit/audit-log.js';
import { removeHome, runNtls, startDaemon, makeHome, type Daemon } from '../support/daemon.js';
import { CO_PIN, ClientHost, expectOk, initialiseSlot } from '../client/support.js';

let home: string;
let daemon: Daemon;
let alice: ClientHost;
const ntls = (...args: string[]) => runNtls([...args, '--home', home]);

beforeAll(async () => {
  home = makeHome({ hsm: { kdfCost: 1024, pinMinLength: 4, maxFailedLogins: 2 }, datapath: { receiveTimeout: 0 } });
  daemon = await startDaemon(home);
  alice = new ClientHost('alice');
  expectOk(await alice.run('create-cert', '--cn', 'alice'));
  expectOk(await ntls('client', 'register', '-c', 'alice', '--cert', alice.certificateFile, '--hostname', '127.0.0.1'));
  expectOk(await ntls('client', 'assign-partition', '-c', 'alice', '-p', 'default'));
  expectOk(await alice.run('add-server', '--host', '127.0.0.1', '--port', String(daemon.port), '--cert', join(home, 'server', 'server.pem'), '--name', 'local'));
});
afterAll(async () => {
  await daemon?.stop();
  alice?.remove();
  removeHome(home);
});

const logFile = () => join(home, 'audit', 'audit.log');
const records = async () => JSON.parse(expectOk(await ntls('logs', 'audit', '--json')).stdout) as AuditRecord[];

describe('audit trail', () => {
  it('records operator changes and failed and locked logins, with who and the result', async () => {
    await initialiseSlot(alice);
    const client = alice.library();
    try {
      const p11 = client.server();
      const session = await p11.openSession(0);
      for (let i = 0; i < 3; i++) await p11.login(session, CKU.USER, 'wrong-pin').catch(() => undefined);
      await p11.login(session, CKU.USER, CO_PIN).catch(() => undefined);
    } finally {
      await client.close();
    }
    expectOk(await ntls('partition', 'create', '--name', 'audited'));
    expectOk(await ntls('partition', 'policy', '--partition', 'audited', '--legacy-rsa', 'on'));
    expectOk(await ntls('token', 'init', '--label', 'AuditedToken', '--so-pin', 'token-so-1', '--pin', 'token-user-1'));
    expect((await ntls('client', 'assign-partition', '-c', 'alice', '-p', 'no-such')).status).not.toBe(0);
    expectOk(await ntls('partition', 'delete', '--partition', 'audited', '--force'));
    expectOk(await ntls('config', 'set', 'datapath.receiveTimeout', '600'));
    expectOk(await ntls('cert', 'regen', '--force'));
    expectOk(await ntls('client', 'revoke-partition', '-c', 'alice', '-p', 'default'));
    expectOk(await ntls('client', 'delete', '-c', 'alice', '--force'));

    const all = await records();
    const actions = all.map((r) => `${r.action} ${r.result}`);
    expect(actions).toEqual([
      'client.register ok', 'client.assign-partition ok',
      // The second refusal of the locked role within the minute is left out (repeated-refusals.ts).
      'login.failed refused', 'login.failed refused', 'login.locked refused',
      'partition.create ok', 'partition.policy ok', 'token.init ok', 'client.assign-partition refused', 'partition.delete ok', 'config.set ok', 'cert.regen ok',
      'client.revoke-partition ok', 'client.delete ok',
    ]);
    expect(all[8]).toMatchObject({ code: 'NTLS_ERR_UNKNOWN_PARTITION', target: { name: 'alice', partition: 'no-such' } });
    expect(all[6]).toMatchObject({ target: { partition: 'audited', legacyRsa: 'on' } });
    expect(all[7]).toMatchObject({ target: { label: 'AuditedToken', serial: expect.stringMatching(/^[0-9]+$/) } });
    const me = userInfo().username;
    const register = all.find((r) => r.action === 'client.register')!;
    expect(register.who).toEqual({ kind: 'admin', uid: process.getuid!(), user: me });
    expect(register.target).toEqual({ name: 'alice', host: '127.0.0.1', force: false });
    expect(JSON.stringify(all)).not.toContain('BEGIN CERTIFICATE');
    expect(all.find((r) => r.action === 'login.failed')).toMatchObject({ who: { kind: 'client', name: 'alice' }, code: 'CKR_PIN_INCORRECT' });
    // Which partition and role the refused logins were for.
    for (const r of all.filter((x) => x.action.startsWith('login.'))) expect(r.target).toEqual({ partition: 'default', serial: expect.stringMatching(/^[0-9]+$/), role: 'co' });
    expect(all.find((r) => r.action === 'config.set')).toMatchObject({ target: { key: 'datapath.receiveTimeout', value: 600 }, result: 'ok' });
    // The partition word as typed, and the serial it named: a name can be given again after a delete.
    const serialOf = /^[0-9]+$/;
    for (const action of ['client.assign-partition', 'partition.delete', 'client.revoke-partition']) {
      const record = all.find((r) => r.action === action && r.result === 'ok')!;
      expect(record.target, action).toMatchObject({ partition: expect.any(String), serial: expect.stringMatching(serialOf) });
    }
    expect(all.find((r) => r.action === 'client.assign-partition')!.target).toMatchObject({ partition: 'default' });
    for (const action of ['partition.delete', 'cert.regen', 'client.revoke-partition', 'client.delete']) {
      expect(all.find((r) => r.action === action && r.result === 'ok'), action).toBeDefined();
    }
    expect(all.map((r) => r.seq)).toEqual(all.map((_, i) => i + 1));
    expect(Date.parse(all[0]!.time)).not.toBeNaN();
    expect(statSync(join(home, 'audit', 'audit.key')).mode & 0o777).toBe(0o600);
    const human = expectOk(await ntls('logs', 'audit')).stdout;
    expect(human).toMatch(new RegExp(`client\\.register\\s+name=alice host=127\\.0\\.0\\.1 force=false\\s+ok`));
  });

  it('partition show: failed logins in a row and lock state per role', async () => {
    const shown = JSON.parse(expectOk(await ntls('partition', 'show', '--partition', 'default', '--json')).stdout) as Record<string, unknown>;
    expect(shown).toMatchObject({ failedLogins: { so: 0, co: 2, cu: 0 }, locked: { so: false, co: true, cu: false }, maxFailedLogins: 2 });
    const human = expectOk(await ntls('partition', 'show', '--partition', 'default')).stdout;
    expect(human).toMatch(/failedLogins\s+so=0 co=2 cu=0/);
    expect(human).toMatch(/locked\s+so=no co=yes cu=no/);
  });

  it('--verify: intact, then an edited, a removed, a reordered and a truncated record, each named by its line', async () => {
    const ok = await ntls('logs', 'audit', '--verify');
    expect(ok.status, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/audit log intact: \d+ record\(s\)/);
    const original = readFileSync(logFile(), 'utf8');
    const lines = original.trimEnd().split('\n');
    const check = async (text: string) => {
      writeFileSync(logFile(), text);
      const result = await ntls('logs', 'audit', '--verify', '--json');
      writeFileSync(logFile(), original);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('[NTLS_ERR_AUDIT_TAMPERED]');
      return (JSON.parse(result.stdout.split('\n')[0]!) as { firstBad: { line: number } }).firstBad.line;
    };
    const edited = [...lines];
    edited[2] = edited[2]!.replace('"refused"', '"ok"');
    expect(await check(edited.join('\n') + '\n')).toBe(3);
    expect(await check([...lines.slice(0, 4), ...lines.slice(5)].join('\n') + '\n')).toBe(5);
    const swapped = [...lines];
    [swapped[5], swapped[6]] = [swapped[6]!, swapped[5]!];
    expect(await check(swapped.join('\n') + '\n')).toBe(6);
    expect(await check(lines.slice(0, -1).join('\n') + '\n')).toBe(lines.length);
    expect((await ntls('logs', 'audit', '--verify')).status).toBe(0);
  });
});
