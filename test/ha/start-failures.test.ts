// A node whose store cannot be used does not start: a wrong store.url, a database of another
// schema version. One clear line on stderr, the guide's device-error lines in the log, exit 1,
// nothing written to the database.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clientTestHome } from '../client/support.js';
import { removeHome, startDaemon } from '../support/daemon.js';
import { startPostgres, type PostgresServer } from '../support/postgres.js';

let server: PostgresServer;
const homes: string[] = [];

beforeAll(async () => { server = await startPostgres(); }, 120_000);
afterAll(async () => {
  await server?.destroy();
  for (const home of homes) removeHome(home);
});

function home(url: string): string {
  const made = clientTestHome({ store: { backend: 'postgres', url } });
  homes.push(made);
  return made;
}

async function refusedStart(url: string): Promise<{ status: number; stderr: string }> {
  const error = await startDaemon(home(url)).then(
    async (daemon) => {
      await daemon.stop();
      throw new Error('the daemon started');
    },
    (e: unknown) => e as { status: number; stderr: string },
  );
  return error;
}

describe('a node whose store cannot be used does not start', () => {
  it('nothing listening at store.url: one line naming the URL (password masked), exit 1', async () => {
    const { status, stderr } = await refusedStart(`postgresql://ntls:secret-pw@127.0.0.1:${server.port + 1}/ntls`);
    expect(status).toBe(1);
    const lines = stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^ntls: HSM store postgresql:\/\/ntls:\*\*\*@127\.0\.0\.1:\d+\/ntls cannot be used: cannot connect/);
    expect(stderr).not.toContain('secret-pw');
  });

  it('a database of another schema version: one line, exit 1, the database as it was', async () => {
    const url = await server.createDatabase('other_version');
    // A node makes the schema, then the database is said to be of a later version.
    const daemon = await startDaemon(home(url));
    await daemon.stop();
    await server.query('other_version', "UPDATE ntls_meta SET value = '2' WHERE key = 'schema_version'");
    const clock = await server.query('other_version', 'SELECT version FROM ntls_clock');
    const { status, stderr } = await refusedStart(url);
    expect(status).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/schema version 2 in the database; this ntls reads version 1.*Nothing was written/);
    expect(await server.query('other_version', 'SELECT version FROM ntls_clock')).toEqual(clock);
  });

  it('store.backend postgres without store.url is a configuration error naming the key, exit 2', async () => {
    const made = clientTestHome({ store: { backend: 'postgres' } });
    homes.push(made);
    const error = await startDaemon(made).then(() => null, (e: unknown) => e as { status: number; stderr: string });
    expect(error?.status).toBe(2);
    expect(error?.stderr).toContain('"store.url"');
  });
});
