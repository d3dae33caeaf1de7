// TLS servers and clients whose private key lives on the token — the most common use of a network
// HSM (docs/client.md, "Configuration lines per application") — with Debian's stock tools, run the
// same way against ntls (through p11-kit-client.so and the TLS relay, and through
// libntls-pkcs11.so) and against p11-kit server + SoftHSM2 (the reference), with the same keys made
// the same way (a P-256 and an RSA-2048 key pair; a self-signed certificate of each made on the
// token by `openssl req -x509`, and written on the token beside its key). ntls must do at least
// what the reference does:
//   - `openssl s_server` (libengine-pkcs11-openssl, key by pkcs11: URI) and `openssl s_client`,
//     TLS 1.2 and 1.3; RSA in TLS 1.2 with PKCS#1 v1.5 (-sigalgs RSA+SHA256) and with RSA-PSS.
//   - `gnutls-cli` authenticating with a token key to `openssl s_server -Verify 1`, the
//     certificate in a file or on the token. (gnutls-serv is left out: it cannot be told to listen
//     on loopback only.)
//   - Load: 200 full handshakes in a row against s_server (none fails, the token's sessions do
//     not grow, no object is left on it; the times are printed, not judged); 40 gnutls-cli
//     processes in a row, each logging in and signing (their sessions end with them); 4 s_server
//     processes on one key handshaking at the same time.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, openssl, partitions, run, waitFor, writeEngineConfig, type ToolResult } from '../support/e2e.js';
import { freePort } from '../support/ports.js';
import { ThreeStacks, type Stack } from '../support/stacks.js';

const SO_PIN = '87654321';
const PIN = '1234';
const TOKEN = 'tls-keys';
const HANDSHAKES = 200;
const CLIENT_RUNS = 40;
const PARALLEL = 4;

const ok = (r: ToolResult): ToolResult => {
  expect(r.status, explain(r)).toBe(0);
  return r;
};

type KeyName = 'ec' | 'rsa';
const LABELS: Record<KeyName, string> = { ec: 'tls-ec', rsa: 'tls-rsa' };

interface Target extends Stack {
  /** OPENSSL_CONF loading the pkcs11 engine on `module`. */
  opensslConf: string;
}

const uri = (t: Target, key: KeyName, pin = true) => `pkcs11:token=${t.token};object=${LABELS[key]};type=private${pin ? `?pin-value=${PIN}` : ''}`;
const certOf = (t: Target, key: KeyName) => join(t.dir, `${key}-cert.pem`);
/** The same certificate, written on the token beside its key (same label and id). */
const certUri = (t: Target, key: KeyName) => `pkcs11:token=${t.token};object=${LABELS[key]};type=cert`;
const engineEnv = (t: Target): NodeJS.ProcessEnv => ({ ...t.env, OPENSSL_CONF: t.opensslConf });

/** A server process kept running between tests, with every byte it printed; stopped (bounded) by stop(). */
class Server {
  output = '';
  private readonly closed: Promise<void>;

  constructor(readonly command: string, private readonly child: ChildProcess) {
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    child.stdin!.on('error', () => undefined);
    this.closed = new Promise((r) => child.once('close', () => r()));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  async ready(text: string, timeoutMs = 30_000): Promise<void> {
    try {
      await waitFor(`${this.command} to print ${text}`, () => this.output.includes(text) || !this.running, timeoutMs);
    } catch (error) {
      await this.stop();
      throw error;
    }
    if (!this.output.includes(text)) throw new Error(`${this.command} exited before it was ready:\n${this.output}`);
  }

  async stop(): Promise<void> {
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await this.closed;
    clearTimeout(timer);
  }
}

/** `openssl s_server` on a loopback port with the token key through the pkcs11 engine. */
async function engineServer(t: Target, key: KeyName, extra: string[] = []): Promise<{ server: Server; port: number }> {
  const port = await freePort();
  const args = ['s_server', '-engine', 'pkcs11', '-keyform', 'engine', '-key', uri(t, key), '-cert', certOf(t, key),
    '-accept', `127.0.0.1:${port}`, ...extra];
  const child = spawn('openssl', args, { env: { ...process.env, ...engineEnv(t) }, cwd: t.dir, stdio: ['pipe', 'pipe', 'pipe'] });
  const server = new Server(`openssl ${args.join(' ')} (${t.name})`, child);
  await server.ready('ACCEPT');
  return { server, port };
}

interface Handshake {
  established: boolean;
  protocol?: string;
  signature?: string;
  text: string;
}

/** `openssl s_client -brief` (plain openssl, no engine) verifying the server against `ca`. */
async function sClient(port: number, ca: string, args: string[]): Promise<Handshake> {
  const r = await openssl(['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', ca, '-verify_return_error', '-brief', ...args],
    { input: 'Q\n', env: { OPENSSL_CONF: '/dev/null' }, timeoutMs: 30_000 });
  const text = r.stdout + r.stderr;
  return {
    established: text.includes('CONNECTION ESTABLISHED') && text.includes('Verification: OK'),
    protocol: /Protocol version: (\S+)/.exec(text)?.[1],
    signature: /Signature type: (\S+)/.exec(text)?.[1],
    text: `${r.command}\n${text}`,
  };
}

/** One full handshake (no resumption) with Node's TLS client; resolves with how it ended. */
function nodeHandshake(port: number, ca: Buffer, options: { maxVersion: 'TLSv1.2' | 'TLSv1.3'; sigalgs?: string }): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca, servername: 'localhost', minVersion: options.maxVersion, ...options });
    const timer = setTimeout(() => { socket.destroy(); resolve('timed out after 20 s'); }, 20_000);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const authorized = socket.authorized;
      socket.end();
      resolve(authorized ? null : `not authorized: ${String(socket.authorizationError)}`);
    });
    socket.once('error', (error) => { clearTimeout(timer); socket.destroy(); resolve(error.message); });
  });
}

let stacks: ThreeStacks;
let work: string;
const targets: Target[] = [];

beforeAll(async () => {
  stacks = await ThreeStacks.start('tls', TOKEN, SO_PIN, PIN);
  work = stacks.work;
  targets.push(...stacks.all.map((stack) => ({ ...stack, opensslConf: writeEngineConfig(stack.dir, '', stack.module) })));
  const tool = (t: Target, args: string[]) => run('pkcs11-tool', ['--module', t.module, ...args], { env: t.env, cwd: t.dir, timeoutMs: 60_000 });
  for (const t of targets) {
    ok(await tool(t, ['--login', '--pin', PIN, '--keypairgen', '--key-type', 'EC:prime256v1', '--label', LABELS.ec, '--id', '61']));
    ok(await tool(t, ['--login', '--pin', PIN, '--keypairgen', '--key-type', 'rsa:2048', '--label', LABELS.rsa, '--id', '62']));
    for (const key of ['ec', 'rsa'] as const) {
      ok(await openssl(['req', '-new', '-x509', '-engine', 'pkcs11', '-keyform', 'engine', '-key', uri(t, key), '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-sha256', '-out', certOf(t, key)], { env: engineEnv(t), cwd: t.dir }));
      const der = join(t.dir, `${key}-cert.der`);
      ok(await openssl(['x509', '-in', certOf(t, key), '-outform', 'DER', '-out', der]));
      ok(await tool(t, ['--login', '--pin', PIN, '--write-object', der, '--type', 'cert', '--label', LABELS[key], '--id', key === 'ec' ? '61' : '62']));
    }
  }
  // A server key and certificate in plain files, for the client-authentication scenario.
  ok(await openssl(['req', '-new', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-days', '1', '-keyout', join(work, 'server-key.pem'), '-out', join(work, 'server.pem')],
  { env: { OPENSSL_CONF: '/dev/null' } }));
}, 240_000);

afterAll(async () => {
  await stacks?.stop();
});

/** Per target name: case → established. */
type Outcomes = Map<string, Map<string, boolean>>;

/** What one case gave: whether it worked, and what to show when it did not. */
type RecordOutcome = (name: string, ok: boolean, text: string) => void;

/**
 * On each target and each key: a server started for it, the cases run against it, the server
 * stopped; the outcomes printed as `what` and compared with the reference's.
 */
async function onEachTargetAndKey(what: string, mustWork: string[], start: (t: Target, key: KeyName) => Promise<{ server: Server; port: number }>,
  each: (t: Target, key: KeyName, server: Server, port: number, record: RecordOutcome) => Promise<void>): Promise<void> {
  const outcomes: Outcomes = new Map();
  const texts = new Map<string, string>();
  for (const t of targets) {
    const mine = new Map<string, boolean>();
    outcomes.set(t.name, mine);
    for (const key of ['ec', 'rsa'] as const) {
      const { server, port } = await start(t, key);
      try {
        await each(t, key, server, port, (name, ok, text) => {
          mine.set(name, ok);
          texts.set(`${t.name}/${name}`, text);
        });
      } finally {
        await server.stop();
      }
    }
  }
  console.log(`${what}:`, JSON.stringify([...outcomes].map(([n, m]) => [n, Object.fromEntries(m)]), null, 1));
  expectAtLeastReference(outcomes, texts, mustWork);
}

/** Every case the reference passes, ntls passes on both paths; and the reference passes what it must. */
function expectAtLeastReference(outcomes: Outcomes, texts: Map<string, string>, mustWork: string[]): void {
  const ref = outcomes.get(targets[0]!.name)!;
  for (const c of mustWork) expect(ref.get(c), `reference: ${c}\n${texts.get(`${targets[0]!.name}/${c}`)}`).toBe(true);
  for (const t of targets.slice(1)) {
    for (const [c, refOk] of ref) {
      if (refOk) expect(outcomes.get(t.name)!.get(c), `${t.name}: ${c}\n${texts.get(`${t.name}/${c}`)}`).toBe(true);
    }
  }
}

describe('openssl s_server with its key on the token (pkcs11 engine), openssl s_client: ntls beside p11-kit server + SoftHSM2', () => {
  const cases: Array<{ key: KeyName; name: string; args: string[]; signature: string; protocol: string }> = [
    { key: 'ec', name: 'P-256, TLS 1.2', args: ['-tls1_2'], signature: 'ECDSA', protocol: 'TLSv1.2' },
    { key: 'ec', name: 'P-256, TLS 1.3', args: ['-tls1_3'], signature: 'ECDSA', protocol: 'TLSv1.3' },
    { key: 'rsa', name: 'RSA-2048, TLS 1.2, PKCS#1 v1.5', args: ['-tls1_2', '-sigalgs', 'RSA+SHA256'], signature: 'RSA', protocol: 'TLSv1.2' },
    { key: 'rsa', name: 'RSA-2048, TLS 1.2, RSA-PSS', args: ['-tls1_2', '-sigalgs', 'rsa_pss_rsae_sha256'], signature: 'RSA-PSS', protocol: 'TLSv1.2' },
    { key: 'rsa', name: 'RSA-2048, TLS 1.3 (RSA-PSS)', args: ['-tls1_3'], signature: 'RSA-PSS', protocol: 'TLSv1.3' },
  ];

  it('every handshake that works on the reference works on ntls, with the signature made on the token', async () => {
    await onEachTargetAndKey('s_server/s_client outcomes', ['P-256, TLS 1.2', 'P-256, TLS 1.3', 'RSA-2048, TLS 1.2, PKCS#1 v1.5'], engineServer,
      async (t, key, server, port, record) => {
        for (const c of cases.filter((x) => x.key === key)) {
          const h = await sClient(port, certOf(t, key), c.args);
          record(c.name, h.established && h.signature === c.signature && h.protocol === c.protocol, `${h.text}\n--- s_server:\n${server.output}`);
        }
      });
  }, 300_000);
});

describe('GnuTLS with its key on the token: ntls beside p11-kit server + SoftHSM2', () => {
  const priorities = [
    ['TLS 1.2', 'NORMAL:-VERS-ALL:+VERS-TLS1.2'],
    ['TLS 1.3', 'NORMAL:-VERS-ALL:+VERS-TLS1.3'],
    // The peer's own key is P-256: its signature algorithm stays allowed.
    ['TLS 1.2, RSA PKCS#1 v1.5', 'NORMAL:-VERS-ALL:+VERS-TLS1.2:-SIGN-ALL:+SIGN-RSA-SHA256:+SIGN-ECDSA-SHA256'],
  ] as const;

  /** `openssl s_server -Verify 1` (plain files) trusting the token certificate as the only client CA. */
  async function verifyingServer(t: Target, key: KeyName): Promise<{ server: Server; port: number }> {
    const port = await freePort();
    const args = ['s_server', '-Verify', '1', '-verify_return_error', '-CAfile', certOf(t, key), '-cert', join(work, 'server.pem'),
      '-key', join(work, 'server-key.pem'), '-accept', `127.0.0.1:${port}`];
    const server = new Server(`openssl ${args.join(' ')}`, spawn('openssl', args, { env: { ...process.env, OPENSSL_CONF: '/dev/null' }, cwd: t.dir, stdio: ['pipe', 'pipe', 'pipe'] }));
    await server.ready('ACCEPT');
    return { server, port };
  }

  /** gnutls-cli with the token key as its client key, sending `line` once connected. */
  function clientAuth(t: Target, key: KeyName, cert: string, priority: string, port: number, line: string): Promise<ToolResult> {
    return run('gnutls-cli', ['--provider', t.module, '--x509keyfile', uri(t, key), '--x509certfile', cert, '--x509cafile', join(work, 'server.pem'),
      '--verify-hostname', 'localhost', '--priority', priority, '-p', String(port), '127.0.0.1'], { env: t.env, cwd: t.dir, input: `${line}\n`, timeoutMs: 30_000 });
  }

  it('gnutls-cli authenticates with the token key (PIN in the URI; certificate in a file or on the token) to openssl s_server -Verify 1', async () => {
    await onEachTargetAndKey('gnutls-cli client-auth outcomes',
      ['ec, certificate file, TLS 1.2', 'ec, certificate file, TLS 1.3', 'rsa, certificate file, TLS 1.2, RSA PKCS#1 v1.5'], verifyingServer,
      async (t, key, server, port, record) => {
        for (const [certName, cert] of [['certificate file', certOf(t, key)], ['certificate on the token', certUri(t, key)]] as const) {
          for (const [name, priority] of priorities.slice(0, key === 'ec' ? 2 : 3)) {
            const c = `${key}, ${certName}, ${name}`;
            const marker = `from-the-token-${c.replace(/\W+/g, '-')}`;
            const r = await clientAuth(t, key, cert, priority, port, marker);
            // s_server prints what the client sent once it has read it: a moment after gnutls-cli ends.
            await waitFor(`s_server to print ${marker}`, () => server.output.includes(marker), 3000).catch(() => undefined);
            record(c, r.status === 0 && server.output.includes(marker), `${explain(r)}\n--- s_server:\n${server.output.slice(-3000)}`);
          }
        }
      });
  }, 300_000);

  it(`${CLIENT_RUNS} gnutls-cli processes in a row, each logging in and signing with the token key: all succeed, and the token's sessions end with them`, async () => {
    for (const t of targets) {
      const before = t.daemon ? (await partitions(t.daemon)).find((p) => p.label === t.token) : undefined;
      const { server, port } = await verifyingServer(t, 'ec');
      const failures: string[] = [];
      try {
        for (let i = 0; i < CLIENT_RUNS; i++) {
          const r = await clientAuth(t, 'ec', certOf(t, 'ec'), priorities[1][1], port, `run-${i}`);
          if (r.status !== 0) failures.push(explain(r));
        }
      } finally {
        await server.stop();
      }
      expect(failures, t.name).toEqual([]);
      if (t.daemon) {
        await waitFor(`${t.name}: the sessions of the gnutls-cli processes closed`, async () =>
          (await partitions(t.daemon!)).find((p) => p.label === t.token)!.sessions === before!.sessions, 10_000);
      }
    }
  }, 300_000);
});

describe(`${HANDSHAKES} handshakes in a row against s_server with the token key: ntls beside p11-kit server + SoftHSM2`, () => {
  it('none fails, the token\'s sessions do not grow, no object is left behind (the times are printed, not judged)', async () => {
    const times = new Map<string, number>();
    for (const t of targets) {
      for (const [key, options] of [['ec', { maxVersion: 'TLSv1.3' }], ['rsa', { maxVersion: 'TLSv1.2', sigalgs: 'RSA+SHA256' }]] as const) {
        const before = t.daemon ? (await partitions(t.daemon)).find((p) => p.label === t.token)! : undefined;
        const { server, port } = await engineServer(t, key);
        const ca = readFileSync(certOf(t, key));
        try {
          // A few first, so that the engine's sessions are open before counting.
          for (let i = 0; i < 5; i++) expect(await nodeHandshake(port, ca, options), `${t.name} ${key} warm-up\n${server.output}`).toBe(null);
          const warm = t.daemon ? (await partitions(t.daemon)).find((p) => p.serial === before!.serial)! : undefined;
          const started = performance.now();
          const failures: string[] = [];
          for (let i = 0; i < HANDSHAKES; i++) {
            const failure = await nodeHandshake(port, ca, options);
            if (failure !== null) failures.push(`#${i}: ${failure}`);
          }
          times.set(`${t.name} ${key}`, performance.now() - started);
          expect(failures, `${t.name} ${key}\n${server.output.slice(-2000)}`).toEqual([]);
          if (t.daemon) {
            const after = (await partitions(t.daemon)).find((p) => p.serial === before!.serial)!;
            expect(after.sessions, `${t.name} ${key}: sessions after ${HANDSHAKES} handshakes`).toBe(warm!.sessions);
            expect(after.tokenObjects).toBe(before!.tokenObjects);
          }
        } finally {
          await server.stop();
        }
        if (t.daemon) {
          await waitFor(`${t.name}: the sessions of s_server closed`, async () =>
            (await partitions(t.daemon!)).find((p) => p.serial === before!.serial)!.sessions === before!.sessions, 10_000);
        }
      }
    }
    console.log('handshake times (ms):', JSON.stringify(Object.fromEntries(times), null, 1));
  }, 600_000);

  it(`${PARALLEL} s_server processes on the same token key, each handshaking with its own client at the same time: none fails`, async () => {
    for (const t of targets) {
      // Started one after the other: p11-kit server (the reference) fails a client that connects
      // while it is still setting up another ("Failed to enumerate slots").
      const servers: Array<{ server: Server; port: number }> = [];
      const ca = readFileSync(certOf(t, 'ec'));
      try {
        for (let i = 0; i < PARALLEL; i++) servers.push(await engineServer(t, 'ec'));
        const failures = await Promise.all(servers.map(async ({ port }) => {
          const mine: string[] = [];
          for (let i = 0; i < HANDSHAKES / PARALLEL; i++) {
            const failure = await nodeHandshake(port, ca, { maxVersion: 'TLSv1.3' });
            if (failure !== null) mine.push(`port ${port} #${i}: ${failure}`);
          }
          return mine;
        }));
        expect(failures.flat(), `${t.name}\n${servers.map((s) => s.server.output.slice(-1000)).join('\n---\n')}`).toEqual([]);
      } finally {
        await Promise.all(servers.map((s) => s.server.stop()));
      }
    }
  }, 600_000);
});
