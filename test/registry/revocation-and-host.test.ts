// Registration is what admits a client, and only while it holds: a certificate removed from (or
// replaced in) the verify location ends the client's live links; the ip check is on by default
// (registration names the host; `ntls client hostip` follows a NAT); `ntls client register`
// refuses an expired certificate (unless --force), the same certificate under a second name, and
// a missing host while the check is on; `client list` marks expiry.
import { afterEach, describe, expect, it } from 'vitest';
import { renameSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import { LinkError, type Link } from '../../src/client/link.js';
import {
  Daemon, keepaliveBody, link, linkWhenRegistered, makeClient, makeHome, registerClient, removeHome, runNtls, sleep, startDaemon,
  unregisterClient, type TestClient,
} from '../support/daemon.js';

let daemon: Daemon | undefined;
let home: string;
afterEach(async () => {
  await daemon?.stop();
  daemon = undefined;
  removeHome(home);
});

async function started(config: Record<string, unknown> = {}): Promise<Daemon> {
  home = makeHome({ datapath: { receiveTimeout: 0 }, ...config });
  daemon = await startDaemon(home);
  return daemon;
}

/** A link from a chosen loopback source address. */
function linkFrom(d: Daemon, client: TestClient, address: string): Promise<Link> {
  return link(d, client, { socket: netConnect({ host: '127.0.0.1', port: d.port, localAddress: address }) });
}

function closedWithin(l: Link, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (l.socket.destroyed) return resolve(true);
    const timer = setTimeout(() => resolve(false), ms);
    l.socket.once('close', () => { clearTimeout(timer); resolve(true); });
  });
}

describe('revocation through the verify location', () => {
  it('a certificate removed from the verify location ends the client\'s live links, after the guide\'s flush line', async () => {
    const d = await started();
    const gone = await makeClient('gone');
    const stays = await makeClient('stays');
    registerClient(home, gone);
    registerClient(home, stays);
    const links = [await linkWhenRegistered(d, gone), await link(d, gone)];
    const other = await linkWhenRegistered(d, stays);
    for (const l of links) expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    const ports = links.map((l) => l.socket.localPort!);
    const from = d.log().length;
    unregisterClient(home, gone);
    for (const l of links) expect(await closedWithin(l, 10_000)).toBe(true);
    // A datapath worker's lines reach lunalogs through the main process, a moment after the close.
    for (const port of ports) await d.waitForLog(`Connection terminating:  127.0.0.1/${port}`, 5000, from);
    const bodies = d.bodies().slice(from);
    const flushed = bodies.indexOf('info : 0 : Detected client certificate removed from verify location.  Flush verify location cache');
    expect(flushed).toBeGreaterThanOrEqual(0);
    for (const port of ports) {
      expect(bodies.indexOf(`info : 0xc0000002 : Connection terminating:  127.0.0.1/${port}`)).toBeGreaterThan(flushed);
    }
    // Another client is not touched, and the removed one is refused from then on.
    expect((await other.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    expect(await link(d, gone).catch((e: unknown) => e)).toBeInstanceOf(LinkError);
    await other.close();
  });

  it('the verify location folder moved away: the guide\'s path line once, the daemon serves on with the registrations it had; back, it is watched again', async () => {
    const d = await started();
    const held = await makeClient('held');
    const later = await makeClient('later');
    registerClient(home, held);
    registerClient(home, later);
    const live = await linkWhenRegistered(d, held);
    const from = d.log().length;
    const folder = join(home, 'clients');
    renameSync(folder, `${folder}.away`);
    await d.waitForLog('Chrystoki configuration client certificate path invalid: RC_FILE_NAME_INVALID', 10_000, from);
    // Several rescans later (the slow one runs every 5 s): the line once, nobody dropped, new links admitted.
    await sleep(6000);
    expect(d.child.exitCode).toBeNull();
    expect((await live.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    const fresh = await link(d, held);
    await fresh.close();
    const bodies = () => d.bodies().slice(from);
    expect(bodies().filter((b) => b.includes('client certificate path invalid'))).toHaveLength(1);
    expect(bodies().some((b) => b.includes('Detected client certificate removed') || b.includes('CRASH'))).toBe(false);
    expect(bodies().find((b) => b.includes('client certificate path invalid'))).toBe('critical : 0xc0000402 : Chrystoki configuration client certificate path invalid: RC_FILE_NAME_INVALID');
    // Back in place: a certificate removed from it afterwards is seen at once, by the new watch.
    renameSync(`${folder}.away`, folder);
    await sleep(6000);
    const back = d.log().length;
    const laterLink = await link(d, later);
    unregisterClient(home, later);
    expect(await closedWithin(laterLink, 3000)).toBe(true);
    await d.waitForLog('Detected client certificate removed from verify location', 1000, back);
    expect((await live.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    await live.close();
  });

  it('a certificate replaced under the same name ends the links made with the old one, after the guide\'s flush line', async () => {
    const d = await started();
    const before = await makeClient('rotated');
    registerClient(home, before);
    const old = await linkWhenRegistered(d, before);
    const port = old.socket.localPort!;
    const from = d.log().length;
    const after = await makeClient('rotated');
    writeFileSync(join(home, 'clients', 'rotated.pem'), after.certificatePem);
    expect(await closedWithin(old, 10_000)).toBe(true);
    await d.waitForLog(`Connection terminating:  127.0.0.1/${port}`, 5000, from);
    const bodies = d.bodies().slice(from);
    const flushed = bodies.indexOf('info : 0 : Detected client certificate removed from verify location.  Flush verify location cache');
    expect(flushed).toBeGreaterThanOrEqual(0);
    expect(bodies.indexOf(`info : 0xc0000002 : Connection terminating:  127.0.0.1/${port}`)).toBeGreaterThan(flushed);
    const fresh = await linkWhenRegistered(d, after);
    expect((await fresh.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    await fresh.close();
  });
});

describe('the ip check, on by default', () => {
  it('a client is accepted from its registered host only; one registered without a host is refused', async () => {
    const d = await started();
    const pinned = await makeClient('pinned');
    const hostless = await makeClient('hostless');
    registerClient(home, pinned, { host: '127.0.0.1' });
    registerClient(home, hostless, { host: null });
    const ok = await linkWhenRegistered(d, pinned);
    await ok.close();
    const from = d.log().length;
    expect(await linkFrom(d, pinned, '127.0.0.9').catch((e: unknown) => e)).toBeInstanceOf(LinkError);
    expect(await link(d, hostless).catch((e: unknown) => e)).toBeInstanceOf(LinkError);
    await d.waitForLog(/info : 0 : Client credentials cannot be verified : 127\.0\.0\.9\/\d+$/, 5000, from);
    await d.waitForLog(/info : 0 : Client credentials cannot be verified : 127\.0\.0\.1\/\d+$/, 5000, from);
  });

  it('`ntls client hostip` moves a client to the address it is seen from (behind NAT)', async () => {
    const d = await started();
    const natted = await makeClient('natted');
    registerClient(home, natted);
    expect(await linkFrom(d, natted, '127.0.0.7').catch((e: unknown) => e)).toBeInstanceOf(LinkError);
    expect((await runNtls(['client', 'hostip', '-c', 'natted', '-n', '127.0.0.7', '--home', home])).status).toBe(0);
    const l = await linkFrom(d, natted, '127.0.0.7');
    expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    await l.close();
    expect(await link(d, natted).catch((e: unknown) => e)).toBeInstanceOf(LinkError);
  });

  it('clients.ipCheck false accepts a registered certificate from any address, and registration without a host', async () => {
    const d = await started({ clients: { ipCheck: false } });
    const roaming = await makeClient('roaming');
    const file = join(home, 'roaming.pem');
    writeFileSync(file, roaming.certificatePem);
    expect((await runNtls(['client', 'register', '-c', 'roaming', '--cert', file, '--home', home])).status).toBe(0);
    const l = await linkFrom(d, roaming, '127.0.0.8');
    await l.close();
  });
});

describe('ntls client register', () => {
  it('refuses a missing host while the ip check is on, an expired certificate (unless --force), and a certificate already registered', async () => {
    await started();
    const fresh = await makeClient('fresh');
    const expired = await makeClient('stale', { notBefore: new Date(Date.now() - 3 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
    const freshFile = join(home, 'fresh.pem');
    const expiredFile = join(home, 'stale.pem');
    writeFileSync(freshFile, fresh.certificatePem);
    writeFileSync(expiredFile, expired.certificatePem);
    const ntls = (...args: string[]) => runNtls([...args, '--home', home]);

    const noHost = await ntls('client', 'register', '-c', 'fresh', '--cert', freshFile);
    expect(noHost.status).toBe(2); // bad input (docs/operations.md, exit statuses)
    expect(noHost.stderr).toContain('[NTLS_ERR_HOST_REQUIRED]');

    const old = await ntls('client', 'register', '-c', 'stale', '--cert', expiredFile, '-n', '127.0.0.1');
    expect(old.status).toBe(1);
    expect(old.stderr).toContain('[NTLS_ERR_CERT_EXPIRED]');
    expect(JSON.parse((await ntls('client', 'list', '--json')).stdout)).toEqual([]);

    expect((await ntls('client', 'register', '-c', 'fresh', '--cert', freshFile, '-n', '127.0.0.1')).status).toBe(0);
    const twice = await ntls('client', 'register', '-c', 'fresh-again', '--cert', freshFile, '-n', '127.0.0.1');
    expect(twice.status).toBe(1);
    expect(twice.stderr).toContain('[NTLS_ERR_CERT_REGISTERED]');

    const forced = await ntls('client', 'register', '-c', 'stale', '--cert', expiredFile, '-n', '127.0.0.1', '--force');
    expect(forced.status).toBe(0);
    expect(forced.stderr).toMatch(/^ntls: WARNING: /);
    const listed = JSON.parse((await ntls('client', 'list', '--json')).stdout) as Array<{ name: string; expired: boolean }>;
    expect(listed.map((c) => [c.name, c.expired])).toEqual([['fresh', false], ['stale', true]]);
    const table = (await ntls('client', 'list')).stdout;
    expect(table).toMatch(/^stale\s.*\(EXPIRED\)$/m);
    expect(table).not.toMatch(/^fresh\s.*EXPIRED/m);

    // A start date to come is registered (with a warning) and shown as such: it cannot link yet.
    const early = await makeClient('early', { notBefore: new Date(Date.now() + 3_600_000), notAfter: new Date(Date.now() + 86400_000) });
    writeFileSync(join(home, 'early.pem'), early.certificatePem);
    const registered = await ntls('client', 'register', '-c', 'early', '--cert', join(home, 'early.pem'), '-n', '127.0.0.1');
    expect(registered.stderr).toContain('is not valid before');
    expect(JSON.parse((await ntls('client', 'show', '-c', 'early', '--json')).stdout)).toMatchObject({ notYetValid: true, expired: false });
    expect((await ntls('client', 'list')).stdout).toMatch(/^early\s.*\(NOT VALID BEFORE \S+\)$/m);
  });
});
