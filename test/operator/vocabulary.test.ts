// Vocabulary (issue 16): partitions by name or serial (a number is a name first, then a serial,
// and a number that is one partition's name and another's serial is refused), serials called
// serials, one fingerprint format, yes/no for people and true/false in JSON (on/off where the
// setting is given so).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { X509Certificate } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, makeClient, makeHome, removeHome, runNtls, startDaemon } from '../support/daemon.js';

let home: string;
let daemon: Daemon;
let appPem = '';
const ntls = (...args: string[]) => runNtls([...args, '--home', home]);
const json = async <T>(...args: string[]) => JSON.parse((await ntls(...args, '--json')).stdout) as T;
const FINGERPRINT = /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

beforeAll(async () => {
  home = makeHome({ hsm: { kdfCost: 1024 } });
  daemon = await startDaemon(home);
});
afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});

describe('words of ntls', () => {
  it('partition show --partition N: a name first, then a serial; a name of one and serial of another is refused', async () => {
    const partitions = await json<Array<{ name: string; serial: string }>>('partition', 'list');
    const serial = partitions.find((p) => p.name === 'default')!.serial;
    expect((await json<{ name: string }>('partition', 'show', '--partition', serial)).name).toBe('default');
    expect((await ntls('partition', 'create', '--name', '0')).status).toBe(0);
    expect((await json<{ name: string }>('partition', 'show', '--partition', '0')).name).toBe('0');
    // A partition named as the serial of another: that number is ambiguous, and refused.
    const clash = await ntls('partition', 'create', '--name', serial);
    expect(clash.status).not.toBe(0);
    expect(clash.stderr).toContain('[NTLS_ERR_PARTITION_EXISTS]');
  });

  it('assign-partition speaks of partitions and serial numbers, not slots', async () => {
    const app = await makeClient('app1');
    appPem = app.certificatePem;
    const file = join(home, 'app1.pem');
    writeFileSync(file, app.certificatePem);
    expect((await ntls('client', 'register', '-c', 'app1', '--cert', file, '--hostname', '127.0.0.1')).status).toBe(0);
    const result = await ntls('client', 'assign-partition', '-c', 'app1', '-p', 'default');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^partition default assigned to app1; app1's partitions \(serial numbers, in slot order\): \d+\n$/);
    expect(result.stdout).not.toMatch(/slots:/);
  });

  it('one fingerprint format: SHA-256, colon-separated upper-case hex, for clients and the server', async () => {
    const client = await json<{ fingerprint: string }>('client', 'show', '-c', 'app1');
    expect(client.fingerprint).toMatch(FINGERPRINT);
    const alone = (await ntls('client', 'fingerprint', '-c', 'app1')).stdout.trim();
    expect(alone).toBe(client.fingerprint);
    const cert = await json<{ fingerprint: string; pem?: string }>('cert', 'show');
    expect(cert.fingerprint).toMatch(FINGERPRINT);
    const listed = await json<Array<{ fingerprint: string }>>('client', 'list');
    expect(listed[0]!.fingerprint).toBe(client.fingerprint);
    expect(client.fingerprint).toBe(new X509Certificate(appPem).fingerprint256);
  });

  it('booleans: yes/no for people, true/false in JSON', async () => {
    const human = (await ntls('client', 'show', '-c', 'app1')).stdout;
    expect(human).toMatch(/^expired\s+no$/m);
    expect((await json<{ expired: boolean }>('client', 'show', '-c', 'app1')).expired).toBe(false);
    const list = (await ntls('partition', 'list')).stdout;
    expect(list).not.toMatch(/\b(true|false)\b/);
    expect(list).toMatch(/\b(yes|no)\b/);
  });

  it('partition show says legacyRsa on/off, the words partition policy --legacy-rsa takes; JSON keeps true/false', async () => {
    expect((await ntls('partition', 'show', '-p', 'default')).stdout).toMatch(/^legacyRsa\s+off$/m);
    expect((await ntls('partition', 'policy', '-p', 'default', '--legacy-rsa', 'on')).status).toBe(0);
    expect((await ntls('partition', 'show', '-p', 'default')).stdout).toMatch(/^legacyRsa\s+on$/m);
    expect((await json<{ legacyRsa: boolean }>('partition', 'show', '-p', 'default')).legacyRsa).toBe(true);
  });
});
