// The operator's CLI driven as a user would, against a running daemon, checking output and
// the effect on live clients.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LinkError } from '../../src/client/link.js';
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { Daemon, keepaliveBody, link, makeClient, makeHome, ntlsBin, registerClient, removeHome, runNtls, startDaemon, workersLine, type TestClient } from '../support/daemon.js';

let home: string;
let daemon: Daemon;
let dave: TestClient;
let certFile: string;

beforeAll(async () => {
  home = makeHome({ datapath: { receiveTimeout: 0 } });
  daemon = await startDaemon(home);
  dave = await makeClient('dave');
  certFile = join(home, 'dave-upload.pem');
  writeFileSync(certFile, dave.certificatePem);
});
afterAll(async () => {
  await daemon?.stop();
  removeHome(home);
});

const ntls = (...args: string[]) => runNtls([...args, '--home', home]);

function expectOneLineFailure(result: { status: number | null; stderr: string }) {
  expect(result.status).not.toBe(0);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(/^ntls: /);
}

describe('ntls client', () => {
  it('the admin socket is owner-only', () => {
    expect(statSync(join(home, 'admin.sock')).mode & 0o777).toBe(0o600);
  });

  it('register: the client connects at once, without a restart', async () => {
    const result = await ntls('client', 'register', '--client', 'dave', '--cert', certFile, '--hostname', '127.0.0.1');
    expect(result.status).toBe(0);
    const l = await link(daemon, dave);
    expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    await l.close();
  });

  it('list and show, for people and as JSON', async () => {
    const human = await ntls('client', 'list');
    expect(human.stdout.split('\n')[0]).toMatch(/^NAME\s+HOST\s+PARTITIONS\s+CONNECTIONS\s+NOTAFTER$/);
    expect(human.stdout).toMatch(/^dave\s+127\.0\.0\.1\s/m);
    const json = JSON.parse((await ntls('client', 'show', '--client', 'dave', '--json')).stdout);
    expect(json).toMatchObject({ name: 'dave', host: '127.0.0.1', partitions: [] });
    const fp = (await ntls('client', 'fingerprint', '--client', 'dave')).stdout.trim();
    expect(fp).toBe(json.fingerprint);
  });

  it('bad input changes nothing and says what to do in one line', async () => {
    const notCert = join(home, 'not-a-cert.pem');
    writeFileSync(notCert, 'hello');
    expectOneLineFailure(await ntls('client', 'register', '--client', 'eve', '--cert', notCert, '--hostname', '127.0.0.1'));
    expectOneLineFailure(await ntls('client', 'register', '--client', 'dave', '--cert', certFile, '--hostname', '127.0.0.1'));
    expectOneLineFailure(await ntls('client', 'register', '--client', 'eve', '--cert', join(home, 'missing.pem'), '--hostname', '127.0.0.1'));
    expectOneLineFailure(await ntls('client', 'hostip', '--client', 'dave', '--hostname', '300.1.2.3.4!'));
    expectOneLineFailure(await ntls('client', 'show', '--client', 'nobody'));
    const list = JSON.parse((await ntls('client', 'list', '--json')).stdout);
    expect(list.map((c: { name: string }) => c.name)).toEqual(['dave']);
    expect(list[0].host).toBe('127.0.0.1');
  });

  it('delete ends the client\'s live connection at once and refuses it from then on', async () => {
    const l = await link(daemon, dave);
    const closed = new Promise<void>((r) => l.socket.once('close', () => r()));
    const result = await ntls('client', 'delete', '--client', 'dave', '--force');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('1 connection(s) ended');
    await closed;
    const error = await link(daemon, dave).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LinkError);
  });

  it('delete without --force and without a terminal asks for --force and changes nothing', async () => {
    await ntls('client', 'register', '--client', 'dave', '--cert', certFile, '--hostname', '127.0.0.1');
    expectOneLineFailure(await ntls('client', 'delete', '--client', 'dave'));
    expect(JSON.parse((await ntls('client', 'list', '--json')).stdout)).toHaveLength(1);
  });
});

describe('ntls cert, info, service, config', () => {
  it('cert regen: new connections get the new certificate; a client holding the old one refuses the server', async () => {
    const before = JSON.parse((await ntls('cert', 'show', '--json')).stdout);
    const oldCert = readFileSync(join(home, 'server', 'server.pem'), 'utf8');
    const result = await ntls('cert', 'regen', '--force');
    expect(result.status).toBe(0);
    expect(result.stderr).toContain('every client must add the new server certificate');
    const after = JSON.parse((await ntls('cert', 'show', '--json')).stdout);
    expect(after.fingerprint).not.toBe(before.fingerprint);
    const error = await link(daemon, dave, { serverCertificatePem: oldCert }).catch((e: unknown) => e);
    expect((error as LinkError).code).toBe('NTLS_ERR_SERVER_CERT_MISMATCH');
    const fresh = await link(daemon, dave);
    await fresh.close();
  });

  it('info show counts connections; info reset zeroes the counters', async () => {
    const info = JSON.parse((await ntls('info', 'show', '--json')).stdout);
    expect(info.connectionsTotal).toBeGreaterThan(0);
    expect(info.requests).toBeGreaterThan(0);
    await ntls('info', 'reset');
    const zero = JSON.parse((await ntls('info', 'show', '--json')).stdout);
    expect(zero.connectionsTotal).toBe(0);
  });

  it('service status names the pid and the address', async () => {
    const status = JSON.parse((await ntls('service', 'status', '--json')).stdout);
    expect(status.pid).toBe(daemon.child.pid);
    expect(status.listening).toBe(`127.0.0.1:${daemon.port}`);
  });

  it('config set validates, writes, and applies log.debug at once', async () => {
    expectOneLineFailure(await ntls('config', 'set', 'datapath.receiveTimeout', '-5'));
    expectOneLineFailure(await ntls('config', 'set', 'datapath.nonsense', '5'));
    // The words config show prints a yes/no setting with are taken too.
    expect(JSON.parse((await ntls('config', 'set', 'log.debug', 'no', '--json')).stdout)).toEqual({ key: 'log.debug', value: false, appliedNow: true });
    const ok = await ntls('config', 'set', 'log.debug', 'true', '--json');
    expect(JSON.parse(ok.stdout)).toEqual({ key: 'log.debug', value: true, appliedNow: true });
    const shown = JSON.parse((await ntls('config', 'show', '--json')).stdout) as Array<{ key: string; value: unknown }>;
    expect(shown.find((s) => s.key === 'log.debug')!.value).toBe(true);
    expect(shown.find((s) => s.key === 'server.port')!.value).toBe(0);
  });

  it('config show shows the file\'s values, and says where the running daemon really listens when that differs', async () => {
    const shown = await ntls('config', 'show');
    expect(shown.stdout).toMatch(/^server\.port\s+0\s/m);
    expect(shown.stderr).toBe(`note: the running daemon listens on 127.0.0.1:${daemon.port} (port 0: the system chose one); the configuration says 127.0.0.1:0\n`);
  });
});

describe('no daemon', () => {
  it('admin commands say clearly that no daemon runs for that home', async () => {
    const empty = makeHome();
    try {
      const result = await runNtls(['client', 'list', '--home', empty]);
      expectOneLineFailure(result);
      expect(result.stderr).toContain('no daemon runs for');
    } finally {
      removeHome(empty);
    }
  });
});

describe('ntls service restart', () => {
  it('applies a changed setting: the whole shutdown and start-up sequences, same pid', async () => {
    const home2 = makeHome({ datapath: { receiveTimeout: 0 } });
    const d = await startDaemon(home2);
    try {
      const set = await runNtls(['config', 'set', 'datapath.inboundWorkers', '3', '--home', home2]);
      expect(set.status).toBe(0);
      const before = d.log().length;
      const result = await runNtls(['service', 'restart', '--force', '--json', '--home', home2]);
      expect(result.status).toBe(0);
      expect(JSON.parse(result.stdout.slice(result.stdout.indexOf('{'))).pid).toBe(d.child.pid);
      const bodies = d.bodies().slice(before);
      expect(bodies.indexOf('info : 0 : NTLS terminated')).toBeGreaterThanOrEqual(0);
      expect(bodies.indexOf('info : 0 : Starting up NTLS........')).toBeGreaterThan(bodies.indexOf('info : 0 : NTLS terminated'));
      // NTLS_WORKERS, when the suite runs with it, stands above the file.
      expect(bodies).toContain(workersLine(process.env.NTLS_WORKERS ? undefined : 3));
    } finally {
      await d.stop();
      removeHome(home2);
    }
  });
});

describe('ntls partition', () => {
  it('create, list, show, policy, delete (with --force), and bad input', async () => {
    const home3 = makeHome({ hsm: { kdfCost: 1024, pinMinLength: 6 } });
    const d = await startDaemon(home3);
    const run = (...args: string[]) => runNtls([...args, '--home', home3]);
    try {
      expect((await run('partition', 'create', '--label', 'payments', '--so-pin', 'so-pin-99')).status).toBe(0);
      expectOneLineFailure(await run('partition', 'create', '--label', 'payments'));
      expectOneLineFailure(await run('partition', 'create', '--label', 'x', '--so-pin', '123'));
      const list = JSON.parse((await run('partition', 'list', '--json')).stdout) as Array<{ label: string; initialized: boolean }>;
      expect(list.map((p) => [p.label, p.initialized])).toEqual([['default', false], ['payments', true]]);
      const shown = JSON.parse((await run('partition', 'show', '--partition', 'payments', '--json')).stdout);
      expect(shown).toMatchObject({ label: 'payments', tokenObjects: 0, sessions: 0, connectedClients: [] });
      expect(JSON.parse((await run('partition', 'policy', '--json')).stdout)).toMatchObject({ pinMinLength: 6, maxFailedLogins: 10 });
      expectOneLineFailure(await run('partition', 'show', '--partition', 'nope'));
      expectOneLineFailure(await run('partition', 'delete', '--partition', 'payments'));
      expect((await run('partition', 'delete', '--partition', 'payments', '--force')).status).toBe(0);
      expect(JSON.parse((await run('partition', 'list', '--json')).stdout)).toHaveLength(1);
      expectOneLineFailure(await run('client', 'assign-partition', '--client', 'nobody', '--partition', 'default'));
    } finally {
      await d.stop();
      removeHome(home3);
    }
  });
});

describe('metrics', () => {
  it('serves Prometheus metrics with per-call counts when enabled', async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const home4 = makeHome({ metrics: { enabled: true, port }, datapath: { receiveTimeout: 0 } });
    const client = await makeClient('metered');
    registerClient(home4, client);
    const d = await startDaemon(home4);
    try {
      const l = await link(d, client);
      await l.request(keepaliveBody());
      await l.close();
      const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(text).toMatch(/^ntls_requests_total\{call="NTLS_Keepalive"\} 1$/m);
      expect(text).toMatch(/^ntls_connections_total \d+$/m);
      expect(text).toMatch(/^ntls_request_duration_seconds_count\{call="NTLS_Keepalive"\} 1$/m);
    } finally {
      await d.stop();
      removeHome(home4);
    }
  });
});

describe('progress on a terminal', () => {
  it('a long operation shows its progress on a terminal (script(1) gives it one), and nothing when piped', async () => {
    const home5 = makeHome();
    const d = await startDaemon(home5);
    try {
      const onTerminal = await new Promise<string>((resolve, reject) => {
        execFile('script', ['-qec', `${process.execPath} ${ntlsBin} cert regen --force --home ${home5}`, '/dev/null'], { timeout: 30_000 },
          (error, stdout) => (error ? reject(new Error(error.message, { cause: error })) : resolve(stdout)));
      });
      expect(onTerminal).toMatch(/✓ generating the server key and certificate \d+\.\d s/);
      const piped = await runNtls(['cert', 'regen', '--force', '--home', home5]);
      expect(piped.stderr).not.toContain('generating the server key');
    } finally {
      await d.stop();
      removeHome(home5);
    }
  });
});
