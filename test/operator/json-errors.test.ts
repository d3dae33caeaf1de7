// Issue 16, bug 6: admin failures with --json print {"ok":false,"error":{code,message,hint}} on
// stdout with the same exit status as without; a missing and a malformed certificate file are
// the same kind of failure (docs/operations.md, "Errors, JSON output and exit status").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Daemon, makeHome, removeHome, runNtls, startDaemon, type RunResult } from '../support/daemon.js';

let home: string;
let daemon: Daemon;
beforeAll(async () => {
  home = makeHome();
  daemon = await startDaemon(home);
});
afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});
const ntls = (...args: string[]) => runNtls([...args, '--home', home]);

function jsonFailure(result: RunResult): { code: string; message: string; hint?: string } {
  const out = JSON.parse(result.stdout) as { ok: boolean; error: { code: string; message: string; hint?: string } };
  expect(out.ok).toBe(false);
  expect(typeof out.error.message).toBe('string');
  expect(result.stderr).toContain(`[${out.error.code}]`);
  return out.error;
}

describe('--json failures', () => {
  it('missing and malformed certificate files: same status, their own codes, human and JSON alike', async () => {
    const bad = join(home, 'bad.pem');
    writeFileSync(bad, 'not a certificate');
    const register = (file: string, ...more: string[]) => ntls('client', 'register', '--client', 'eve', '--cert', file, '--hostname', '127.0.0.1', ...more);
    const missing = await register(join(home, 'missing.pem'));
    const malformed = await register(bad);
    expect(missing.status).toBe(2);
    expect(malformed.status).toBe(missing.status);
    const missingJson = await register(join(home, 'missing.pem'), '--json');
    const malformedJson = await register(bad, '--json');
    expect(missingJson.status).toBe(2);
    expect(malformedJson.status).toBe(2);
    expect(jsonFailure(missingJson).code).toBe('NTLS_ERR_FILE');
    expect(jsonFailure(malformedJson)).toMatchObject({ code: 'NTLS_ERR_NOT_A_CERTIFICATE', hint: expect.stringContaining('create-cert') });
  });

  it('a refusal by the daemon: status 1 both ways', async () => {
    const human = await ntls('client', 'show', '--client', 'nobody');
    const json = await ntls('client', 'show', '--client', 'nobody', '--json');
    expect(human.status).toBe(1);
    expect(json.status).toBe(1);
    expect(human.stdout).toBe('');
    expect(jsonFailure(json)).toMatchObject({ code: 'NTLS_ERR_UNKNOWN_CLIENT', hint: 'see `ntls client list`' });
  });

  it('a bad argument the daemon refuses: status 2 both ways', async () => {
    const json = await ntls('client', 'hostip', '--client', 'nobody2', '--hostname', 'x!', '--json');
    expect(json.status).toBeGreaterThan(0);
    jsonFailure(json);
    const partition = await ntls('partition', 'show', '--partition', 'no-such', '--json');
    expect(partition.status).toBe(1);
    expect(jsonFailure(partition).code).toBe('NTLS_ERR_UNKNOWN_PARTITION');
  });

  it('no daemon, and usage errors', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'ntls-nodaemon-'));
    try {
      const none = await runNtls(['client', 'list', '--json', '--home', empty]);
      expect(none.status).toBe(1);
      expect(jsonFailure(none).code).toBe('NTLS_ERR_NO_DAEMON');
    } finally {
      removeHome(empty);
    }
    const usage = await ntls('client', 'register', '--json');
    expect(usage.status).toBe(2);
    expect(jsonFailure(usage).code).toBe('NTLS_ERR_USAGE');
    expect(usage.stderr.trim().split('\n')).toHaveLength(1);
  });
});
