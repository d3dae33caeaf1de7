// `ntls logs check` on a synthetic log: unexpected kinds, pairing of connections with reuse of
// peer addresses, receive-timer expiries per client, crashes and dump files, unknown lines.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CheckSummary } from '../../../src/admin/logs/check.js';
import { removeHome, runNtls } from '../../support/daemon.js';
import { cleanLog, homeWithLog, LogWriter } from './fixtures.js';

const P1 = '10.0.0.5/40000';
const P2 = '10.0.0.6/40001';
const P3 = '10.0.0.7/40002';
const P4 = '10.0.0.8/40003';
const DUMP = 'ntls_bt_2026-11-26_09:00:30';

function syntheticLog(): LogWriter {
  const log = new LogWriter()
    .add('startingUp')                                                  // 1
    .add('connectionAccepted', { peer: P1 })                            // 2
    .add('clientAuthenticated', { client: 'web1', peer: P1 })           // 3
    .add('clientDisconnected', { client: 'web1', peer: P1 })            // 4  P1 paired
    .add('connectionAccepted', { peer: P2 })                            // 5  P2: never disconnected
    .add('clientAuthenticated', { client: 'db1', peer: P2 })            // 6
    .add('connectionAccepted', { peer: P1 })                            // 7  P1 reused
    .add('receiveTimerTerminate', { client: 'web1', peer: P1 })         // 8
    .add('clientDisconnected', { client: 'web1', peer: P1 })            // 9  P1 paired again
    .add('connectionInstanceDisconnected', { client: 'web1', peer: P1 }) // 10 second disconnect line of the same connection
    .add('connectionAccepted', { peer: P3 })                            // 11 lost: accepted again below
    .add('connectionAccepted', { peer: P3 })                            // 12
    .add('clientDisconnected', { client: 'app', peer: P3 })             // 13
    .add('nonLunaClient', { peer: '10.0.0.99/1' })                      // 14
    .add('nonLunaClient', { peer: '10.0.0.99/2' })                      // 15
    .add('receiveTimerExpired', { client: 'web1', peer: '10.0.0.5/40100' }) // 16
    .add('receiveTimerExpired', { client: 'db1', peer: P2 })            // 17
    .add('clientDisconnected', { client: 'old', peer: '10.0.0.1/1' })   // 18 accepted before this log began
    .raw('2026 Nov 26 09:00:18 hsm1  local5 info  NTLS [100]: info : 0 : Client request header malformed : 10.0.0.5/1 : RC_DATA_INVALID') // 19 mismatch
    .raw('2026 Nov 26 09:00:19 hsm1  local5 info  NTLS [100]: info : 0 : Something the guide never said') // 20 unknown
    .raw('    at Object.<anonymous> (/x.js:1:1)')                        // 21 unknown
    .add('crashStackDumped', { file: `/var/log/${DUMP}` });             // 22 P2 lost: crashed
  log.pid = 200;
  log
    .add('startingUp')                                                  // 23
    .add('connectionAccepted', { peer: P4 })                            // 24 open at the end
    .add('clientAuthenticated', { client: 'web2', peer: P4 });          // 25
  return log;
}

let fixture: ReturnType<typeof homeWithLog>;
let summary: CheckSummary;
let status: number | null;

beforeAll(async () => {
  fixture = homeWithLog(syntheticLog().text());
  writeFileSync(join(fixture.logDirectory, DUMP), 'stack\n');
  writeFileSync(join(fixture.logDirectory, 'ntls_bt_2026-11-20_01:02:03'), 'older stack\n');
  const result = await runNtls(['logs', 'check', '--json', '--home', fixture.home]);
  status = result.status;
  summary = JSON.parse(result.stdout) as CheckSummary;
});

afterAll(() => removeHome(fixture.home));

describe('ntls logs check on a synthetic log', () => {
  it('exits 1: something unexpected was found', () => {
    expect(status).toBe(1);
    expect(summary.exitStatus).toBe(1);
    expect(summary.findings.length).toBeGreaterThan(0);
  });

  it('counts lines, unexpected messages by kind with first and last time', () => {
    expect(summary.lines).toBe(25);
    expect(summary.file).toBe(fixture.logFile);
    const nonLuna = summary.unexpected.find((k) => k.id === 'nonLunaClient')!;
    expect(nonLuna).toMatchObject({
      count: 2, heading: 'Non-Luna Client Connect Attempt', section: 'datapath-unexpected',
      first: { line: 14, timestamp: '2026 Nov 26 09:00:13' }, last: { line: 15, timestamp: '2026 Nov 26 09:00:14' },
    });
    expect(summary.unexpected.map((k) => k.id)).toEqual(['nonLunaClient', 'requestHeaderMalformed', 'crashStackDumped']);
  });

  it('reports the text with the wrong level and code as a mismatch', () => {
    expect(summary.mismatches).toEqual([expect.objectContaining({
      id: 'requestHeaderMalformed', count: 1,
      expected: { severity: 'crit', label: 'critical', code: '0xc0000102' }, found: { severity: 'info', label: 'info', code: '0' },
    })]);
  });

  it('pairs accepted connections with disconnects in order, peers reused over time', () => {
    const c = summary.connections;
    expect(c.accepted).toBe(6);
    expect(c.paired).toBe(3);
    expect(c.withoutDisconnect.map((o) => [o.peer, o.client, o.accepted.line, o.state, o.reason, o.closedBy?.line ?? null])).toEqual([
      [P2, 'db1', 5, 'lost', 'service crashed', 22],
      [P3, null, 11, 'lost', 'peer accepted again', 12],
      [P4, 'web2', 24, 'open', 'log ended', null],
    ]);
    expect(c.disconnectWithoutAccept).toEqual([{ peer: '10.0.0.1/1', at: { line: 18, timestamp: '2026 Nov 26 09:00:17' } }]);
  });

  it('counts receive-timer expiries per client', () => {
    expect(summary.receiveTimerExpiries).toEqual([
      { client: 'web1', count: 2, peers: [P1, '10.0.0.5/40100'], first: { line: 8, timestamp: '2026 Nov 26 09:00:07' }, last: { line: 16, timestamp: '2026 Nov 26 09:00:15' } },
      { client: 'db1', count: 1, peers: [P2], first: { line: 17, timestamp: '2026 Nov 26 09:00:16' }, last: { line: 17, timestamp: '2026 Nov 26 09:00:16' } },
    ]);
  });

  it('finds the crash line and the stack dump files of the log folder', () => {
    expect(summary.crashes.lines).toEqual([{ line: 22, timestamp: '2026 Nov 26 09:00:18', dumpFile: `/var/log/${DUMP}`, dumpFound: true }]);
    expect(summary.crashes.dumpFiles.map((d) => [d.file, d.named])).toEqual([
      [join(fixture.logDirectory, 'ntls_bt_2026-11-20_01:02:03'), false],
      [join(fixture.logDirectory, DUMP), true],
    ]);
  });

  it('lists unknown lines', () => {
    expect(summary.unknown.count).toBe(2);
    expect(summary.unknown.lines.map((u) => u.line)).toEqual([20, 21]);
  });

  it('prints the same for people, without colour when not on a terminal', async () => {
    const result = await runNtls(['logs', 'check', '--home', fixture.home]);
    expect(result.status).toBe(1);
    expect(result.stdout).not.toContain('\u001b[');
    for (const word of ['nonLunaClient', P2, P4, 'web1', DUMP]) expect(result.stdout).toContain(word);
  });
});

describe('ntls logs check exit statuses', () => {
  it('0 when nothing is unexpected', async () => {
    const clean = homeWithLog(cleanLog().text());
    try {
      const result = await runNtls(['logs', 'check', '--json', clean.logFile]);
      expect(result.status).toBe(0);
      const s = JSON.parse(result.stdout) as CheckSummary;
      expect(s).toMatchObject({ exitStatus: 0, findings: [], unexpected: [], connections: { accepted: 1, paired: 1, withoutDisconnect: [] } });
    } finally {
      removeHome(clean.home);
    }
  });

  it('a run that ended without its shutdown lines and without a crash line (kill -9) is a finding; one that terminated is not', async () => {
    const killed = homeWithLog(new LogWriter().add('startingUp').add('connectionAccepted', { peer: P1 }).add('startingUp').text());
    const stopped = homeWithLog(cleanLog().add('terminated').add('startingUp').add('applicationInitFailed').add('startingUp').text());
    try {
      const result = await runNtls(['logs', 'check', '--json', killed.logFile]);
      expect(result.status).toBe(1);
      const s = JSON.parse(result.stdout) as CheckSummary;
      expect(s.abruptEnds).toEqual([expect.objectContaining({ line: 1 })]);
      expect(s.findings).toContain('1 run ended without shutdown lines (killed?)');
      expect((await runNtls(['logs', 'check', killed.logFile])).stdout).toContain('ended without its shutdown lines and without a crash line');
      const clean = JSON.parse((await runNtls(['logs', 'check', '--json', stopped.logFile])).stdout) as CheckSummary;
      expect(clean.abruptEnds).toEqual([]);
    } finally {
      removeHome(killed.home);
      removeHome(stopped.home);
    }
  });

  it('0 with a connection still open at the end of the log (it may be live), and says so', async () => {
    const open = homeWithLog(cleanLog().add('startingUp').add('connectionAccepted', { peer: P4 }).text());
    try {
      const result = await runNtls(['logs', 'check', '--json', open.logFile]);
      const s = JSON.parse(result.stdout) as CheckSummary;
      expect(result.status).toBe(0);
      expect(s.connections.withoutDisconnect).toEqual([expect.objectContaining({ peer: P4, state: 'open' })]);
    } finally {
      removeHome(open.home);
    }
  });

  it('reads standard input with -', async () => {
    const { spawn } = await import('node:child_process');
    const { ntlsBin } = await import('../../support/daemon.js');
    const child = spawn(process.execPath, [ntlsBin, 'logs', 'check', '--json', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stdin.end(syntheticLog().text());
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code).toBe(1);
    const s = JSON.parse(stdout) as CheckSummary;
    expect(s.file).toBe('-');
    expect(s.crashes.dumpFiles).toEqual([]);
    expect(s.unexpected.map((k) => k.id)).toContain('nonLunaClient');
  });

  it('2 on a missing file, a folder, an unknown --ignore id: one line naming the problem', async () => {
    const missing = await runNtls(['logs', 'check', '/nonexistent/lunalogs']);
    expect(missing.status).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('/nonexistent/lunalogs');

    const folder = await runNtls(['logs', 'check', fixture.logDirectory]);
    expect(folder.status).toBe(2);
    expect(folder.stderr.trim().split('\n')).toHaveLength(1);
    expect(folder.stderr).toContain(fixture.logDirectory);

    const home = await runNtls(['logs', 'check', '--home', '/nonexistent-home']);
    expect(home.status).toBe(2);
    expect(home.stderr).toContain('/nonexistent-home/logs/lunalogs');

    const ignore = await runNtls(['logs', 'check', '--ignore', 'noSuchMessage', fixture.logFile]);
    expect(ignore.status).toBe(2);
    expect(ignore.stderr).toContain('noSuchMessage');
  });

  it('2 on a usage error', async () => {
    const result = await runNtls(['logs', 'check', '--no-such-option']);
    expect(result.status).toBe(2);
  });

  it('--rotated reads lunalogs.N ... lunalogs.1 then lunalogs as one log: a connection across rotation is paired', async () => {
    const older = new LogWriter().add('startingUp').add('connectionAccepted', { peer: P1 });
    const newer = new LogWriter().add('clientDisconnected', { client: 'web1', peer: P1 }).add('nonLunaClient', { peer: P2 });
    const f = homeWithLog(newer.text());
    writeFileSync(`${f.logFile}.1`, older.text());
    writeFileSync(`${f.logFile}.2`, new LogWriter().add('startingUp').text());
    try {
      const alone = JSON.parse((await runNtls(['logs', 'check', '--json', f.logFile])).stdout) as CheckSummary;
      expect(alone.files).toEqual([f.logFile]);
      expect(alone.connections.disconnectWithoutAccept.map((d) => d.peer)).toEqual([P1]);

      const result = await runNtls(['logs', 'check', '--json', '--rotated', '--home', f.home]);
      expect(result.status).toBe(1);
      const all = JSON.parse(result.stdout) as CheckSummary;
      expect(all.files).toEqual([`${f.logFile}.2`, `${f.logFile}.1`, f.logFile]);
      expect(all.lines).toBe(5);
      expect(all.connections).toMatchObject({ accepted: 1, paired: 1, withoutDisconnect: [], disconnectWithoutAccept: [] });
      expect(all.unexpected).toEqual([expect.objectContaining({ id: 'nonLunaClient', first: { line: 2, timestamp: expect.any(String), file: f.logFile } })]);

      const stdin = await runNtls(['logs', 'check', '--rotated', '-']);
      expect(stdin.status).toBe(2);
    } finally {
      removeHome(f.home);
    }
  });

  it('honours NTLS_HOME', async () => {
    const result = await runNtls(['logs', 'check', '--json'], { NTLS_HOME: fixture.home });
    expect(result.status).toBe(1);
    expect((JSON.parse(result.stdout) as CheckSummary).file).toBe(fixture.logFile);
  });
});

// Runs the examples of docs/logs.md.
