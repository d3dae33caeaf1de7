// Ways the daemon refuses to start: each writes the guide's lines, one clear line on stderr,
// and exits non-zero.
import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:net';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createSelfSignedCertificate } from '../../src/certificates/self-signed.js';
import { linkWhenRegistered, makeClient, makeHome, registerClient, removeHome, runNtls, startDaemon } from '../support/daemon.js';

const homes: string[] = [];
afterEach(() => {
  for (const h of homes.splice(0)) removeHome(h);
});
function home(config: Record<string, unknown> = {}): string {
  const h = makeHome(config);
  homes.push(h);
  return h;
}

function log(h: string): string[] {
  return readFileSync(join(h, 'logs', 'lunalogs'), 'utf8').split('\n').filter(Boolean).map((l) => l.slice(l.indexOf(']: ') + 3));
}

async function startFails(h: string, args: string[] = []) {
  const result = await runNtls(['start', '--home', h, '--quiet', ...args]);
  expect(result.status).not.toBe(0);
  expect(result.stderr.trim().split('\n')).toHaveLength(1);
  expect(result.stderr).toMatch(/^ntls: /);
  // Every failure of ntls ends so, for scripts (docs/operations.md); the start's did not.
  expect(result.stderr.trimEnd()).toMatch(/ \[[A-Z][A-Z0-9_]+\]$/);
  return result;
}

/** The operator's server files, owner-only as ntls makes them (a looser mode adds a line of its own: home-permissions.test.ts). */
async function withServerFiles(h: string, files: { cert?: string; key?: string }) {
  mkdirSync(join(h, 'server'), { recursive: true, mode: 0o700 });
  if (files.cert !== undefined) writeFileSync(join(h, 'server', 'server.pem'), files.cert);
  if (files.key !== undefined) writeFileSync(join(h, 'server', 'server.key'), files.key, { mode: 0o600 });
}

describe('start-up failures', () => {
  it('port in use: bind lines and exit status 1', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const port = (blocker.address() as { port: number }).port;
    try {
      const h = home({ server: { bind: '127.0.0.1', port } });
      const result = await startFails(h);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain('port is in use');
      expect(log(h).slice(-4)).toEqual([
        'critical : 0xc0000500 : NTLS listening port could not Bind : RC_SOCKET_ERROR',
        'error : 0xc0000500 : Unable to initialize data path server socket : RC_SOCKET_ERROR',
        'error : 0xc0000500 : NTLS initialization failed : RC_SOCKET_ERROR',
        'critical : 0xc0000102 : Failed to initialize application. Terminating.',
      ]);
      expect(log(h)).not.toContain('info : 0 : NTLS is online and operational.');
      expect(log(h)).not.toContain('error : 0xc0000002 : Accept failed. Reason: RC_GENERAL_ERROR');
    } finally {
      blocker.close();
    }
  });

  it('metrics port in use: a failed start naming the port and the setting, never "online"', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as { port: number }).port;
    try {
      const h = home({ server: { bind: '127.0.0.1', port: 0 }, metrics: { enabled: true, bind: '127.0.0.1', port } });
      const result = await startFails(h);
      expect(result.status).toBe(1);
      expect(result.stderr).toContain(`cannot serve metrics on 127.0.0.1:${port}: the port is in use by another program`);
      // The setting in this home, whatever $NTLS_HOME names.
      expect(result.stderr).toContain(`ntls config set metrics.port N --home ${h}`);
      expect(log(h).at(-1)).toBe('critical : 0xc0000102 : Failed to initialize application. Terminating.');
      expect(log(h)).not.toContain('info : 0 : NTLS is online and operational.');
    } finally {
      blocker.close();
    }
  });

  it('an address not on this host: bind lines and exit status 1', async () => {
    const h = home({ server: { bind: '192.0.2.123', port: 0 } });
    const result = await startFails(h);
    expect(result.stderr).toContain('not one of this host');
    expect(log(h)).toContain('critical : 0xc0000500 : NTLS listening port could not Bind : RC_SOCKET_ERROR');
    expect(log(h)).not.toContain('error : 0xc0000002 : Accept failed. Reason: RC_GENERAL_ERROR');
  });

  it('a bind address that does not resolve: the guide\'s "Fail to retrieve host IP Address", not the bind line', async () => {
    const h = home({ server: { bind: '127.0.0.1', port: 0 } });
    const result = await startFails(h, ['--bind', 'no-such-host.invalid']);
    expect(result.stderr).toContain('does not resolve');
    expect(result.stderr.trimEnd()).toMatch(/\[RC_SOCKET_ADDRESS_INVALID\]$/);
    expect(log(h)).toContain('critical : 0xc0000406 : Fail to retrieve host IP Address : RC_SOCKET_ADDRESS_INVALID');
    expect(log(h)).not.toContain('critical : 0xc0000500 : NTLS listening port could not Bind : RC_SOCKET_ERROR');
  });

  it('a server certificate file that is not a certificate', async () => {
    const h = home();
    const good = await createSelfSignedCertificate({ commonName: 's', keyType: 'ecdsa-p256', usage: 'server' });
    await withServerFiles(h, { cert: 'not a certificate\n', key: good.keyPem });
    await startFails(h);
    expect(log(h)).toContain(`critical : 0xc0000704 : Chrystoki using server certificate failed: ${join(h, 'server', 'server.pem')}, RC_SSL_LOAD_SERVER_CERT_ERROR`);
    expect(log(h).at(-1)).toBe('critical : 0xc0000102 : Failed to create server. Terminating.');
  });

  it('a missing server key beside an existing certificate', async () => {
    const h = home();
    const good = await createSelfSignedCertificate({ commonName: 's', keyType: 'ecdsa-p256', usage: 'server' });
    await withServerFiles(h, { cert: good.certificatePem });
    await startFails(h);
    expect(log(h)).toContain('critical : 0xc0000402 : Chrystoki configuration server private key filename invalid: RC_FILE_NAME_INVALID');
  });

  it('an unreadable server key', async () => {
    const h = home();
    const good = await createSelfSignedCertificate({ commonName: 's', keyType: 'ecdsa-p256', usage: 'server' });
    await withServerFiles(h, { cert: good.certificatePem, key: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' });
    await startFails(h);
    expect(log(h)).toContain('critical : 0xc0000705 : Error loading the server private key: RC_SSL_LOAD_SERVER_PRIVATE_KEY_ERROR');
  });

  it('a key that does not match the certificate', async () => {
    const h = home();
    const one = await createSelfSignedCertificate({ commonName: 's', keyType: 'ecdsa-p256', usage: 'server' });
    const other = await createSelfSignedCertificate({ commonName: 's', keyType: 'ecdsa-p256', usage: 'server' });
    await withServerFiles(h, { cert: one.certificatePem, key: other.keyPem });
    await startFails(h);
    expect(log(h)).toContain('critical : 0xc0000706 : Error checking the server private key: RC_SSL_VALIDATE_SERVER_PRIVATE_KEY_ERROR');
  });

  it('a bad cipher list', async () => {
    const h = home({ server: { bind: '127.0.0.1', port: 0, cipherList: 'NO-SUCH-CIPHER' } });
    const result = await startFails(h);
    expect(result.stderr).toContain('Correct server.cipherList, server.tls13CipherSuites or server.minTlsVersion in');
    expect(result.stderr).not.toContain('server files');
    expect(log(h)).toContain('critical : 0xc0000702 : SSL error setting cipher list: RC_SSL_CIPHER_LIST_ERROR');
  });

  it('a verify location that is a file, not a folder', async () => {
    const h = home({ clients: { verifyLocation: 'clients.txt' } });
    writeFileSync(join(h, 'clients.txt'), 'not a folder');
    const result = await startFails(h);
    expect(log(h)).toContain('critical : 0xc0000402 : Chrystoki configuration client certificate path invalid: RC_FILE_NAME_INVALID');
    expect(result.stderr).toContain(`the verify location ${join(h, 'clients.txt')} (clients.verifyLocation) is not a folder`);
  });

  it('a bad file in the verify location (client CA)', async () => {
    const h = home();
    mkdirSync(join(h, 'clients'), { recursive: true });
    writeFileSync(join(h, 'clients', 'broken.pem'), 'garbage');
    await startFails(h);
    expect(log(h)).toContain(`critical : 0xc0000703 : Load verify locations failed for single client: ${join(h, 'clients', 'broken.pem')}, RC_SSL_CERT_VERIFICATION_LOCATION_ERROR`);
  });

  it('a broken client registration (NAME.json) is named, not its good certificate; the guide\'s registration-database line', async () => {
    const h = home();
    mkdirSync(join(h, 'clients'), { recursive: true });
    const good = await createSelfSignedCertificate({ commonName: 'app1', keyType: 'ecdsa-p256', usage: 'client' });
    writeFileSync(join(h, 'clients', 'app1.pem'), good.certificatePem);
    writeFileSync(join(h, 'clients', 'app1.json'), '["x"');
    const result = await startFails(h);
    expect(result.stderr).toContain(`${join(h, 'clients', 'app1.json')} in the verify location is not a client's registration`);
    expect(result.stderr).not.toContain('remove or replace');
    expect(log(h)).toContain('error : 0xc0000002 Fail to populate client registration database : RC_GENERAL_ERROR');
    expect(log(h).some((l) => l.includes('Load verify locations failed'))).toBe(false);
  });

  it('a configuration with an unknown key names the key, exit status 2', async () => {
    const h = home({ datapath: { receiveTimout: 5 } });
    const result = await startFails(h);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('"datapath.receiveTimout"');
  });

  it('a configuration value of the wrong type or out of range names the key', async () => {
    const h = home({ server: { bind: '127.0.0.1', port: 70000 } });
    const result = await startFails(h);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('"server.port"');
    const h2 = home({ tcpKeepalive: { idle: 'ten' } });
    const result2 = await startFails(h2);
    expect(result2.stderr).toContain('"tcpKeepalive.idle"');
  });

  it('a --port out of range is refused by the command line', async () => {
    const h = home();
    const result = await runNtls(['start', '--home', h, '--port', '70000']);
    expect(result.status).not.toBe(0);
    expect(result.stderr).toContain('a port is an integer from 0 to 65535');
  });

  it('a command processor module that does not exist', async () => {
    const h = home({ processor: { module: '/nonexistent/processor.js' } });
    await startFails(h);
    const lines = log(h);
    expect(lines).toContain('info : 0 : Missing command processor library for NTLS.');
    expect(lines).toContain('critical : 0xc0000102 : Command processor module not found : "/nonexistent/processor.js" : RC_GENERAL_ERROR');
  });

  it('a command processor module lacking an entry point', async () => {
    const h = home();
    const file = join(h, 'partial-processor.mjs');
    writeFileSync(file, 'export function cp_get_supported_versions() { return ["1.0"]; }\n');
    writeFileSync(join(h, 'ntls.json'), JSON.stringify({ server: { bind: '127.0.0.1', port: 0 }, processor: { module: file } }));
    await startFails(h);
    expect(log(h)).toContain(`critical : 0xc0000105 : cp_initialize_p function not found in command processor "${file}" : RC_FUNCTION_NOT_SUPPORTED`);
  });

  /** A home whose processor.module is `file`: every entry point, some given (or, null, left out). */
  function processorHome(file: string, entries: Record<string, string | null>): string {
    const h = home();
    const all: Record<string, string | null> = {
      cp_get_supported_versions: '() => ["1.0"]', cp_initialize_p: 'async () => {}', cp_get_processor_name_p: '() => ({ name: "P", version: "1.0" })',
      cp_shutdown: 'async () => {}', cp_client_registration_observer: '() => {}', cp_configure: '() => ({ workers: 1 })',
      cp_server_connected: '() => { throw new Error("unused"); }', ...entries,
    };
    const path = join(h, file);
    writeFileSync(path, Object.entries(all).filter(([, body]) => body !== null).map(([name, body]) => `export const ${name} = ${body};`).join('\n'));
    writeFileSync(join(h, 'ntls.json'), JSON.stringify({ server: { bind: '127.0.0.1', port: 0 }, processor: { module: path } }));
    return h;
  }

  it('a command processor supporting no common contract version', async () => {
    const h = processorHome('old-processor.mjs', { cp_get_supported_versions: '() => ["0.9"]', cp_get_processor_name_p: '() => ({ name: "Old Processor", version: "0.9" })' });
    await startFails(h);
    expect(log(h)).toContain('error : 0xc0000105 : "Old Processor" module version 0.9 is incompatable with data path : RC_FUNCTION_NOT_SUPPORTED');
  });

  it('a command processor with the guide\'s six entry points but not cp_server_connected: it fails to initialise, in the guide\'s words', async () => {
    const h = processorHome('six-processor.mjs', { cp_get_processor_name_p: '() => ({ name: "Six", version: "2.1" })', cp_server_connected: null });
    await startFails(h);
    expect(log(h)).toContain('error : 0xc0000002 : Failed to initialize "Six"  module version 2.1 : RC_GENERAL_ERROR');
    expect(log(h)).not.toContain('cp_server_connected function not found');
  });

  it('a command processor whose name is a bare string and versions no array: its name, never "undefined"', async () => {
    const h = processorHome('odd-processor.mjs', { cp_get_supported_versions: '() => 99', cp_get_processor_name_p: '() => "Odd"' });
    await startFails(h);
    expect(log(h)).toContain('error : 0xc0000105 : "Odd" module version unknown is incompatable with data path : RC_FUNCTION_NOT_SUPPORTED');
    expect(log(h)).not.toContain('undefined');
  });

  it('a second command processor written to the contract is loaded and serves', async () => {
    const h = home();
    const file = join(h, 'upper-processor.mjs');
    writeFileSync(file, [
      'let workers = 3;',
      'export const cp_get_supported_versions = () => ["1.0"];',
      'export const cp_initialize_p = async (ctx) => { workers = 3; };',
      'export const cp_get_processor_name_p = () => ({ name: "Test Echo Processor", version: "2.1" });',
      'export const cp_shutdown = async () => {};',
      'export const cp_client_registration_observer = () => {};',
      'export const cp_configure = () => ({ workers });',
      'export const cp_server_connected = () => ({',
      '  negotiateVersion: (v) => v,',
      '  process: async (frame) => ({ callCode: frame.callCode, options: Buffer.alloc(0), body: Buffer.from(frame.body.toString("latin1").toUpperCase(), "latin1") }),',
      '  close() {},',
      '});',
    ].join('\n'));
    writeFileSync(join(h, 'ntls.json'), JSON.stringify({ server: { bind: '127.0.0.1', port: 0 }, processor: { module: file } }));
    const daemon = await startDaemon(h);
    try {
      const lines = daemon.bodies();
      expect(lines).toContain('info : 0 : "Test Echo Processor" module version 2.1 loaded');
      expect(lines).toContain('info : 0 : SA command processor configured with 3 worker threads');
      expect(lines).not.toContain('info : 0 : Data path is not configured with a command processor module.  Use default command processor setting');
      const client = await makeClient('echoer');
      registerClient(h, client);
      const l = await linkWhenRegistered(daemon, client);
      expect(l.protocolVersion).toBe(0);
      const answer = await l.request(Buffer.from('hello'));
      expect(answer.body.toString()).toBe('HELLO');
      await l.close();
    } finally {
      await daemon.stop();
    }
  });

  it('a processor whose cp_shutdown throws: no "shut downed", the shutdown goes on to "NTLS terminated", exit status 1, one stderr line', async () => {
    // It ended with "NTLS CRASH AND BURN!" and status 70, without the shutdown's last lines.
    const h = home();
    const file = join(h, 'failing-shutdown.mjs');
    writeFileSync(file, [
      'export const cp_get_supported_versions = () => ["1.0"];',
      'export const cp_initialize_p = async () => {};',
      'export const cp_get_processor_name_p = () => ({ name: "Stubborn", version: "1.0" });',
      'export const cp_shutdown = async () => { throw new Error("device busy"); };',
      'export const cp_client_registration_observer = () => {};',
      'export const cp_configure = () => ({ workers: 1 });',
      'export const cp_server_connected = () => ({ negotiateVersion: (v) => v, process: async (frame) => frame, close() {} });',
    ].join('\n'));
    writeFileSync(join(h, 'ntls.json'), JSON.stringify({ server: { bind: '127.0.0.1', port: 0 }, processor: { module: file } }));
    const daemon = await startDaemon(h);
    const result = await daemon.stop();
    expect(result).toEqual({ status: 1, signal: null });
    const lines = daemon.bodies();
    expect(lines).not.toContain('info : 0 : "Stubborn" shut downed');
    expect(lines.some((b) => b.includes('CRASH AND BURN'))).toBe(false);
    expect(lines.at(-1)).toBe('info : 0 : NTLS terminated');
    expect(daemon.stderr).toContain('ntls: the command processor "Stubborn" failed to shut down: device busy [NTLS_ERR_PROCESSOR_SHUTDOWN]');
  });
});
