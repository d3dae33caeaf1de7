// The stdin/stdout relay: p11-kit starts `ntls-client p11-relay ...` itself (exec transport) and
// speaks the RPC protocol over its stdin/stdout.
//
// 1. p11-kit-client.so with P11_KIT_SERVER_ADDRESS="|node ntls-client.js p11-relay ...".
// 2. p11-kit-proxy.so with a user module config `~/.config/pkcs11/modules/ntls.module` holding
//    `remote: |node ntls-client.js p11-relay ...` (HOME and XDG_CONFIG_HOME point to a temporary
//    folder). p11-kit ignores user configuration in a program running as root ("skipping user
//    config in program running as root", P11_KIT_DEBUG=conf), so when these tests run as root
//    the tools run as the unprivileged user nobody (65534), owning a copy of the files they need.
import { chmodSync, chownSync, copyFileSync, cpSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, removeHome, repoRoot } from '../support/daemon.js';
import {
  P11KIT_PROXY, createClientCert, createPartition, explain, ntlsClientBin, openssl, pkcs11Tool, registerClient,
  relayCommand, removeDir, run, startE2eDaemon, tempDir, type ClientFiles, type RunOptions, type ToolResult,
} from '../support/e2e.js';

let daemon: Daemon;
let work: string;
let client: ClientFiles;
let serial = '';

const TOKEN = 'exec-token';
const PIN = '2468';
const ok = (r: ToolResult) => {
  expect(r.status, explain(r)).toBe(0);
  return r;
};

beforeAll(async () => {
  work = tempDir('ntls-e2e-exec-');
  daemon = await startE2eDaemon();
  serial = (await createPartition(daemon, 'exec-part')).serial;
  client = await createClientCert('xavier', work);
  await registerClient(daemon, client, 'exec-part');
});

afterAll(async () => {
  await daemon?.stop();
  if (daemon) removeHome(daemon.home);
  if (work) removeDir(work);
});

describe('p11-kit-client.so with P11_KIT_SERVER_ADDRESS="|ntls-client p11-relay ..."', () => {
  const viaExec = (args: string[], input?: string) => pkcs11Tool(relayCommand(daemon, client), args, { cwd: work, input });

  it('-L lists the ntls slot; the daemon sees a TLS client', async () => {
    const from = daemon.log().length;
    const r = ok(await viaExec(['-L']));
    expect(r.stdout).toMatch(new RegExp(`^Slot 0 \\(0x0\\): NTLS partition ${serial}$`, 'm'));
    expect(r.stdout.match(/^Slot /gm)).toHaveLength(1);
    await daemon.waitForLog('NTLS Client "xavier" connected and authenticated', 10_000, from);
  });

  it('initialises the token, generates a key and signs; openssl verifies', async () => {
    ok(await viaExec(['--init-token', '--slot', '0', '--label', TOKEN, '--so-pin', '12345678']));
    ok(await viaExec(['--init-pin', '--slot', '0', '--login', '--login-type', 'so', '--so-pin', '12345678', '--pin', PIN]));
    ok(await viaExec(['--slot', '0', '--login', '--pin', PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', 'exec-ec', '--id', '21']));
    ok(await viaExec(['--slot', '0', '--read-object', '--type', 'pubkey', '--id', '21', '-o', join(work, 'exec-ec.der')]));
    ok(await openssl(['pkey', '-pubin', '-inform', 'DER', '-in', join(work, 'exec-ec.der'), '-out', join(work, 'exec-ec.pem')]));
    writeFileSync(join(work, 'm.txt'), 'through the exec transport');
    const digest = ok(await openssl(['dgst', '-sha256', '-binary', '-out', join(work, 'm.sha256'), join(work, 'm.txt')]));
    expect(digest.status).toBe(0);
    ok(await viaExec(['--slot', '0', '--login', '--pin', PIN, '--sign', '-m', 'ECDSA', '--id', '21', '--signature-format', 'openssl',
      '-i', join(work, 'm.sha256'), '-o', join(work, 'm.sig')]));
    const v = ok(await openssl(['dgst', '-sha256', '-verify', join(work, 'exec-ec.pem'), '-signature', join(work, 'm.sig'), join(work, 'm.txt')]));
    expect(v.stdout).toContain('Verified OK');
  });

  it('the relay process ends with the tool: no ntls-client left behind', async () => {
    ok(await viaExec(['-L']));
    const leftOver = processesMatching(`${ntlsClientBin} p11-relay --server 127.0.0.1:${daemon.port}`);
    expect(leftOver, 'left-over relays').toEqual([]);
  });
});

describe('what the exec relay says when it cannot link (its stderr reaches the tool\'s stderr)', () => {
  const failing = async (command: string) => {
    const r = await pkcs11Tool(command, ['-L'], { cwd: work });
    expect(r.status, explain(r)).not.toBe(0);
    expect(r.stdout).not.toMatch(/NTLS partition/);
    expect(r.stderr).toMatch(/CKR_DEVICE_ERROR/);
    return r;
  };

  it('server down: one line naming the cause', async () => {
    const r = await failing(relayCommand(daemon, client).replace(`127.0.0.1:${daemon.port}`, '127.0.0.1:1'));
    expect(r.stderr).toMatch(/^ntls-client: .*cannot be reached.*\[NTLS_ERR_SERVER_DOWN\]$/m);
  });

  it('unregistered client: refused, and the daemon logs the reference line', async () => {
    const from = daemon.log().length;
    const stranger = await createClientCert('stranger', work);
    const r = await failing(relayCommand(daemon, stranger));
    expect(r.stderr).toMatch(/^ntls-client: .*(refused this client's certificate|is this client registered).*$/m);
    await daemon.waitForLog('Client credentials cannot be verified. Connection terminated', 10_000, from);
  });

  it('a server certificate other than the pinned one: refused before any PKCS#11 byte is sent', async () => {
    const r = await failing(relayCommand(daemon, client).replace(join(daemon.home, 'server', 'server.pem'), client.cert));
    expect(r.stderr).toMatch(/^ntls-client: .*NTLS_ERR_SERVER_CERT_MISMATCH.*$/m);
  });
});

describe('p11-kit-proxy.so with a user module config `remote: |ntls-client p11-relay ...`', () => {
  let userHome = '';
  let as: RunOptions = {};

  beforeAll(() => {
    const root = process.getuid?.() === 0;
    userHome = join(work, 'user-home');
    const modules = join(userHome, '.config', 'pkcs11', 'modules');
    mkdirSync(modules, { recursive: true });
    // The user's own copies of the client credentials and the server certificate.
    const cert = join(userHome, 'client.pem');
    const key = join(userHome, 'clientKey.pem');
    const serverCert = join(userHome, 'server.pem');
    copyFileSync(client.cert, cert);
    copyFileSync(client.key, key);
    copyFileSync(join(daemon.home, 'server', 'server.pem'), serverCert);
    chmodSync(key, 0o600);
    const relay = relayCommand(daemon, { ...client, cert, key }).replace(join(daemon.home, 'server', 'server.pem'), serverCert);
    writeFileSync(join(modules, 'ntls.module'), `# ntls through the relay\nremote: ${relay}\n`);
    if (root) {
      const nobody = 65534;
      chmodSync(work, 0o755);
      // nobody must be able to run node and read the built relay; if the clone (or node) lives
      // where others cannot reach (say under /root), the relay runs from a copy in the temp folder.
      const copyRoot = join(work, 'ntls-copy');
      let bin = ntlsClientBin;
      let node = process.execPath;
      if (!readableByOthers(repoRoot)) {
        mkdirSync(copyRoot, { recursive: true });
        for (const part of ['package.json', 'dist', 'node_modules']) cpSync(join(repoRoot, part), join(copyRoot, part), { recursive: true });
        bin = join(copyRoot, 'dist/src/cli/ntls-client.js');
      }
      if (!readableByOthers(process.execPath)) {
        mkdirSync(copyRoot, { recursive: true });
        node = join(copyRoot, 'node');
        copyFileSync(process.execPath, node);
        chmodSync(node, 0o755);
      }
      if (bin !== ntlsClientBin || node !== process.execPath) {
        writeFileSync(join(modules, 'ntls.module'), `# ntls through the relay\nremote: ${relay.replace(process.execPath, node).replace(ntlsClientBin, bin)}\n`);
      }
      const chownTree = (p: string) => {
        chownSync(p, nobody, nobody);
        if (statSync(p).isDirectory()) for (const e of readdirSync(p)) chownTree(join(p, e));
      };
      chownTree(userHome);
      as = { uid: nobody, gid: nobody };
    }
    as = { ...as, cwd: userHome, env: { HOME: userHome, XDG_CONFIG_HOME: join(userHome, '.config') } };
  });

  const viaProxy = (args: string[]) => run('pkcs11-tool', ['--module', P11KIT_PROXY, ...args], as);

  it('pkcs11-tool -L lists the ntls slot with its token', async () => {
    const r = ok(await viaProxy(['-L']));
    expect(r.stdout).toMatch(new RegExp(`: NTLS partition ${serial}\\n\\s+token label\\s+: ${TOKEN}`));
    expect(r.stdout).toContain(`serial num         : ${serial}`);
  });

  it('logs in by token label and signs through the proxy', async () => {
    const r = ok(await viaProxy(['--token-label', TOKEN, '--login', '--pin', PIN, '--list-objects', '--type', 'privkey']));
    expect(r.stdout).toContain('label:      exec-ec');
    const s = ok(await run('pkcs11-tool', ['--module', P11KIT_PROXY, '--token-label', TOKEN, '--login', '--pin', PIN,
      '--sign', '-m', 'ECDSA', '--id', '21', '--signature-format', 'openssl', '-i', join(work, 'm.sha256'), '-o', join(userHome, 'proxy.sig')], as));
    expect(s.status).toBe(0);
    const v = ok(await openssl(['dgst', '-sha256', '-verify', join(work, 'exec-ec.pem'), '-signature', join(userHome, 'proxy.sig'), join(work, 'm.txt')]));
    expect(v.stdout).toContain('Verified OK');
  });

  it('p11-kit list-modules sees the ntls module from the same user config', async () => {
    const r = ok(await run('p11-kit', ['list-modules'], as));
    expect(r.stdout).toMatch(/^ntls: /m);
    expect(r.stdout).toMatch(new RegExp(`token: ${TOKEN}\\n(\\s+.*\\n)*?\\s+serial-number: ${serial}`));
  });
});

/** Pids whose command line contains `needle` (from /proc; no procps needed). */
function processesMatching(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ');
      if (cmdline.includes(needle)) found.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return found;
}

/** Whether a user other than the owner can reach `path` (every ancestor searchable, the file readable). */
function readableByOthers(path: string): boolean {
  try {
    if ((statSync(path).mode & 0o004) === 0) return false;
    for (let dir = dirname(path); ; dir = dirname(dir)) {
      if ((statSync(dir).mode & 0o001) === 0) return false;
      if (dir === dirname(dir)) return true;
    }
  } catch {
    return false;
  }
}
