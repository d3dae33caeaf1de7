// Signals and faults end the daemon cleanly, or not at all: SIGHUP re-reads what can be re-read
// and the daemon goes on; SIGINT, SIGTERM and SIGQUIT write the guide's shutdown lines; SIGUSR1
// (Node's inspector), SIGUSR2 and SIGALRM are ignored; SIGSEGV, SIGILL and SIGBUS (and SIGFPE,
// SIGABRT, SIGTRAP), sent or real, write the guide's "NTLS CRASH AND BURN! Stack dump saved to
// ..." line and the ntls_bt_* dump before the signal ends the process.
import { afterEach, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect as netConnect } from 'node:net';
import { join } from 'node:path';
import {
  Daemon, keepaliveBody, link, linkWhenRegistered, makeClient, makeHome, ntlsBin, registerClient, removeHome, runNtls,
  sleep, startDaemon, unregisterClient,
} from '../support/daemon.js';

const homes: string[] = [];
const daemons: Daemon[] = [];
afterEach(async () => {
  for (const d of daemons.splice(0)) await d.stop('SIGKILL');
  for (const h of homes.splice(0)) removeHome(h);
});

async function started(config: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = {}): Promise<Daemon> {
  const home = makeHome({ datapath: { receiveTimeout: 0 }, ...config });
  homes.push(home);
  const daemon = await startDaemon(home, env);
  daemons.push(daemon);
  return daemon;
}

const SHUTDOWN = [
  'info : 0 : Shutting down NTLS....',
  'info : 0 : Intiating dispatch termination.',
  'info : 0 : Dispatching has been terminated.',
  'info : 0 : Client certificate verify location monitor terminated',
  'info : 0 : Terminating.',
  'info : 0 : "NTLS PKCS#11 Command Processor" shut downed',
  'info : 0 : Command Processor module unloaded',
  'info : 0 : NTLS terminated',
];

function expectShutdownLines(bodies: string[]): void {
  const positions = SHUTDOWN.map((text) => bodies.indexOf(text));
  expect(positions.every((p) => p >= 0)).toBe(true);
  expect([...positions].sort((a, b) => a - b)).toEqual(positions);
}

describe('SIGHUP', () => {
  it('the daemon goes on: the verify location monitor restarts (re-reading it) and log.debug is re-read from ntls.json', async () => {
    const daemon = await started();
    const stays = await makeClient('stays');
    const goes = await makeClient('goes');
    registerClient(daemon.home, stays);
    registerClient(daemon.home, goes);
    const l = await linkWhenRegistered(daemon, stays);
    const from = daemon.log().length;
    // Debug logging turned on in the file, not through the admin channel.
    const config = JSON.parse(readFileSync(join(daemon.home, 'ntls.json'), 'utf8'));
    writeFileSync(join(daemon.home, 'ntls.json'), JSON.stringify({ ...config, log: { debug: true } }));
    unregisterClient(daemon.home, goes);
    daemon.child.kill('SIGHUP');
    await daemon.waitForLog('Client certificate verify location monitor started', 5000, from);
    await sleep(300);
    expect(daemon.child.exitCode).toBeNull();
    expect(daemon.child.signalCode).toBeNull();
    const after = daemon.bodies().slice(from);
    expect(after.indexOf('info : 0 : Client certificate verify location monitor terminated')).toBeLessThan(after.indexOf('info : 0 : Client certificate verify location monitor started'));
    expect(after).toContain('info : 0 : Detected client certificate removed from verify location.  Flush verify location cache');
    // Still serving: the live link, the admin channel, a new link (now with debug lines).
    expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    expect((await runNtls(['service', 'status', '--home', daemon.home])).status).toBe(0);
    // A TCP reset under a new link: with debug on, the datapath's debug line names the state.
    const raw = netConnect({ host: '127.0.0.1', port: daemon.port });
    const again = await link(daemon, stays, { socket: raw });
    await daemon.waitForLog(`NTLA Client "stays" connected and authenticated : 127.0.0.1/${again.socket.localPort}`, 5000, from);
    raw.resetAndDestroy();
    await daemon.waitForLog(/debug : 0xc0000002     Unexpected read response in HEADER STATE$/, 5000, from);
    await l.close();
    const result = await daemon.stop('SIGTERM');
    expect(result.status).toBe(0);
    expect(existsSync(join(daemon.home, 'admin.sock'))).toBe(false);
  });

  it('after lunalogs is renamed (logrotate without copytruncate), SIGHUP makes the daemon write to a new lunalogs', async () => {
    const daemon = await started();
    const app = await makeClient('rotated');
    registerClient(daemon.home, app);
    const before = daemon.log().length;
    renameSync(daemon.logFile, `${daemon.logFile}.old`);
    daemon.child.kill('SIGHUP');
    await daemon.waitForLog('Client certificate verify location monitor started', 5000);
    const l = await linkWhenRegistered(daemon, app);
    await daemon.waitForLog('NTLA Client "rotated" connected and authenticated');
    await l.close();
    // The renamed file kept what was written before, and nothing after.
    expect(readFileSync(`${daemon.logFile}.old`, 'utf8').split('\n').filter(Boolean)).toHaveLength(before);
    expect(daemon.bodies()[0]).toBe('info : 0 : Client certificate verify location monitor terminated');
  });
});

describe('SIGINT and SIGTERM', () => {
  it('SIGINT: the guide\'s shutdown lines in order, exit status 0, no pid file or admin.sock left', async () => {
    const daemon = await started();
    const from = daemon.log().length;
    const result = await daemon.stop('SIGINT');
    expect(result).toEqual({ status: 0, signal: null });
    expectShutdownLines(daemon.bodies().slice(from));
    expect(existsSync(join(daemon.home, 'ntls.pid'))).toBe(false);
    expect(existsSync(join(daemon.home, 'admin.sock'))).toBe(false);
  });

  it('SIGQUIT stops the daemon as SIGTERM does (it ended it with no line before, pid file and admin.sock left)', async () => {
    const daemon = await started();
    const from = daemon.log().length;
    const result = await daemon.stop('SIGQUIT');
    expect(result).toEqual({ status: 0, signal: null });
    expectShutdownLines(daemon.bodies().slice(from));
    expect(existsSync(join(daemon.home, 'ntls.pid'))).toBe(false);
  });

  it('SIGUSR1 opens no debugger; SIGUSR1, SIGUSR2 and SIGALRM are ignored: the daemon serves on', async () => {
    // SIGUSR1 opened Node's inspector on 127.0.0.1:9229, where any local user could run code as the daemon.
    const daemon = await started({}, { NTLS_WORKERS: '2' });
    const client = await makeClient('signalled');
    registerClient(daemon.home, client);
    const l = await linkWhenRegistered(daemon, client);
    const workers = (JSON.parse((await runNtls(['info', 'show', '--json', '--home', daemon.home])).stdout) as { workers: Array<{ pid: number }> })
      .workers.map((w) => w.pid).filter((pid) => pid !== daemon.child.pid);
    expect(workers.length).toBeGreaterThan(0);
    const from = daemon.log().length;
    for (const signal of ['SIGUSR1', 'SIGUSR2', 'SIGALRM'] as const) {
      daemon.child.kill(signal);
      for (const pid of workers) process.kill(pid, signal);
    }
    await sleep(500);
    expect(daemon.child.exitCode).toBeNull();
    for (const pid of workers) expect(() => process.kill(pid, 0)).not.toThrow();
    expect(daemon.stderr).not.toMatch(/Debugger listening|inspector/i);
    expect((await l.request(keepaliveBody())).body.equals(keepaliveBody())).toBe(true);
    expect(daemon.bodies().slice(from)).toEqual([]);
    await l.close();
  });

  it('a second SIGTERM during the shutdown does not cut it short', async () => {
    const daemon = await started();
    const client = await makeClient('lingering');
    registerClient(daemon.home, client);
    const l = await linkWhenRegistered(daemon, client);
    const from = daemon.log().length;
    daemon.child.kill('SIGTERM');
    daemon.child.kill('SIGTERM');
    const result = await daemon.exited;
    expect(result).toEqual({ status: 0, signal: null });
    const bodies = daemon.bodies().slice(from);
    expectShutdownLines(bodies);
    expect(bodies.filter((b) => b === 'info : 0 : NTLS terminated')).toHaveLength(1);
    l.socket.destroy();
  });
});

interface StartingDaemon {
  home: string;
  child: ChildProcess;
  exited: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves when the daemon says it is online. */
  online: Promise<void>;
  output: { stdout: string; stderr: string };
}

/**
 * `ntls start` in a new home, sent `signal` `delayMs` after Node began running JavaScript (a
 * preload says when: Node's own bootstrap, before any JavaScript, is a window no program covers).
 */
function signalledWhileStarting(signal: NodeJS.Signals, delayMs: number): StartingDaemon {
  const home = makeHome({ datapath: { receiveTimeout: 0 } });
  homes.push(home);
  const marker = join(home, 'booted.cjs');
  writeFileSync(marker, 'process.stderr.write("booted\\n");\n');
  const child = spawn(process.execPath, ['--require', marker, ntlsBin, 'start', '--home', home, '--port', '0', '--quiet'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = { stdout: '', stderr: '' };
  const exited = new Promise<{ status: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (status, sig) => resolve({ status, signal: sig })));
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  void exited.then(() => clearTimeout(timer));
  child.stderr.on('data', (d) => {
    const first = !output.stderr.includes('booted');
    output.stderr += d;
    if (first && output.stderr.includes('booted')) setTimeout(() => child.kill(signal), delayMs);
  });
  const online = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d) => {
      output.stdout += d;
      if (output.stdout.includes('online on')) resolve();
    });
    void exited.then(() => reject(new Error(`ntls start exited before coming online\n${output.stderr}`)));
  });
  online.catch(() => undefined);
  return { home, child, exited, online, output };
}

function logBodies(home: string): string[] {
  const log = join(home, 'logs', 'lunalogs');
  return existsSync(log) ? readFileSync(log, 'utf8').split('\n').filter(Boolean).map((l) => l.slice(l.indexOf(']: ') + 3)) : [];
}

describe('a stop signal while `ntls start` is still loading or starting', () => {
  it('SIGTERM 50 to 800 ms after Node began: exit status 0, never the signal\'s default (143); the shutdown lines if "Starting up" was written, else a line on stderr and no log', async () => {
    for (const delay of [50, 100, 200, 400, 800]) {
      const { home, exited, output } = signalledWhileStarting('SIGTERM', delay);
      const { status, signal } = await exited;
      expect({ delay, status, signal }, output.stderr).toEqual({ delay, status: 0, signal: null });
      const bodies = logBodies(home);
      if (bodies.includes('info : 0 : Starting up NTLS........')) {
        expectShutdownLines(bodies);
        expect(bodies.at(-1), `${delay} ms`).toBe('info : 0 : NTLS terminated');
      } else {
        expect(bodies, `${delay} ms`).toEqual([]);
        expect(output.stderr).toContain('ntls: SIGTERM before the start-up began: the daemon was not started.');
      }
      expect(existsSync(join(home, 'ntls.pid')), `${delay} ms`).toBe(false);
      expect(existsSync(join(home, 'admin.sock')), `${delay} ms`).toBe(false);
    }
  });

  it('SIGINT at once: exit status 0, not 130', async () => {
    const { exited, output } = signalledWhileStarting('SIGINT', 50);
    expect(await exited, output.stderr).toEqual({ status: 0, signal: null });
  });

  it('SIGHUP at once (a terminal closed) is not the end: the daemon starts, then stops on SIGTERM', async () => {
    const { child, exited, online, output } = signalledWhileStarting('SIGHUP', 50);
    await online;
    child.kill('SIGTERM');
    expect(await exited, output.stderr).toEqual({ status: 0, signal: null });
  });
});

function dumpsIn(home: string): string[] {
  return readdirSync(join(home, 'logs')).filter((f) => /^ntls_bt_\d{4}-\d{2}-\d{2}_\d{2}:\d{2}:\d{2}$/.test(f));
}

describe('fatal signals', () => {
  // SIGABRT is V8's fatal error (out of heap); SIGTRAP its immediate crash; SIGFPE a native arithmetic fault.
  for (const [signal, number] of [['SIGSEGV', 11], ['SIGILL', 4], ['SIGBUS', 7], ['SIGFPE', 8], ['SIGABRT', 6], ['SIGTRAP', 5]] as const) {
    it(`kill -${signal.slice(3)}: the dump file and "NTLS CRASH AND BURN! Stack dump saved to ..." (crit), then the signal ends the process`, async () => {
      const daemon = await started();
      daemon.child.kill(signal);
      const result = await daemon.exited;
      expect(result.signal).toBe(signal);
      const dumps = dumpsIn(daemon.home);
      expect(dumps).toHaveLength(1);
      const file = join(daemon.home, 'logs', dumps[0]!);
      const crash = daemon.log().find((l) => l.includes('CRASH AND BURN'));
      expect(crash).toMatch(new RegExp(`^\\d{4} [A-Z][a-z]{2} \\d{2} \\d{2}:\\d{2}:\\d{2} \\S+  local5 crit  NTLS \\[${daemon.child.pid}\\]: info : 0 : NTLS CRASH AND BURN! Stack dump saved to ${file}$`));
      const dump = readFileSync(file, 'utf8');
      expect(dump).toContain(`signal ${number} (${signal})`);
      expect(dump).toContain(`sent by pid ${process.pid}`);
      expect(dump).toContain(`pid ${daemon.child.pid}, node ${process.version}`);
      expect(dump).toContain('native stack:');
    });
  }

  it('a real invalid memory access in native code (NTLS_FAULT_INJECTION=native-fault-on-connection) is dumped the same way', async () => {
    const daemon = await started({}, { NTLS_FAULT_INJECTION: 'native-fault-on-connection', NTLS_WORKERS: '0' });
    const client = await makeClient('trigger');
    registerClient(daemon.home, client);
    await link(daemon, client).catch(() => undefined);
    const result = await daemon.exited;
    expect(result.signal).toBe('SIGSEGV');
    const dumps = dumpsIn(daemon.home);
    expect(dumps).toHaveLength(1);
    const dump = readFileSync(join(daemon.home, 'logs', dumps[0]!), 'utf8');
    expect(dump).toContain('signal 11 (SIGSEGV)');
    expect(dump).toContain('fault address 0x0');
    expect(dump).toMatch(/crash_handler\.node/);
    expect(daemon.log().some((l) => l.includes('info : 0 : NTLS CRASH AND BURN! Stack dump saved to '))).toBe(true);
  });

  it('the same fault on a datapath worker: its dump and line, and the daemon serves on with a new worker in its place', async () => {
    const daemon = await started({}, { NTLS_FAULT_INJECTION: 'native-fault-on-connection', NTLS_WORKERS: '2' });
    const before = JSON.parse((await runNtls(['info', 'show', '--json', '--home', daemon.home])).stdout) as { workers: Array<{ pid: number }> };
    const client = await makeClient('trigger');
    registerClient(daemon.home, client);
    // The first link stays in the main process (it holds as many as the worker); the next goes to
    // the worker, whose hook faults.
    const held = await linkWhenRegistered(daemon, client);
    await link(daemon, client).catch(() => undefined);
    for (let i = 0; i < 100 && dumpsIn(daemon.home).length === 0; i++) await sleep(50);
    const dumps = dumpsIn(daemon.home);
    expect(dumps).toHaveLength(1);
    const dump = readFileSync(join(daemon.home, 'logs', dumps[0]!), 'utf8');
    expect(dump).toContain('signal 11 (SIGSEGV)');
    const crashed = before.workers.map((w) => w.pid).find((pid) => dump.includes(`pid ${pid},`));
    expect(crashed).toBeDefined();
    for (let i = 0; i < 100 && !daemon.log().some((l) => l.includes('NTLS CRASH AND BURN! Stack dump saved to ')); i++) await sleep(50);
    expect(daemon.log().find((l) => l.includes('NTLS CRASH AND BURN! Stack dump saved to '))).toContain(`NTLS [${crashed}]: info : 0 : NTLS CRASH AND BURN! Stack dump saved to `);
    let after: Array<{ pid: number }> = [];
    for (let i = 0; i < 100; i++) {
      after = (JSON.parse((await runNtls(['info', 'show', '--json', '--home', daemon.home])).stdout) as { workers: Array<{ pid: number }> }).workers;
      if (after.length === 2 && !after.some((w) => w.pid === crashed)) break;
      await sleep(100);
    }
    expect(after).toHaveLength(2);
    expect(after.map((w) => w.pid)).not.toContain(crashed);
    expect(crashed).not.toBe(daemon.child.pid);
    expect(daemon.child.exitCode).toBeNull();
    // The link the main process holds was never touched.
    await held.request(keepaliveBody());
    await held.close();
  });
});
