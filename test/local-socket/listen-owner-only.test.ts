// A unix socket served by ntls (the relay's --listen, the daemon's local and admin sockets) is
// there only once it accepts: a program that waits for the file and connects at once is never
// refused. Bound in place, the file existed a moment before the socket listened, and a connect
// then got ECONNREFUSED (about one start in twenty here; a CI run failed on it). The listener
// below widens that moment to 300 ms, as a process descheduled between bind and listen would.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { repoRoot } from '../support/daemon.js';

const dir = mkdtempSync(join(tmpdir(), 'ntls-listen-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Listens on PATH with listenOwnerOnly, each listen(2) 300 ms after its bind(2); closes when stdin ends. */
const SLOW_LISTENER = `
const { Pipe } = process.binding('pipe_wrap');
const listen = Pipe.prototype.listen;
Pipe.prototype.listen = function (...args) {
  const until = Date.now() + 300;
  while (Date.now() < until);
  return listen.apply(this, args);
};
const { createServer } = await import('node:net');
const { listenOwnerOnly } = await import(${JSON.stringify(join(repoRoot, 'dist/src/local-socket/listen-owner-only.js'))});
const server = createServer((socket) => socket.destroy());
await listenOwnerOnly(server, process.argv[1]);
process.stdin.resume();
process.stdin.once('end', () => server.close());
`;

function connectOnce(path: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
  });
}

it('a connect as soon as the socket file appears is accepted; the file is 0600 and goes when the server closes', async () => {
  for (const name of ['relay.sock', 'a']) {
    const path = join(dir, name);
    const child = spawn(process.execPath, ['--no-deprecation', '--input-type=module', '-e', SLOW_LISTENER, path], { stdio: ['pipe', 'ignore', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const deadline = Date.now() + 10_000;
      while (!existsSync(path)) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no socket ${path}`);
        await new Promise((resolve) => setImmediate(resolve));
      }
      expect(await connectOnce(path)).toBe('connected');
      expect(statSync(path).mode & 0o777).toBe(0o600);
    } finally {
      child.stdin.end();
      await exited;
    }
    expect(readdirSync(dir)).toEqual([]); // nor a staging name left
  }
}, 60_000);
