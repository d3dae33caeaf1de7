// A private PostgreSQL 15 for tests: Debian's initdb and pg_ctl make a cluster in a temp folder,
// listening on a free loopback port (and a unix socket in the folder), run by an unprivileged
// user (nobody, through runuser, when the tests run as root as in CI; PostgreSQL refuses root).
// No mock database: the store under test talks to the real server.

import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './ports.js';

const run = promisify(execFile);

export const PG_BIN = '/usr/lib/postgresql/15/bin';

/** Whether Debian's PostgreSQL 15 server is installed (scripts/system-packages.mjs installs it). */
export function postgresInstalled(): boolean {
  return existsSync(join(PG_BIN, 'initdb')) && existsSync(join(PG_BIN, 'pg_ctl'));
}

export interface PostgresServer {
  /** The cluster's folder (data/, the log, the socket). */
  readonly dir: string;
  readonly port: number;
  /** postgresql://ntls@127.0.0.1:port/<database> */
  url(database?: string): string;
  /** A new, empty database; its URL. */
  createDatabase(name: string): Promise<string>;
  /** Stops the server (fast shutdown: connections end), keeping the cluster. */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
  /** Stops it and removes the folder. */
  destroy(): Promise<void>;
  /** SQL as the superuser, for a test's checks. */
  query<T extends pg.QueryResultRow = pg.QueryResultRow>(database: string, sql: string, values?: unknown[]): Promise<T[]>;
}

/** The command, run as nobody when this process is root. */
function asUser(file: string, args: string[]): [string, string[]] {
  return process.getuid?.() === 0 ? ['runuser', ['-u', 'nobody', '--', file, ...args]] : [file, args];
}

async function runAs(file: string, args: string[]): Promise<void> {
  const [command, argv] = asUser(file, args);
  await run(command, argv, { timeout: 120_000 });
}

/** A temp folder the server's user owns. */
async function serverFolder(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'ntls-pg-'));
  if (process.getuid?.() === 0) {
    const { stdout } = await run('id', ['-u', 'nobody']);
    const { stdout: group } = await run('id', ['-g', 'nobody']);
    chownSync(dir, Number(stdout.trim()), Number(group.trim()));
  }
  return dir;
}

/** Makes and starts a private cluster; call destroy() at the end. */
export async function startPostgres(): Promise<PostgresServer> {
  const dir = await serverFolder();
  const data = join(dir, 'data');
  const port = await freePort();
  await runAs(join(PG_BIN, 'initdb'), ['-D', data, '-A', 'trust', '-U', 'ntls', '-E', 'UTF8', '--no-sync', '--no-instructions']);
  return serve(dir, data, port);
}

export interface StandbyServer extends PostgresServer {
  /** pg_ctl promote: the standby becomes a primary (a primary switch). */
  promote(): Promise<void>;
}

/** A streaming-replication standby of `primary` (pg_basebackup -R), started on its own port. */
export async function startStandby(primary: PostgresServer): Promise<StandbyServer> {
  const dir = await serverFolder();
  const data = join(dir, 'data');
  const port = await freePort();
  await runAs(join(PG_BIN, 'pg_basebackup'), ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'ntls', '-D', data, '-R', '-X', 'stream', '-c', 'fast', '--no-sync']);
  const server = await serve(dir, data, port);
  return { ...server, promote: () => runAs(join(PG_BIN, 'pg_ctl'), ['-D', data, '-w', '-t', '60', 'promote']) };
}

async function serve(dir: string, data: string, port: number): Promise<PostgresServer> {
  const start = () => runAs(join(PG_BIN, 'pg_ctl'), ['-D', data, '-l', join(dir, 'postgres.log'), '-w', '-t', '60',
    '-o', `-h 127.0.0.1 -p ${port} -k ${dir} -c max_connections=200`, 'start']);
  const stop = () => runAs(join(PG_BIN, 'pg_ctl'), ['-D', data, '-m', 'fast', '-w', '-t', '60', 'stop']);
  await start();
  const url = (database = 'postgres') => `postgresql://ntls@127.0.0.1:${port}/${database}`;
  const query = async <T extends pg.QueryResultRow>(database: string, sql: string, values?: unknown[]): Promise<T[]> => {
    const client = new pg.Client({ connectionString: url(database) });
    await client.connect();
    try {
      return (await client.query<T>(sql, values)).rows;
    } finally {
      await client.end();
    }
  };
  let running = true;
  return {
    dir, port, url, query,
    async createDatabase(name) {
      await query('postgres', `CREATE DATABASE "${name.replace(/"/g, '')}"`);
      return url(name);
    },
    async stop() {
      await stop();
      running = false;
    },
    async start() {
      await start();
      running = true;
    },
    async destroy() {
      if (running) await stop().catch(() => undefined);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
