// When the relay or the server cannot be used, an application of libntls-pkcs11.so gets
// CKR_DEVICE_ERROR, one line on stderr naming the cause and the fix, and the guide's line in the
// client log (<config folder>/logs/ntls-client.log); never a crash, never a hang (the receive
// timeout bounds every wait). Covered: the settings that pick the relay and server, relay down,
// a relay that does not answer or answers half a frame, server down, wrong configuration, and
// calls interrupted mid-way (the relay killed, its socket gone, the answer cut short or stalled
// half-way, the server paused, the server stopped).
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalogue } from '../../src/log/catalogue.js';
import { renderBody, type Message } from '../../src/log/message.js';
import { explain, ntlsClientBin, startRelay, waitFor, type Relay, type ToolResult } from '../support/e2e.js';
import { buildModuleCheck, moduleCheck, moduleTool, moduleWorld, ntlsClient, PIN, writeModuleConfig, type ModuleWorld } from './support.js';

let world: ModuleWorld;
let check: string;

const clientLog = (folder: string) => {
  const file = join(folder, 'logs', 'ntls-client.log');
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
};
/** The guide's line (from the catalogue, not retyped), in the syslog shape of the daemon's lunalogs. */
const guideLine = (message: Message) => {
  const body = renderBody(message, {}).replace(/[.[\]]/g, '\\$&');
  return new RegExp(`^\\d{4} \\w{3} \\d{2} \\d{2}:\\d{2}:\\d{2} \\S+  local5 ${message.severity}  NTLS \\[\\d+\\]: ${body}$`);
};

/** A config folder like the world's, changed by `edit`. */
async function folderCopy(name: string, edit: (folder: string) => void | Promise<unknown>): Promise<string> {
  const folder = join(world.work, name);
  rmSync(folder, { recursive: true, force: true });
  cpSync(world.folder, folder, { recursive: true });
  rmSync(join(folder, 'logs'), { recursive: true, force: true });
  await edit(folder);
  return folder;
}

function initWith(env: NodeJS.ProcessEnv): Promise<{ result: ToolResult; values: Map<string, string> }> {
  return moduleCheck(check, world.module, ['init'], { env, timeoutMs: 60_000 });
}

function expectRefused(r: { result: ToolResult; values: Map<string, string> }): void {
  expect(r.result.status, explain(r.result)).toBe(0); // module-check ran to its end: no crash
  expect(r.result.signal).toBe(null);
  expect(r.values.get('initialize'), explain(r.result)).toBe('CKR_DEVICE_ERROR');
}

beforeAll(async () => {
  world = await moduleWorld('fred', { initialize: true });
  check = await buildModuleCheck(join(world.work, 'bin'));
});

afterAll(async () => {
  await world?.close();
});

describe('the relay or the server cannot be reached', () => {
  it('relay down: a socket nobody listens on', async () => {
    const socket = join(world.work, 'nobody.sock');
    const r = await initWith({ ...world.env, NTLS_PKCS11_RELAY: `unix:path=${socket}` });
    expectRefused(r);
    expect(r.result.stderr).toContain(`ntls-pkcs11: cannot reach the relay socket ${socket} (NTLS_PKCS11_RELAY): No such file or directory`);
    expect(r.result.stderr).toContain(`ntls-client p11-relay --listen ${socket}`);
    expect(clientLog(world.folder).at(-1)).toMatch(guideLine(Catalogue.connectFailed));
  });

  it('relay down: pkcs11-tool says CKR_DEVICE_ERROR and exits', async () => {
    const r = await moduleTool(world, ['-L'], { env: { NTLS_PKCS11_RELAY: `unix:path=${join(world.work, 'nobody.sock')}` } });
    expect(r.status).not.toBe(0);
    expect(r.signal).toBe(null);
    expect(r.stderr).toMatch(/C_Initialize failed: rv = CKR_DEVICE_ERROR|CKR_DEVICE_ERROR/);
  });

  it('server down: the relay the module starts cannot link; its own line tells why', async () => {
    const folder = await folderCopy('server-down', (f) => {
      const file = join(f, 'client.json');
      const config = JSON.parse(readFileSync(file, 'utf8')) as { servers: Array<{ port: number }> };
      config.servers[0]!.port = 1; // nothing listens there
      writeFileSync(file, JSON.stringify(config));
    });
    const r = await initWith({ NTLS_CLIENT_HOME: folder });
    expectRefused(r);
    expect(r.result.stderr).toContain('[NTLS_ERR_SERVER_DOWN]');
    expect(r.result.stderr).toContain('ntls-pkcs11: the link through ntls-client p11-relay');
    expect(clientLog(folder).at(-1)).toMatch(guideLine(Catalogue.connectFailed));
  });

  it('a client the server does not know: refused by the server, CKR_DEVICE_ERROR here', async () => {
    const folder = await folderCopy('stranger', (f) => ntlsClient(['create-cert', '--cn', 'stranger', '--config-dir', f, '--force']));
    const r = await initWith({ NTLS_CLIENT_HOME: folder });
    expectRefused(r);
    expect(r.result.stderr).toContain('[NTLS_ERR_CLIENT_REFUSED]');
  });
});

/** A unix socket in the relay's place, each connection handled by `onConnection`; closed by the caller. */
function fakeRelay(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer(onConnection);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve(server));
  });
}

const closeServer = (server: Server) => new Promise<void>((r) => server.close(() => r()));

describe('a relay that does not behave (bounded by the timeout, 2 s here)', () => {
  const withTimeout = (name: string) => folderCopy(name, (f) => writeFileSync(join(f, 'pkcs11-module.conf'), 'timeout: 2\n'));

  it('a relay socket that takes the connection and never answers: CKR_DEVICE_ERROR once the timeout runs out', async () => {
    const folder = await withTimeout('silent-relay');
    const socket = join(world.work, 'silent.sock');
    const held: Socket[] = [];
    const server = await fakeRelay(socket, (c) => held.push(c.on('error', () => undefined)));
    try {
      const r = await initWith({ NTLS_CLIENT_HOME: folder, NTLS_PKCS11_RELAY: `unix:path=${socket}` });
      expectRefused(r);
      expect(r.result.stderr).toContain(`no answer from the server through the relay socket ${socket} (NTLS_PKCS11_RELAY) within 2 s`);
      expect(clientLog(folder).at(-1)).toMatch(guideLine(Catalogue.connectFailed));
    } finally {
      for (const c of held) c.destroy();
      await closeServer(server);
    }
  });

  /**
   * C_Initialize through a fake relay that echoes the version byte and, once the request's header
   * has come, gives `answer` the connection; the module's stderr.
   */
  async function answeredBy(name: string, answer: (c: Socket) => void): Promise<string> {
    const folder = await withTimeout(name);
    const socket = join(world.work, `${name}.sock`);
    const server = await fakeRelay(socket, (c) => {
      c.on('error', () => undefined);
      let seen = 0;
      c.on('data', (d: Buffer) => {
        if (seen === 0) c.write(d.subarray(0, 1));
        const before = seen;
        seen += d.length;
        if (before <= 12 && seen > 12) answer(c);
      });
    });
    try {
      const r = await initWith({ NTLS_CLIENT_HOME: folder, NTLS_PKCS11_RELAY: `unix:path=${socket}` });
      expectRefused(r);
      return r.result.stderr;
    } finally {
      await closeServer(server);
    }
  }

  it('a relay that answers the version, then half a frame header and closes: CKR_DEVICE_ERROR', async () => {
    const stderr = await answeredBy('half-frame', (c) => c.end(Buffer.from([0, 0, 0, 1, 0, 0]))); // 6 of the 12 header bytes
    expect(stderr).toContain('C_Initialize: the link closed');
  });

  it('a relay that answers with a frame of another call: CKR_DEVICE_ERROR, not misread', async () => {
    const stderr = await answeredBy('wrong-frame', (c) => c.write(Buffer.from([0, 0, 0, 0x63, 0, 0, 0, 0, 0, 0, 0, 0]))); // call code 99, empty
    expect(stderr).toContain('the answer was not a p11-kit frame for this call');
  });

  it('a relay that announces an answer over 64 MiB: refused at its header, nothing waited for', async () => {
    const stderr = await answeredBy('huge-frame', (c) => {
      const header = Buffer.alloc(12);
      header.writeUInt32BE(1, 0); // C_Initialize's call code
      header.writeUInt32BE(64 * 1024 * 1024 + 1, 8);
      c.write(header); // and no body: the module must not wait for one
    });
    expect(stderr).toContain('the answer was not a p11-kit frame for this call');
  });
});

describe('configuration', () => {
  /** The world's folder with a dead server "first" ahead of the real one, renamed "real". */
  const twoServers = (name: string, moduleConfig: (folder: string) => string) => folderCopy(name, (f) => {
    const file = join(f, 'client.json');
    const config = JSON.parse(readFileSync(file, 'utf8')) as { servers: Array<Record<string, unknown>> };
    const real = { ...config.servers[0]!, name: 'real' };
    config.servers = [{ ...real, name: 'first', port: 1 }, real];
    writeFileSync(file, JSON.stringify(config));
    writeFileSync(join(f, 'pkcs11-module.conf'), moduleConfig(f));
  });

  it('server: picks the client.json server the module\'s own relay links to', async () => {
    const folder = await twoServers('server-setting', () => '# the second server of client.json\nserver: real\n');
    const r = await initWith({ NTLS_CLIENT_HOME: folder });
    expect(r.values.get('initialize'), explain(r.result)).toBe('CKR_OK');
    expect(r.values.get('slots')).toBe('CKR_OK');
  });

  it('relay: |command runs that relay', async () => {
    const folder = await twoServers('relay-command', (f) =>
      `relay: | ${process.execPath} ${ntlsClientBin} p11-relay --config-dir ${f} --server real\n`);
    const r = await initWith({ NTLS_CLIENT_HOME: folder });
    expect(r.values.get('initialize'), explain(r.result)).toBe('CKR_OK');
  });
});

describe('wrong configuration', () => {
  it('an unknown setting in pkcs11-module.conf: its line is named', async () => {
    const folder = await folderCopy('bad-setting', (f) => writeFileSync(join(f, 'pkcs11-module.conf'), '# the relay\nrelya: |ntls-client p11-relay\n'));
    const r = await initWith({ NTLS_CLIENT_HOME: folder });
    expectRefused(r);
    expect(r.result.stderr).toContain(`ntls-pkcs11: ${join(folder, 'pkcs11-module.conf')} line 2: unknown setting "relya" (known: relay, server, timeout)`);
    expect(clientLog(folder).at(-1)).toMatch(guideLine(Catalogue.connectFailed));
  });

  it('a relay that is neither |command nor unix:path=', async () => {
    const r = await initWith({ ...world.env, NTLS_PKCS11_RELAY: 'tcp:127.0.0.1:1792' });
    expectRefused(r);
    expect(r.result.stderr).toContain('NTLS_PKCS11_RELAY: relay "tcp:127.0.0.1:1792" is neither |command nor unix:path=SOCKET');
  });

  it('a timeout that is not a number of seconds', async () => {
    const folder = await folderCopy('bad-timeout', (f) => writeFileSync(join(f, 'pkcs11-module.conf'), 'timeout: soon\n'));
    const r = await initWith({ NTLS_CLIENT_HOME: folder });
    expectRefused(r);
    expect(r.result.stderr).toContain('timeout "soon" is not a number of seconds 0-3600');
  });

  it('a config folder without a server: the relay says to add one', async () => {
    const folder = await folderCopy('no-server', (f) => {
      const file = join(f, 'client.json');
      const config = JSON.parse(readFileSync(file, 'utf8')) as { servers: unknown[] };
      config.servers = [];
      writeFileSync(file, JSON.stringify(config));
    });
    const r = await initWith({ NTLS_CLIENT_HOME: folder });
    expectRefused(r);
    expect(r.result.stderr).toContain('[NTLS_ERR_UNKNOWN_SERVER]');
  });

  it('a relay command that does not exist', async () => {
    const r = await initWith({ ...world.env, NTLS_PKCS11_RELAY: '|/nonexistent/ntls-client p11-relay' });
    expectRefused(r);
  });
});

/**
 * module-check until-error: signs until a call fails, then prints that call's rv, the next
 * call's, and C_Finalize's. `interrupt` runs once the first signature is made.
 */
async function interrupted(env: NodeJS.ProcessEnv, interrupt: (pid: number, output: (text: string) => Promise<void>) => Promise<void> | void): Promise<{ out: string; status: number | null; signal: string | null }> {
  const child = spawn(check, [world.module, 'until-error', '0', PIN, '90'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const closed = new Promise<{ status: number | null; signal: string | null }>((r) => child.once('close', (status, signal) => r({ status, signal })));
  const guard = setTimeout(() => child.kill('SIGKILL'), 120_000);
  try {
    await waitFor(`the first signature (output: ${out})`, () => out.includes('ready'), 30_000);
    await interrupt(child.pid!, (text) => waitFor(`"${text}" (output: ${out})`, () => out.includes(text), 30_000));
    const end = await closed;
    return { out, ...end };
  } finally {
    clearTimeout(guard);
  }
}

function values(out: string): Map<string, string> {
  return new Map(out.split('\n').filter((l) => /^\w[\w-]*=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

describe('a call interrupted mid-way', () => {
  it('the relay the module started is killed: CKR_DEVICE_ERROR; the next call links anew and old sessions are invalid', async () => {
    const before = clientLog(world.folder).length;
    const r = await interrupted(world.env, (pid) => {
      const relays = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).trim().split(/\s+/).map(Number);
      expect(relays).toHaveLength(1);
      process.kill(relays[0]!, 'SIGKILL');
    });
    expect(r.status, r.out).toBe(0);
    expect(r.signal).toBe(null);
    const v = values(r.out);
    expect(v.get('failed'), r.out).toMatch(/^CKR_DEVICE_ERROR /);
    expect(v.get('next')).toBe('CKR_SESSION_HANDLE_INVALID');
    expect(v.get('finalize')).toBe('CKR_OK');
    expect(r.out).toMatch(/ntls-pkcs11: C_Sign(Init)?: the link closed; the link to the server is gone/);
    expect(clientLog(world.folder).slice(before).some((l) => guideLine(Catalogue.commandBufferReadFailed).test(l))).toBe(true);
  });

  it('a relay socket that goes away: CKR_DEVICE_ERROR, then the next call cannot reach it', async () => {
    const files = { name: 'fred', dir: world.folder, cert: join(world.folder, 'fred.pem'), key: join(world.folder, 'fredKey.pem') };
    let relay: Relay | undefined = await startRelay(world.daemon, files, join(world.work, 'relay.sock'));
    try {
      const r = await interrupted({ ...world.env, NTLS_PKCS11_RELAY: `unix:path=${relay.socketPath}` }, () => {
        relay!.child.kill('SIGKILL');
      });
      await relay.stop();
      relay = undefined;
      expect(r.status, r.out).toBe(0);
      const v = values(r.out);
      expect(v.get('failed'), r.out).toMatch(/^CKR_DEVICE_ERROR /);
      expect(v.get('next')).toBe('CKR_DEVICE_ERROR');
      expect(v.get('finalize')).toBe('CKR_OK');
    } finally {
      await relay?.stop();
    }
  });

  it('the server stops answering: CKR_DEVICE_ERROR when the receive timeout (2 s here) runs out', async () => {
    writeModuleConfig(world, ['timeout: 2']);
    const daemon = world.daemon.child;
    try {
      const r = await interrupted(world.env, async (_pid, output) => {
        daemon.kill('SIGSTOP');
        await output('failed=');
        daemon.kill('SIGCONT');
      });
      expect(r.status, r.out).toBe(0);
      const v = values(r.out);
      expect(v.get('failed'), r.out).toMatch(/^CKR_DEVICE_ERROR /);
      expect(r.out).toMatch(/ntls-pkcs11: C_Sign(Init)?: no answer within 2 s/);
      expect(v.get('finalize')).toBe('CKR_OK');
    } finally {
      daemon.kill('SIGCONT');
      rmSync(join(world.folder, 'pkcs11-module.conf'), { force: true });
    }
  });

  /**
   * A proxy between the module and a real relay: it passes everything until `cut` is set, then
   * passes only the first 5 bytes of the next answer and, for 'close', closes the connection, for
   * 'stall', lets nothing more through. Connections made after that pass everything.
   */
  async function cuttingProxy(path: string, relaySocket: string): Promise<{ cut(how: 'close' | 'stall'): void; close(): Promise<void> }> {
    let pending: 'close' | 'stall' | null = null;
    const sockets: Socket[] = [];
    const server = await fakeRelay(path, (module) => {
      const upstream = createConnection(relaySocket);
      sockets.push(module, upstream);
      module.on('error', () => undefined);
      upstream.on('error', () => undefined);
      module.pipe(upstream);
      let stalled = false;
      upstream.on('data', (d: Buffer) => {
        if (stalled) return;
        if (pending === null) {
          module.write(d);
          return;
        }
        const how = pending;
        pending = null;
        module.write(d.subarray(0, 5));
        if (how === 'close') {
          module.destroy();
          upstream.destroy();
        } else {
          stalled = true;
        }
      });
      module.on('close', () => upstream.destroy());
    });
    return {
      cut(how) { pending = how; },
      async close() {
        for (const s of sockets) s.destroy();
        await closeServer(server);
      },
    };
  }

  for (const how of ['close', 'stall'] as const) {
    it(`an answer cut short half-way (5 bytes, then the relay ${how === 'close' ? 'closes' : 'says nothing more'}): CKR_DEVICE_ERROR; the next call links anew, old sessions invalid`, async () => {
      const files = { name: 'fred', dir: world.folder, cert: join(world.folder, 'fred.pem'), key: join(world.folder, 'fredKey.pem') };
      const relay = await startRelay(world.daemon, files, join(world.work, `cut-${how}-relay.sock`));
      const proxy = await cuttingProxy(join(world.work, `cut-${how}.sock`), relay.socketPath);
      writeModuleConfig(world, ['timeout: 2']);
      try {
        const r = await interrupted({ ...world.env, NTLS_PKCS11_RELAY: `unix:path=${join(world.work, `cut-${how}.sock`)}` }, () => proxy.cut(how));
        expect(r.status, r.out).toBe(0);
        expect(r.signal).toBe(null);
        const v = values(r.out);
        expect(v.get('failed'), r.out).toMatch(/^CKR_DEVICE_ERROR /);
        expect(r.out).toMatch(how === 'close' ? /ntls-pkcs11: C_Sign(Init)?: the link closed/ : /ntls-pkcs11: C_Sign(Init)?: no answer within 2 s/);
        expect(v.get('next')).toBe('CKR_SESSION_HANDLE_INVALID');
        expect(v.get('finalize')).toBe('CKR_OK');
      } finally {
        rmSync(join(world.folder, 'pkcs11-module.conf'), { force: true });
        await proxy.close();
        await relay.stop();
      }
    });
  }

  it('afterwards the module works again on a fresh link', async () => {
    const { result, values: v } = await moduleCheck(check, world.module, ['sign-loop', '0', PIN, '20'], { env: world.env });
    expect(result.status, explain(result)).toBe(0);
    expect(v.get('signatures')).toMatch(/^20 /);
  });
});

// Last: it stops the world's daemon.
describe('the server stops while the application signs', () => {
  it('CKR_DEVICE_ERROR for the call under way as soon as the link closes (not at the 30 s receive timeout); the next call cannot link and says so; C_Finalize ends cleanly', async () => {
    const r = await interrupted(world.env, async () => {
      await world.daemon.stop();
    });
    expect(r.status, r.out).toBe(0);
    expect(r.signal).toBe(null);
    const v = values(r.out);
    expect(v.get('failed'), r.out).toMatch(/^CKR_DEVICE_ERROR /);
    expect(v.get('next'), r.out).toBe('CKR_DEVICE_ERROR');
    expect(v.get('finalize')).toBe('CKR_OK');
    // The module's own relay (stdin/stdout) ends when its link does: the call fails on the link's
    // end, not when the receive timeout (30 s, client.json's default) runs out.
    expect(r.out).toMatch(/ntls-pkcs11: C_Sign(Init)?: the link closed; the link to the server is gone/);
    expect(r.out).not.toMatch(/no answer within/);
    expect(r.out).toMatch(/\[NTLS_ERR_SERVER_DOWN\]/);
  });
});
