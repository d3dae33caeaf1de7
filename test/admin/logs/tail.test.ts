// `ntls logs tail`: the last lines through the filters, and -f following a file that grows and
// is rotated. Every wait is bounded.
import { spawn } from 'node:child_process';
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LineFilter } from '../../../src/admin/logs/filter.js';
import { follow } from '../../../src/admin/logs/tail.js';
import type { ExplainedLine } from '../../../src/admin/logs/explain.js';
import { ntlsBin, removeHome, runNtls, sleep } from '../../support/daemon.js';
import { homeWithLog, LogWriter } from './fixtures.js';

const A = '10.0.0.5/40000';
const B = '10.0.0.6/40001';

function sampleLog(): LogWriter {
  return new LogWriter()
    .add('startingUp')                                          // 1
    .add('incomingConnection', { peer: A })                     // 2
    .add('connectionAccepted', { peer: A })                     // 3
    .add('clientAuthenticated', { client: 'web1', peer: A })    // 4
    .add('incomingConnection', { peer: B })                     // 5
    .add('connectionAccepted', { peer: B })                     // 6
    .add('clientAuthenticated', { client: 'db1', peer: B })     // 7
    .add('requestHeaderMalformed', { peer: B })                 // 8  crit 0xc0000102
    .add('keepaliveTimerCreateFailed', { peer: A })             // 9  warn 0xc0000002
    .add('clientDisconnected', { client: 'web1', peer: A })     // 10
    .add('clientDisconnected', { client: 'db1', peer: B })      // 11
    .add('incomingConnection', { peer: A })                     // 12 A reused by another client
    .add('clientAuthenticated', { client: 'db1', peer: A })     // 13
    .add('unsupportedCommand', { command: '0x00000041' })       // 14 bare
    .add('clientDisconnected', { client: 'db1', peer: A });     // 15
}

let fixture: ReturnType<typeof homeWithLog>;
const lines = sampleLog().lines;

beforeAll(() => {
  fixture = homeWithLog(sampleLog().text());
});

afterAll(() => removeHome(fixture.home));

const out = (stdout: string) => stdout.split('\n').filter(Boolean);

describe('ntls logs tail', () => {
  it('shows the last 10 lines of the home\'s log by default, as written', async () => {
    const result = await runNtls(['logs', 'tail', '--home', fixture.home]);
    expect(result.status).toBe(0);
    expect(out(result.stdout)).toEqual(lines.slice(-10));
  });

  it('-n N', async () => {
    expect(out((await runNtls(['logs', 'tail', '-n', '3', fixture.logFile])).stdout)).toEqual(lines.slice(-3));
    expect(out((await runNtls(['logs', 'tail', '-n', '0', fixture.logFile])).stdout)).toEqual([]);
  });

  it('--level: that level and more severe', async () => {
    const warn = out((await runNtls(['logs', 'tail', '--level', 'warn', fixture.logFile])).stdout);
    expect(warn).toEqual([lines[7], lines[8]]);
    const crit = out((await runNtls(['logs', 'tail', '--level', 'critical', fixture.logFile])).stdout);
    expect(crit).toEqual([lines[7]]);
  });

  it('--code', async () => {
    const code = out((await runNtls(['logs', 'tail', '-n', '50', '--code', '0xC0000102', fixture.logFile])).stdout);
    expect(code).toEqual([lines[7]]);
    const zero = out((await runNtls(['logs', 'tail', '-n', '50', '--code', '0', fixture.logFile])).stdout);
    expect(zero).toContain(lines[0]);
    expect(zero).not.toContain(lines[2]);
  });

  it('--client: lines of that client\'s connections, including those before it was named, with peer reuse', async () => {
    const db1 = out((await runNtls(['logs', 'tail', '-n', '50', '--client', 'db1', fixture.logFile])).stdout);
    expect(db1).toEqual([4, 5, 6, 7, 10, 11, 12, 14].map((i) => lines[i]));
    const web1 = out((await runNtls(['logs', 'tail', '-n', '50', '--client', 'web1', fixture.logFile])).stdout);
    expect(web1).toEqual([1, 2, 3, 8, 9].map((i) => lines[i]));
  });

  it('--json: one explain record per line', async () => {
    const result = await runNtls(['logs', 'tail', '-n', '2', '--json', fixture.logFile]);
    const records = out(result.stdout).map((l) => JSON.parse(l) as ExplainedLine);
    expect(records.map((r) => [r.line, r.id, r.status])).toEqual([[14, 'unsupportedCommand', 'recognised'], [15, 'clientDisconnected', 'recognised']]);
    expect(records[1]!.params).toEqual({ client: 'db1', peer: A });
  });

  it('bad input: exit 2 and one line naming the problem', async () => {
    for (const args of [
      ['--level', 'loud'], ['--code', 'banana'], ['-n', '-3'], ['--for', '2'],
    ]) {
      const result = await runNtls(['logs', 'tail', ...args, fixture.logFile]);
      expect(result.status, args.join(' ')).toBe(2);
      expect(result.stderr.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(result.stderr, args.join(' ')).toContain(args[0]!);
    }
    const missing = await runNtls(['logs', 'tail', '/nonexistent/lunalogs']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('/nonexistent/lunalogs');
    const folder = await runNtls(['logs', 'tail', fixture.logDirectory]);
    expect(folder.status).toBe(2);
  });
});

/** Collects a child's stdout lines; `waitFor` resolves when a predicate holds (bounded). */
function watch(args: string[]) {
  const child = spawn(process.execPath, [ntlsBin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child, exited,
    lines: () => out(stdout),
    stderr: () => stderr,
    async waitFor(predicate: (lines: string[]) => boolean, timeoutMs = 8000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (predicate(out(stdout))) return;
        await sleep(50);
      }
      throw new Error(`tail -f output did not arrive within ${timeoutMs} ms:\n${stdout}\n${stderr}`);
    },
  };
}

describe('ntls logs tail -f', () => {
  it('follows a file that grows and is rotated, filtered, and stops on SIGINT with status 0', async () => {
    const f = homeWithLog(sampleLog().text());
    try {
      const tail = watch(['logs', 'tail', '-f', '-n', '1', '--level', 'info', '--for', '30', '--home', f.home]);
      await tail.waitFor((l) => l.length === 1);
      expect(tail.lines()).toEqual([lines.at(-1)]);

      const more = new LogWriter();
      more.add('terminated').add('enginePreloaded').add('acceptFailed');
      appendFileSync(f.logFile, more.lines[0] + '\n');
      await tail.waitFor((l) => l.length === 2);

      // A partial line is held until its end is written.
      appendFileSync(f.logFile, more.lines[1]!.slice(0, 20));
      await sleep(500);
      expect(tail.lines()).toHaveLength(2);
      appendFileSync(f.logFile, more.lines[1]!.slice(20) + '\n');
      await tail.waitFor((l) => l.length === 3);

      // Rotation: the rest of the old file, then the new file from its start.
      appendFileSync(f.logFile, more.lines[2] + '\n');
      renameSync(f.logFile, f.logFile + '.1');
      const rotated = new LogWriter().add('startingUp').add('onlineAndOperational');
      writeFileSync(f.logFile, rotated.text());
      await tail.waitFor((l) => l.length === 6);
      expect(tail.lines()).toEqual([lines.at(-1), ...more.lines, ...rotated.lines]);

      tail.child.kill('SIGINT');
      const code = await Promise.race([tail.exited, sleep(5000).then(() => 'timeout')]);
      expect(code).toBe(0);
    } finally {
      removeHome(f.home);
    }
  });

  it('stops by itself after --for seconds', async () => {
    const started = Date.now();
    const tail = watch(['logs', 'tail', '-f', '--for', '1', fixture.logFile]);
    const code = await Promise.race([tail.exited, sleep(8000).then(() => 'timeout')]);
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(7000);
    expect(tail.lines()).toEqual(lines.slice(-10));
  });

  it('follow() in process: truncation starts anew, the filter applies, the signal ends it', async () => {
    const f = homeWithLog('');
    try {
      const controller = new AbortController();
      const seen: ExplainedLine[] = [];
      let rotations = 0;
      const running = follow(f.logFile, {
        filter: new LineFilter({ level: 'err' }), startLine: 0, startOffset: 0, signal: controller.signal,
        onLine: (l) => { seen.push(l); }, onRotate: () => rotations++, pollMs: 20,
      });
      const w = new LogWriter().add('startingUp').add('acceptFailed').add('cacheMonitorInitFailed');
      appendFileSync(f.logFile, w.text());
      const deadline = Date.now() + 5000;
      while (seen.length < 2 && Date.now() < deadline) await sleep(20);
      writeFileSync(f.logFile, new LogWriter().add('portNotListening').text());
      while (seen.length < 3 && Date.now() < deadline) await sleep(20);
      controller.abort();
      await running;
      expect(seen.map((l) => [l.id, l.line])).toEqual([['acceptFailed', 2], ['cacheMonitorInitFailed', 3], ['portNotListening', 1]]);
      expect(rotations).toBe(1);
    } finally {
      removeHome(f.home);
    }
  });
});

// Runs the examples of docs/logs.md.
