// `ntls client renew`: a registered client's new certificate, under the same name, host and
// partitions, with an audit record; links made with the old certificate end, the new one links.
// Before, the documented renewal (register the new certificate) was refused as a duplicate name,
// and deleting the client first lost its partitions and slot order.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readAudit } from '../../src/audit/audit-log.js';
import { Daemon, keepaliveBody, link, makeClient, makeHome, removeHome, runNtls, startDaemon, type TestClient } from '../support/daemon.js';

let home: string;
let daemon: Daemon;
let first: TestClient;
const ntls = (...args: string[]) => runNtls([...args, '--home', home]);

beforeAll(async () => {
  home = makeHome({ datapath: { receiveTimeout: 0 } });
  daemon = await startDaemon(home);
  first = await makeClient('app');
  writeFileSync(join(home, 'app-1.pem'), first.certificatePem);
  expect((await ntls('client', 'register', '-c', 'app', '--cert', join(home, 'app-1.pem'), '--hostname', '127.0.0.1')).status).toBe(0);
  expect((await ntls('client', 'assign-partition', '-c', 'app', '-p', 'default')).status).toBe(0);
});
afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});

describe('ntls client renew', () => {
  it('takes the new certificate, keeps host and partitions, ends the old links, and the new certificate links', async () => {
    const old = await link(daemon, first);
    expect((await old.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    const closed = new Promise<void>((resolve) => old.socket.once('close', () => resolve()));
    const second = await makeClient('app');
    writeFileSync(join(home, 'app-2.pem'), second.certificatePem);
    const renewed = await ntls('client', 'renew', '-c', 'app', '--cert', join(home, 'app-2.pem'));
    expect(renewed.status, renewed.stderr).toBe(0);
    expect(renewed.stdout).toMatch(/^client app renewed \(fingerprint [0-9A-F:]+\); 1 link\(s\) made with the old certificate end\n$/);
    await closed;
    const shown = JSON.parse((await ntls('client', 'show', '-c', 'app', '--json')).stdout) as { host: string; partitions: string[]; fingerprint: string };
    expect(shown.host).toBe('127.0.0.1');
    expect(shown.partitions).toHaveLength(1);
    const fresh = await link(daemon, second);
    expect((await fresh.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    await fresh.close();
    expect(await link(daemon, first).catch((e: unknown) => e)).toBeInstanceOf(Error);
    expect(readAudit(home).filter((r) => r.action === 'client.renew').at(-1)).toMatchObject({ result: 'ok', target: { name: 'app' } });
  });

  it('refuses the certificate the client has already, another client\'s, a file that is not one, and an unknown client; nothing changes', async () => {
    const before = (await ntls('client', 'fingerprint', '-c', 'app')).stdout;
    const same = await ntls('client', 'renew', '-c', 'app', '--cert', join(home, 'app-2.pem'));
    expect(same.status).not.toBe(0);
    expect(same.stderr).toContain('[NTLS_ERR_CERT_REGISTERED]');
    const other = await makeClient('other');
    writeFileSync(join(home, 'other.pem'), other.certificatePem);
    expect((await ntls('client', 'register', '-c', 'other', '--cert', join(home, 'other.pem'), '--hostname', '127.0.0.1')).status).toBe(0);
    const taken = await ntls('client', 'renew', '-c', 'app', '--cert', join(home, 'other.pem'));
    expect(taken.stderr).toContain('already registered as client "other"');
    writeFileSync(join(home, 'junk.pem'), 'not a certificate');
    expect((await ntls('client', 'renew', '-c', 'app', '--cert', join(home, 'junk.pem'))).status).not.toBe(0);
    const unknown = await ntls('client', 'renew', '-c', 'nobody', '--cert', join(home, 'other.pem'));
    expect(unknown.stderr).toContain('[NTLS_ERR_UNKNOWN_CLIENT]');
    expect((await ntls('client', 'fingerprint', '-c', 'app')).stdout).toBe(before);
  });
});
