// Two ntls nodes serving the same partition, and a client host with an HA group over them.
// Without the shared PostgreSQL store (another branch), node 2 is a copy of node 1's stopped
// home: same partition (serial, label, PINs), same token objects with the same handles, which
// is what nodes on one store give. Each node listens on its own fixed loopback port, so a node
// killed and started again is found where it was.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CKM } from '../../src/pkcs11/constants.js';
import type { Mechanism } from '../../src/pkcs11/mechanism.js';
import { removeHome, runNtls, startDaemon, type Daemon } from '../support/daemon.js';
import { CO_PIN, ClientHost, clientTestHome, expectOk, initialiseSlot } from './support.js';
import { freePort } from '../support/ports.js';
export { freePort };

export const GROUP = 'g1';
export const KEY_LABEL = 'ha-sign';
export const AES_LABEL = 'ha-aes';
export const ECDSA_SHA256: Mechanism = { type: CKM.ECDSA_SHA256, parameter: null };

export class Node {
  daemon: Daemon;

  constructor(readonly name: string, readonly home: string, daemon: Daemon) {
    this.daemon = daemon;
  }

  get port(): number {
    return this.daemon.port;
  }

  /** kill -9, waited for. */
  async kill(): Promise<void> {
    await this.daemon.stop('SIGKILL');
  }

  async restart(): Promise<void> {
    this.daemon = await startDaemon(this.home);
  }

  async stop(): Promise<void> {
    await this.daemon.stop();
  }
}

export interface HaSetup {
  nodes: [Node, Node];
  alice: ClientHost;
  cleanup(): Promise<void>;
}

function setPort(home: string, port: number): void {
  const file = join(home, 'ntls.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, JSON.stringify({ ...config, server: { bind: '127.0.0.1', port } }, null, 2));
}

/**
 * Node 1 made, alice registered and given `default`, the partition initialised and an EC key
 * made on it; node 1 stopped and its home copied to node 2; both started; alice's group g1 over
 * both (recovery every `recoveryInterval` s).
 */
export async function setUpGroup(options: { recoveryInterval?: number } = {}): Promise<HaSetup> {
  const home1 = clientTestHome();
  setPort(home1, await freePort());
  let daemon1 = await startDaemon(home1);
  const alice = new ClientHost('alice');
  expectOk(await alice.run('create-cert', '--cn', 'alice'));
  expectOk(await runNtls(['client', 'register', '-c', 'alice', '--cert', alice.certificateFile, '--hostname', '127.0.0.1', '--home', home1]));
  expectOk(await runNtls(['client', 'assign-partition', '-c', 'alice', '-p', 'default', '--home', home1]));
  expectOk(await alice.run('add-server', '--host', '127.0.0.1', '--port', String(daemon1.port), '--cert', join(home1, 'server', 'server.pem'), '--name', 'node1'));
  await initialiseSlot(alice);
  const client = alice.library();
  try {
    const token = await client.openToken({ server: 'node1', pin: CO_PIN });
    await token.generateKeyPair('ec-p256', { label: KEY_LABEL });
    await token.generateKey('aes-256', { label: AES_LABEL });
    await token.close();
  } finally {
    await client.close();
  }
  await daemon1.stop();
  const home2 = mkdtempSync(join(tmpdir(), 'ntls-test-node2-'));
  cpSync(home1, home2, { recursive: true });
  setPort(home2, await freePort());
  daemon1 = await startDaemon(home1);
  const daemon2 = await startDaemon(home2);
  const nodes: [Node, Node] = [new Node('node1', home1, daemon1), new Node('node2', home2, daemon2)];
  expectOk(await alice.run('add-server', '--host', '127.0.0.1', '--port', String(daemon2.port), '--cert', join(home2, 'server', 'server.pem'), '--name', 'node2'));
  expectOk(await alice.run('ha', 'create', '--group', GROUP, '--partition', 'default', '--recovery-interval', String(options.recoveryInterval ?? 1)));
  expectOk(await alice.run('ha', 'add-member', '--group', GROUP, '--server', 'node1'));
  expectOk(await alice.run('ha', 'add-member', '--group', GROUP, '--server', 'node2'));
  return {
    nodes, alice,
    async cleanup() {
      for (const node of nodes) await node.stop().catch(() => undefined);
      for (const node of nodes) removeHome(node.home);
      alice.remove();
    },
  };
}
