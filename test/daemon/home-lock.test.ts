// One daemon per home, and nothing left in the way after a crash: a start right after kill -9
// clears the dead daemon's pid file and admin.sock without asking, a pid file naming a process
// that is not ours (a pid reused) misleads neither start nor stop, and a live daemon is still
// refused without its log being touched.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Daemon, makeHome, ntlsBin, removeHome, runNtls, startDaemon } from '../support/daemon.js';

const homes: string[] = [];
const daemons: Daemon[] = [];
const others: ChildProcess[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop('SIGKILL');
  for (const o of others.splice(0)) o.kill('SIGKILL');
  for (const h of homes.splice(0)) removeHome(h);
});

function home(): string {
  const h = makeHome({ datapath: { receiveTimeout: 0 } });
  homes.push(h);
  return h;
}

const pidIn = (h: string) => Number(readFileSync(join(h, 'ntls.pid'), 'utf8').trim());

describe('the home of a daemon', () => {
  it('kill -9, then start again at once: the stale pid file and admin.sock are cleared, the new daemon serves', async () => {
    const h = home();
    const first = await startDaemon(h);
    daemons.push(first);
    expect(existsSync(join(h, 'admin.sock'))).toBe(true);
    expect(pidIn(h)).toBe(first.child.pid);
    // No wait for the kill to land or for the process to be reaped.
    first.child.kill('SIGKILL');
    const second = await startDaemon(h);
    daemons.push(second);
    expect(pidIn(h)).toBe(second.child.pid);
    const status = await runNtls(['status', '--home', h]);
    expect(status.status).toBe(0);
    expect(status.stdout).toContain(`pid ${second.child.pid}`);
    expect((await runNtls(['service', 'status', '--home', h])).status).toBe(0);
    expect((await first.exited).signal).toBe('SIGKILL');
  });

  it('kill -9 of a daemon its parent has not reaped yet (a zombie, its pid still taken): a start goes ahead at once', async () => {
    const h = home();
    // The daemon's parent becomes `sleep`, which never waits for its children.
    const parent = spawn('sh', ['-c', `"${process.execPath}" "${ntlsBin}" start --home "${h}" --quiet >/dev/null 2>&1 & exec sleep 60`], { stdio: 'ignore' });
    others.push(parent);
    const deadline = Date.now() + 20_000;
    while ((await runNtls(['service', 'status', '--home', h])).status !== 0) {
      if (Date.now() > deadline) throw new Error('the first daemon did not come online');
      await new Promise((r) => setTimeout(r, 100));
    }
    const zombie = pidIn(h);
    process.kill(zombie, 'SIGKILL');
    const daemon = await startDaemon(h);
    daemons.push(daemon);
    expect(pidIn(h)).toBe(daemon.child.pid);
    expect(readFileSync(`/proc/${zombie}/status`, 'utf8')).toMatch(/^State:\s+Z/m);
    expect((await runNtls(['service', 'status', '--home', h])).status).toBe(0);
  });

  it('a live daemon on the same home is refused, and its log and files are left alone', async () => {
    const h = home();
    const live = await startDaemon(h);
    daemons.push(live);
    const lines = live.log().length;
    const second = await runNtls(['start', '--home', h, '--quiet']);
    expect(second.status).toBe(1);
    expect(second.stderr).toContain(`pid ${live.child.pid}`);
    expect(second.stderr.trim()).toMatch(/\. \[NTLS_ERR_HOME_IN_USE\]$/);
    expect(second.stderr.trim().split('\n')).toHaveLength(1);
    expect(live.log()).toHaveLength(lines);
    expect(pidIn(h)).toBe(live.child.pid);
    expect((await runNtls(['service', 'status', '--home', h])).status).toBe(0);
  });

  it('a pid file naming a live process that is not a daemon of this home, and a stale admin.sock: start goes ahead, stop stops only the daemon', async () => {
    const h = home();
    const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
    others.push(stranger);
    writeFileSync(join(h, 'ntls.pid'), `${stranger.pid}\n`);
    // A socket file nobody serves, as a killed daemon leaves it: its server is killed listening.
    const killed = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(join(h, 'admin.sock'))}, () => process.kill(process.pid, 'SIGKILL'))`]);
    await new Promise((r) => killed.once('exit', r));
    expect(existsSync(join(h, 'admin.sock'))).toBe(true);
    expect((await runNtls(['status', '--home', h])).status).toBe(3);
    const daemon = await startDaemon(h);
    daemons.push(daemon);
    expect(pidIn(h)).toBe(daemon.child.pid);
    const stop = await runNtls(['stop', '--home', h]);
    expect(stop.status).toBe(0);
    expect((await daemon.exited).status).toBe(0);
    expect(stranger.exitCode).toBeNull();
    expect(stranger.signalCode).toBeNull();
  });
});
