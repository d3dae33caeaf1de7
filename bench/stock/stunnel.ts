// The mutual-TLS reference: `p11-kit server`'s unix socket behind two stunnels (Debian stunnel4),
// as one would put a stock p11-kit server on a network:
//   application → client stunnel (unix socket, client certificate) → TLS on a loopback port →
//   server stunnel (requires and verifies the client certificate) → p11-kit server's socket.
// TLS as ntls speaks it by default: TLS 1.3, TLS_AES_256_GCM_SHA384, P-256 certificates, each
// side pinning the other's self-signed certificate. stunnel sets TCP_NODELAY on both sides of
// each tunnel by default; it is written out anyway.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSelfSignedCertificate } from '../../src/certificates/self-signed.js';

const STUNNEL = '/usr/bin/stunnel4';

/** A loopback TCP port free a moment ago (the kernel's choice). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function config(dir: string, name: string, service: string[]): string {
  const file = join(dir, `${name}.conf`);
  writeFileSync(file, [
    'foreground = yes',
    'pid =',
    'syslog = no',
    `output = ${join(dir, `${name}.log`)}`,
    'debug = err',
    '[p11kit]',
    'sslVersionMin = TLSv1.3',
    'ciphersuites = TLS_AES_256_GCM_SHA384',
    'verifyPeer = yes',
    'socket = l:TCP_NODELAY=1',
    'socket = r:TCP_NODELAY=1',
    ...service,
    '',
  ].join('\n'));
  return file;
}

export class StunnelPair {
  private constructor(
    private readonly dir: string,
    /** Where applications connect: P11_KIT_SERVER_ADDRESS=unix:path=<socketPath>. */
    readonly socketPath: string,
    private readonly server: ChildProcess,
    private readonly client: ChildProcess,
  ) {}

  /** Tunnels to `target` (a unix socket path); every wait bounded. */
  static async start(target: string): Promise<StunnelPair> {
    if (!existsSync(STUNNEL)) throw new Error(`${STUNNEL} is missing: apt-get install stunnel4`);
    const dir = mkdtempSync(join(tmpdir(), 'ntls-bench-stunnel-'));
    const files = (name: string) => ({ cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) });
    for (const [name, usage] of [['server', 'server'], ['client', 'client']] as const) {
      const made = await createSelfSignedCertificate({ commonName: `stunnel-${name}`, keyType: 'ecdsa-p256', usage, dnsNames: [`stunnel-${name}`, 'localhost'] });
      writeFileSync(files(name).cert, made.certificatePem);
      writeFileSync(files(name).key, made.keyPem, { mode: 0o600 });
    }
    const port = await freePort();
    const socketPath = join(dir, 'client.sock');
    const serverConf = config(dir, 'server', [
      `accept = 127.0.0.1:${port}`, `connect = ${target}`,
      `cert = ${files('server').cert}`, `key = ${files('server').key}`, `CAfile = ${files('client').cert}`,
    ]);
    const clientConf = config(dir, 'client', [
      'client = yes', `accept = ${socketPath}`, `connect = 127.0.0.1:${port}`,
      `cert = ${files('client').cert}`, `key = ${files('client').key}`, `CAfile = ${files('server').cert}`,
    ]);
    const server = spawn(STUNNEL, [serverConf], { stdio: 'ignore' });
    const client = spawn(STUNNEL, [clientConf], { stdio: 'ignore' });
    const pair = new StunnelPair(dir, socketPath, server, client);
    try {
      await pair.waitListening(port);
    } catch (error) {
      await pair.stop();
      throw error;
    }
    return pair;
  }

  get serverPid(): number {
    return this.server.pid!;
  }

  get clientPid(): number {
    return this.client.pid!;
  }

  private async waitListening(port: number): Promise<void> {
    const listening = () => readFileSync('/proc/net/tcp', 'utf8').includes(`:${port.toString(16).toUpperCase().padStart(4, '0')} 00000000:0000 0A`);
    for (let i = 0; i < 200; i++) {
      for (const child of [this.server, this.client]) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`stunnel exited ${child.exitCode ?? child.signalCode}: ${this.logs()}`);
      }
      if (existsSync(this.socketPath) && listening()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`stunnel did not listen within 10 s: ${this.logs()}`);
  }

  /** Both stunnels' logs (errors only), for a failure message. */
  logs(): string {
    return ['server', 'client'].map((name) => {
      const file = join(this.dir, `${name}.log`);
      return existsSync(file) ? `${name}: ${readFileSync(file, 'utf8').trim()}` : '';
    }).filter(Boolean).join('\n');
  }

  async stop(): Promise<void> {
    await Promise.all([this.server, this.client].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
