// Issue 16, bug 3: `ntls config set` validates a value as the start would, and refuses with one
// line, writing nothing; what it accepts, the daemon starts with.
import { afterAll, describe, expect, it } from 'vitest';
import { readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeHome, removeHome, runNtls, startDaemon } from '../support/daemon.js';

const home = makeHome({ log: { debug: false } });
afterAll(() => removeHome(home));
const file = join(home, 'ntls.json');
const ntls = (...args: string[]) => runNtls([...args, '--home', home]);

async function refused(key: string, value: string, says: RegExp): Promise<void> {
  const before = readFileSync(file, 'utf8');
  const result = await ntls('config', 'set', key, value);
  expect(result.status, result.stderr).toBe(2);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(says);
  expect(result.stderr).toContain('[NTLS_ERR_CONFIG]');
  expect(readFileSync(file, 'utf8')).toBe(before);
}

describe('ntls config set refuses what the start would refuse', () => {
  it('server.bind: not an address', () => refused('server.bind', 'not an ip!', /"server\.bind": neither an IP address nor a host name; .*nothing changed/));
  it('server.bind: a name that does not resolve', () => refused('server.bind', 'no-such-host.invalid', /does not resolve/));
  it('server.bind: an address that is not this host\'s', () => refused('server.bind', '192.0.2.1', /is not an address of this host/));
  it('metrics.bind likewise', () => refused('metrics.bind', 'not an ip!', /"metrics\.bind"/));
  it('ports out of range, wrong types', async () => {
    await refused('server.port', '70000', /"server\.port"/);
    await refused('metrics.port', '-1', /"metrics\.port"/);
    await refused('server.port', 'twelve', /"server\.port"/);
  });
  it('checks across settings: pinMinLength above pinMaxLength', async () => {
    await refused('hsm.pinMaxLength', '5', /"hsm\.pinMinLength": greater than hsm\.pinMaxLength/);
  });
  it('a field of an object setting (hsm.pkcs11.module) is set alone, as the hint of hsm.backend pkcs11 says; an unknown field is refused', async () => {
    // It was "unknown setting": only the whole hsm.pkcs11 object could be set.
    await refused('hsm.backend', '"pkcs11"', /"hsm\.pkcs11\.module": .*; set hsm\.pkcs11\.module first; nothing changed/);
    await refused('hsm.pkcs11.modul', '"/x.so"', /unknown setting "hsm\.pkcs11\.modul"/);
    const fresh = makeHome();
    try {
      for (const [key, value] of [
        ['hsm.pkcs11.module', '"/usr/lib/softhsm/libsofthsm2.so"'],
        ['hsm.pkcs11.tokens', '[{"partition":"payments","serial":"1234"}]'],
        ['hsm.backend', '"pkcs11"'],
      ] as const) {
        const result = await runNtls(['config', 'set', key, value, '--home', fresh]);
        expect(result.status, result.stderr).toBe(0);
      }
      expect(JSON.parse(readFileSync(join(fresh, 'ntls.json'), 'utf8')).hsm).toMatchObject({
        backend: 'pkcs11', pkcs11: { module: '/usr/lib/softhsm/libsofthsm2.so', tokens: [{ partition: 'payments', serial: '1234' }] },
      });
    } finally {
      removeHome(fresh);
    }
  });
  it('a setting that wants another set first says which', async () => {
    await refused('store.backend', '"postgres"', /"store\.url": .*; set store\.url first; nothing changed/);
  });
  it('a new node\'s home, configured before its first start as docs/ha.md shows: the folder is made', async () => {
    const fresh = join(makeHome(), 'node2');
    try {
      for (const [key, value] of [
        ['clients.verifyLocation', '"/srv/ntls-clients"'],
        ['store.url', '"postgresql://ntls@db1:5432,db2:5432/ntls?target_session_attrs=read-write"'],
        ['store.backend', '"postgres"'],
        ['store.poolSize', '10'],
      ] as const) {
        const result = await runNtls(['config', 'set', key, value, '--home', fresh]);
        expect(result.status, result.stderr).toBe(0);
      }
      expect(JSON.parse(readFileSync(join(fresh, 'ntls.json'), 'utf8'))).toMatchObject({ store: { backend: 'postgres', poolSize: 10 }, clients: { verifyLocation: '/srv/ntls-clients' } });
      expect(statSync(fresh).mode & 0o777).toBe(0o750);
    } finally {
      removeHome(dirname(fresh));
    }
  });
  it('as JSON: {"ok":false,"error":{...}} on stdout, same status', async () => {
    const result = await ntls('config', 'set', 'server.bind', 'not an ip!', '--json');
    expect(result.status).toBe(2);
    expect(JSON.parse(result.stdout)).toMatchObject({ ok: false, error: { code: 'NTLS_ERR_CONFIG' } });
  });

  it('accepts an address or a name of this host, and the daemon starts with it', async () => {
    expect((await ntls('config', 'set', 'server.bind', 'localhost')).status).toBe(0);
    expect((await ntls('config', 'set', 'server.bind', '127.0.0.1')).status).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8')).server.bind).toBe('127.0.0.1');
    const daemon = await startDaemon(home);
    expect(daemon.port).toBeGreaterThan(0);
    await daemon.stop();
  });

  it('a file edited by hand with a bad bind: the start refuses it the same way', async () => {
    const h = makeHome({ server: { bind: 'not an ip!', port: 0 } });
    try {
      const result = await runNtls(['start', '--quiet', '--home', h]);
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/"server\.bind": neither an IP address nor a host name.*\[NTLS_ERR_CONFIG\]/);
    } finally {
      removeHome(h);
    }
  });
});
