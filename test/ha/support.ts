// Several ntls nodes on one PostgreSQL store (docs/ha.md): real daemons in their own homes on
// their own loopback ports, each with its own server certificate, sharing the store and the
// client registry folder; a client host that knows every node as a server.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CKU } from '../../src/pkcs11/constants.js';
import { ClientHost, clientTestHome, expectOk, SO_PIN, CO_PIN } from '../client/support.js';
import { removeHome, runNtls, startDaemon, type Daemon } from '../support/daemon.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';

export { CO_PIN, SO_PIN };

export interface Cluster {
  postgres: PostgresServer;
  url: string;
  /** The registry folder every node's clients.verifyLocation names. */
  clients: string;
  homes: string[];
  nodes: Daemon[];
  alice: ClientHost;
  /** Starts node i again in its home (after a stop). */
  restart(i: number): Promise<Daemon>;
  destroy(): Promise<void>;
}

/** `count` nodes on a fresh database; alice registered once (through node 1) and given `default`. */
export async function startCluster(count: number, hsm: Record<string, unknown> = {}): Promise<Cluster> {
  const postgres = await startPostgres();
  const url = await postgres.createDatabase('ntls');
  const clients = mkdtempSync(join(tmpdir(), 'ntls-ha-clients-'));
  const homes: string[] = [];
  const nodes: Daemon[] = [];
  for (let i = 0; i < count; i++) {
    const home = clientTestHome({
      hsm: { kdfCost: 1024, pinMinLength: 4, ...hsm },
      store: { backend: 'postgres', url },
      clients: { verifyLocation: clients },
    });
    homes.push(home);
    nodes.push(await startDaemon(home));
  }
  const alice = new ClientHost('alice');
  expectOk(await alice.run('create-cert', '--cn', 'alice'));
  expectOk(await runNtls(['client', 'register', '-c', 'alice', '--cert', alice.certificateFile, '--hostname', '127.0.0.1', '--home', homes[0]!]));
  expectOk(await runNtls(['client', 'assign-partition', '-c', 'alice', '-p', 'default', '--home', homes[0]!]));
  for (const [i, node] of nodes.entries()) {
    expectOk(await alice.run('add-server', '--host', '127.0.0.1', '--port', String(node.port), '--cert', join(homes[i]!, 'server', 'server.pem'), '--name', `n${i + 1}`));
  }
  return {
    postgres, url, clients, homes, nodes, alice,
    async restart(i) {
      nodes[i] = await startDaemon(homes[i]!);
      return nodes[i];
    },
    async destroy() {
      for (const node of nodes) await node.stop().catch(() => undefined);
      await postgres.destroy();
      for (const home of homes) removeHome(home);
      rmSync(clients, { recursive: true, force: true });
      alice.remove();
    },
  };
}

/** C_InitToken and C_InitPIN on `default` through one node. */
export async function initialiseDefault(cluster: Cluster, server = 'n1'): Promise<void> {
  const client = cluster.alice.library();
  try {
    const p11 = client.server(server);
    await p11.initToken(0, SO_PIN, 'default');
    const session = await p11.openSession(0);
    await p11.login(session, CKU.SO, SO_PIN);
    await p11.initPin(session, CO_PIN);
    await p11.logout(session);
    await p11.closeSession(session);
  } finally {
    await client.close();
  }
}
