import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, link, linkWhenRegistered, keepaliveBody, runNtls, makeClient, makeHome, registerClient, removeHome, sleep, startDaemon, workersLine } from '../support/daemon.js';

const homes: string[] = [];
const daemons: Daemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop('SIGKILL');
  for (const h of homes.splice(0)) removeHome(h);
});

function home(config: Record<string, unknown> = {}): string {
  const h = makeHome(config);
  homes.push(h);
  return h;
}

const LINE = /^\d{4} [A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2} \S+  local5 (crit|err|warn|info|debug)  NTLS \[\d+\]: /;

describe('daemon start and shutdown', () => {
  it('writes the start-up sequence in order once listening, and the shutdown sequence on SIGTERM', async () => {
    const h = home();
    const daemon = await startDaemon(h);
    daemons.push(daemon);
    const startup = daemon.bodies();
    expect(startup).toEqual([
      'info : 0 : Starting up NTLS........',
      'info : 0 : HSM crypto support for data path SSL operations disabled',
      'info : 0 : Data path is not configured with a command processor module.  Use default command processor setting',
      'info : 0 : "NTLS PKCS#11 Command Processor" module version 1.0 loaded',
      'info : 0 : SA command processor configured with 50 worker threads',
      workersLine(),
      'info : 0 : Client certificate verify location monitor started',
      'info : 0 : NTLS is online and operational.',
      'info : 0 : Data path TCP keep alive is configured as : TCP_KEEPIDLE = 10 sec : TCP_KEEPINTVL = 10 sec : TCP_KEEPCNT = 2 retries',
      'info : 0 : Data path TCP keep alive is configured as : TCP_KEEPIDLE = 10 sec : SSL cipher list set to TLS_AES_256_GCM_SHA384:AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384',
    ]);
    for (const line of daemon.log()) expect(line).toMatch(LINE);
    // First start made the server key (owner-only) and certificate.
    const key = readFileSync(join(h, 'server', 'server.key'), 'utf8');
    expect(key).toContain('BEGIN PRIVATE KEY');

    const client = await makeClient('appclient');
    registerClient(h, client);
    const l = await linkWhenRegistered(daemon, client);
    const before = daemon.log().length;
    const result = await daemon.stop('SIGTERM');
    expect(result.status).toBe(0);
    const shutdown = daemon.bodies().slice(before);
    const order = [
      'info : 0 : Shutting down NTLS....',
      'info : 0 : Intiating dispatch termination.',
      'info : 0 : Dispatching has been terminated.',
      'info : 0 : Client certificate verify location monitor terminated',
      'info : 0 : Terminating.',
      'info : 0 : "NTLS PKCS#11 Command Processor" shut downed',
      'info : 0 : Command Processor module unloaded',
      'info : 0 : NTLS terminated',
    ];
    const positions = order.map((text) => shutdown.indexOf(text));
    expect(positions.every((p) => p >= 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    // The open connection was closed cleanly before dispatching ended.
    const terminating = shutdown.findIndex((b) => b.startsWith('info : 0xc0000002 : Connection terminating:  127.0.0.1/'));
    expect(terminating).toBeGreaterThan(positions[1]!);
    expect(terminating).toBeLessThan(positions[2]!);
    await l.close();
  });

  it('appends to lunalogs across restarts, never truncating', async () => {
    const h = home();
    const first = await startDaemon(h);
    await first.stop();
    const lines = first.log().length;
    const second = await startDaemon(h);
    daemons.push(second);
    expect(second.log().length).toBeGreaterThan(lines);
    expect(second.log().filter((l) => l.endsWith('Starting up NTLS........'))).toHaveLength(2);
  });

  it('log.debug on: "Found N partitions on HSM." counts the first start\'s default partition (1, not 0), and so does the next start', async () => {
    const h = home({ log: { debug: true } });
    const first = await startDaemon(h);
    await first.stop();
    const second = await startDaemon(h);
    daemons.push(second);
    expect(second.bodies().filter((b) => b.includes('partitions on HSM.'))).toEqual([
      'debug : 0 : Found 1 partitions on HSM.',
      'debug : 0 : Found 1 partitions on HSM.',
    ]);
    expect((await runNtls(['partition', 'list', '--json', '--home', h])).stdout).toContain('"default"');
  });

  it('--port and --bind override the home configuration for one run', async () => {
    const h = home({ server: { bind: '0.0.0.0', port: 1 } });
    const daemon = await startDaemon(h, {}, ['--port', '0', '--bind', '127.0.0.1']);
    daemons.push(daemon);
    expect(daemon.stdout).toMatch(/online on 127\.0\.0\.1:\d+/);
    // config show prints the file's values and says where the daemon really listens.
    const shown = await runNtls(['config', 'show', '--home', h]);
    expect(shown.stdout).toMatch(/^server\.port\s+1\s/m);
    expect(shown.stderr).toBe(`note: the running daemon listens on 127.0.0.1:${daemon.port} (a --bind or --port given at its start); the configuration says 0.0.0.0:1\n`);
  });

  it('the start message names a partition the home has, and the home, in its next steps', async () => {
    const h = home();
    const daemon = await startDaemon(h);
    daemons.push(daemon);
    expect(daemon.stdout).toContain(`ntls client assign-partition --client NAME --partition default --home ${h}`);
  });

  it('a fault nothing catches writes ntls_bt_<date>_<time> and the CRASH AND BURN line', async () => {
    const h = home();
    const daemon = await startDaemon(h, { NTLS_FAULT_INJECTION: 'uncaught-on-connection', NTLS_WORKERS: '0' });
    daemons.push(daemon);
    const client = await makeClient('crasher');
    registerClient(h, client);
    await link(daemon, client).catch(() => undefined);
    const result = await daemon.exited;
    expect(result.status).toBe(70);
    const dumps = readdirSync(join(h, 'logs')).filter((f) => /^ntls_bt_\d{4}-\d{2}-\d{2}_\d{2}:\d{2}:\d{2}$/.test(f));
    expect(dumps).toHaveLength(1);
    expect(readFileSync(join(h, 'logs', dumps[0]!), 'utf8')).toContain('fault injected by NTLS_FAULT_INJECTION');
    const crash = daemon.log().find((l) => l.includes('CRASH AND BURN'))!;
    expect(crash).toMatch(/ local5 crit  NTLS \[\d+\]: info : 0 : NTLS CRASH AND BURN! Stack dump saved to .*ntls_bt_/);
  });

  it('the same fault on a datapath worker: its dump and line (its pid), and the daemon serves on with a new worker', async () => {
    const h = home();
    const daemon = await startDaemon(h, { NTLS_FAULT_INJECTION: 'uncaught-on-connection', NTLS_WORKERS: '2' });
    daemons.push(daemon);
    const client = await makeClient('crasher');
    registerClient(h, client);
    // The first link stays in the main process (it holds as many as the worker); the next goes to
    // the worker, whose hook faults.
    const held = await linkWhenRegistered(daemon, client);
    await link(daemon, client).catch(() => undefined);
    const dumpsNow = () => readdirSync(join(h, 'logs')).filter((f) => /^ntls_bt_/.test(f));
    for (let i = 0; i < 100 && (dumpsNow().length === 0 || !daemon.log().some((l) => l.includes('CRASH AND BURN'))); i++) await sleep(50);
    expect(dumpsNow()).toHaveLength(1);
    expect(readFileSync(join(h, 'logs', dumpsNow()[0]!), 'utf8')).toContain('fault injected by NTLS_FAULT_INJECTION');
    const crash = daemon.log().find((l) => l.includes('CRASH AND BURN'))!;
    expect(crash).toMatch(/ local5 crit  NTLS \[\d+\]: info : 0 : NTLS CRASH AND BURN! Stack dump saved to .*ntls_bt_/);
    expect(crash).not.toContain(`NTLS [${daemon.child.pid}]`);
    // Bounded by time, not tries: under a loaded machine each `ntls info show` takes a while.
    let workers: Array<{ pid: number }> = [];
    for (const until = Date.now() + 30_000; workers.length !== 2 && Date.now() < until;) {
      workers = (JSON.parse((await runNtls(['info', 'show', '--json', '--home', h])).stdout) as { workers: Array<{ pid: number }> }).workers;
      if (workers.length !== 2) await sleep(100);
    }
    expect(workers, daemon.log().slice(-20).join('\n')).toHaveLength(2);
    expect(daemon.child.exitCode).toBeNull();
    // The link the main process holds was never touched.
    await held.request(keepaliveBody());
    await held.close();
  });

  it('keys in hardware: the server key is an object of the administrative partition, not a file', async () => {
    const h = home({ server: { bind: '127.0.0.1', port: 0, keysInHardware: true }, hsm: { kdfCost: 1024 } });
    const first = await startDaemon(h);
    daemons.push(first);
    expect(first.bodies()).toContain('info : 0 : HSM crypto support for data path SSL operations NOT enabled');
    expect(existsSync(join(h, 'server', 'server.key'))).toBe(false);
    const shown = JSON.parse((await runNtls(['cert', 'show', '--json', '--home', h])).stdout) as { key: string };
    expect(shown.key).toBe('in the HSM, partition ntls-admin');
    const client = await makeClient('kih');
    registerClient(h, client);
    const l = await linkWhenRegistered(first, client);
    const fingerprint = (l.socket.getPeerCertificate() as { fingerprint256: string }).fingerprint256;
    await l.close();
    const partitions = JSON.parse((await runNtls(['partition', 'list', '--json', '--home', h])).stdout) as Array<{ label: string; tokenObjects: number }>;
    expect(partitions.find((p) => p.label === 'ntls-admin')).toMatchObject({ tokenObjects: 2 });
    const assign = await runNtls(['client', 'assign-partition', '-c', 'kih', '-p', 'ntls-admin', '--home', h]);
    expect(assign.status).not.toBe(0);
    expect(assign.stderr).toContain('holds the server key');
    // The key outlives a restart: same certificate, same key.
    await first.stop();
    const second = await startDaemon(h);
    daemons.push(second);
    const again = await link(second, client);
    expect((again.socket.getPeerCertificate() as { fingerprint256: string }).fingerprint256).toBe(fingerprint);
    await again.close();
    // cert regen makes a new key in the partition.
    expect((await runNtls(['cert', 'regen', '--force', '--home', h])).status).toBe(0);
    const fresh = await link(second, client);
    expect((fresh.socket.getPeerCertificate() as { fingerprint256: string }).fingerprint256).not.toBe(fingerprint);
    await fresh.close();
  });

  it('keys in hardware, a wrong administrative PIN: the guide\'s key-loading line, exit status 2 (no restart loop), and the right PIN unlocks the partition it locked', async () => {
    // Before: "Failed to create private key/certificate", exit 1 (systemd restarted it every 5 s),
    // and after maxFailedLogins such starts the key could not be had even with the right PIN.
    const h = home({ server: { bind: '127.0.0.1', port: 0, keysInHardware: true }, hsm: { kdfCost: 1024, maxFailedLogins: 3 } });
    const first = await startDaemon(h);
    daemons.push(first);
    const client = await makeClient('kih-pin');
    registerClient(h, client);
    const fingerprint = (await (async () => {
      const l = await linkWhenRegistered(first, client);
      const print = (l.socket.getPeerCertificate() as { fingerprint256: string }).fingerprint256;
      await l.close();
      return print;
    })());
    await first.stop();
    const bodies = () => readFileSync(join(h, 'logs', 'lunalogs'), 'utf8').split('\n').map((l) => l.slice(l.indexOf(']: ') + 3));
    const said: string[] = [];
    // Starts with the wrong PIN until the Crypto Officer is locked (that start also tries the SO once).
    for (let i = 0; i < 8 && !said.includes('CKR_PIN_LOCKED'); i++) {
      const wrong = await runNtls(['start', '--home', h, '--quiet'], { NTLS_ADMIN_PIN: 'not-the-pin-1' });
      expect(wrong.status, wrong.stderr).toBe(2);
      expect(wrong.stderr).toContain('$NTLS_ADMIN_PIN) does not open partition ntls-admin, which holds the server key (');
      expect(wrong.stderr.trimEnd()).toMatch(/\[RC_SSL_LOAD_SERVER_PRIVATE_KEY_ERROR\]$/);
      said.push(/\((CKR_PIN_\w+)/.exec(wrong.stderr.slice(wrong.stderr.indexOf('server key (')))![1]!);
    }
    expect(said.at(-1)).toBe('CKR_PIN_LOCKED');
    expect(said.slice(0, -1).every((s) => s === 'CKR_PIN_INCORRECT')).toBe(true);
    expect(bodies().filter((b) => b === 'critical : 0xc0000705 : Error loading the server private key: RC_SSL_LOAD_SERVER_PRIVATE_KEY_ERROR')).toHaveLength(said.length);
    expect(bodies().some((b) => b.includes('Failed to create private key/certificate'))).toBe(false);
    // The right PIN (server/admin.pin) unlocks the Crypto Officer as SO: the same key serves.
    const again = await startDaemon(h);
    daemons.push(again);
    const l = await link(again, client);
    expect((l.socket.getPeerCertificate() as { fingerprint256: string }).fingerprint256).toBe(fingerprint);
    await l.close();
  });

  it('keys in hardware turned on and off again: each start serves the certificate of the key in use, the one clients registered', async () => {
    const h = home({ server: { bind: '127.0.0.1', port: 0 }, hsm: { kdfCost: 1024 } });
    const setKeysInHardware = (on: boolean) => {
      const file = join(h, 'ntls.json');
      const config = JSON.parse(readFileSync(file, 'utf8')) as { server: Record<string, unknown> };
      config.server.keysInHardware = on;
      writeFileSync(file, JSON.stringify(config));
    };
    const client = await makeClient('toggler');
    registerClient(h, client);
    const served = async () => {
      const daemon = await startDaemon(h);
      daemons.push(daemon);
      const l = await linkWhenRegistered(daemon, client);
      const fingerprint = (l.socket.getPeerCertificate() as { fingerprint256: string }).fingerprint256;
      await l.close();
      await daemon.stop();
      return { fingerprint, stderr: daemon.stderr };
    };
    const fileKey = await served();
    setKeysInHardware(true);
    const hsmKey = await served();
    expect(hsmKey.fingerprint).not.toBe(fileKey.fingerprint);
    expect(hsmKey.stderr).toContain('server.keysInHardware is on:');
    expect(hsmKey.stderr).toContain('is now the certificate of the server key in partition ntls-admin (a new key)');
    setKeysInHardware(false);
    const back = await served();
    expect(back.fingerprint).toBe(fileKey.fingerprint);
    expect(back.stderr).toContain('server.keysInHardware is off');
    setKeysInHardware(true);
    const again = await served();
    expect(again.fingerprint).toBe(hsmKey.fingerprint);
    expect(again.stderr).toContain('is again the certificate of the server key in partition ntls-admin;');

    // A home that had its key in the HSM from its first start has no key file to go back to.
    const h2 = home({ server: { bind: '127.0.0.1', port: 0, keysInHardware: true }, hsm: { kdfCost: 1024 } });
    const first = await startDaemon(h2);
    daemons.push(first);
    await first.stop();
    const file = join(h2, 'ntls.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as { server: Record<string, unknown> };
    config.server.keysInHardware = false;
    writeFileSync(file, JSON.stringify(config));
    const second = await startDaemon(h2);
    daemons.push(second);
    expect(second.stderr).toContain('a new server key and certificate were made');
    expect(existsSync(join(h2, 'server', 'server.key'))).toBe(true);
    await second.stop();
  });

  it('serves a keepalive to a registered client', async () => {
    const h = home();
    const daemon = await startDaemon(h);
    daemons.push(daemon);
    const client = await makeClient('pinger');
    registerClient(h, client);
    const l = await linkWhenRegistered(daemon, client);
    const answer = await l.request(keepaliveBody());
    expect(answer.body.equals(keepaliveBody())).toBe(true);
    await l.close();
  });
});
