// `ntls logs explain [FILE|-]` as a user runs it: output shapes, standard input, the home's log, bad input.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExplainedLine } from '../../../src/admin/logs/explain.js';
import { paintFor } from '../../../src/admin/logs/render.js';
import { ntlsBin, removeHome, runNtls } from '../../support/daemon.js';
import { homeWithLog, LogWriter } from './fixtures.js';

const log = new LogWriter()
  .add('startingUp')
  .add('nonLunaClient', { peer: '10.0.0.1/5' })
  .raw('2026 Nov 26 09:00:02 hsm1  local5 info  NTLS [100]: info : 0 : Terminating.')
  .raw('2026 Nov 26 09:00:03 hsm1  local5 crit  NTLS [100]: critical : 0 : Terminating.')
  .raw('')
  .raw('not a log line')
  .add('unexpectedReadResponse', { state: 'HEADER STATE' });

let fixture: ReturnType<typeof homeWithLog>;
beforeAll(() => (fixture = homeWithLog(log.text())));
afterAll(() => removeHome(fixture.home));

describe('ntls logs explain', () => {
  it('--json: one object per non-empty line with the record\'s fields', async () => {
    const result = await runNtls(['logs', 'explain', '--json', fixture.logFile]);
    expect(result.status).toBe(0);
    const records = result.stdout.trim().split('\n').map((l) => JSON.parse(l) as ExplainedLine);
    expect(records.map((r) => [r.line, r.status, r.id, r.kind])).toEqual([
      [1, 'recognised', 'startingUp', 'expected'],
      [2, 'recognised', 'nonLunaClient', 'unexpected'],
      [3, 'recognised', 'terminating', 'expected'],
      [4, 'mismatch', 'terminatingCritical', 'unexpected'],
      [6, 'unknown', null, null],
      [7, 'recognised', 'unexpectedReadResponse', 'debug'],
    ]);
    for (const r of records) {
      expect(Object.keys(r).sort()).toEqual([
        'alsoUnder', 'heading', 'id', 'kind', 'line', 'meaning', 'mismatch', 'note', 'params', 'parsed', 'raw', 'reason',
        'reference', 'rootCause', 'section', 'sectionTitle', 'status',
      ]);
    }
    expect(records[1]).toMatchObject({
      heading: 'Non-Luna Client Connect Attempt', section: 'datapath-unexpected', params: { peer: '10.0.0.1/5' },
      reference: { severity: 'info', label: 'info', code: '0xc0000004', rc: 'RC_UNEXPECTED' },
      parsed: { host: 'hsm1', pid: 100, severity: 'info', label: 'info', code: 0xc0000004 },
    });
    expect(records[3]!.mismatch).toEqual({
      expected: { severity: 'crit', label: 'critical', code: '0xc0000102' }, found: { severity: 'crit', label: 'critical', code: '0' },
    });
  });

  it('for people: every line, its id and kind, no colour off a terminal', async () => {
    const result = await runNtls(['logs', 'explain', fixture.logFile]);
    expect(result.status).toBe(0);
    expect(result.stdout).not.toContain('\u001b[');
    for (const word of ['startingUp', 'nonLunaClient', 'unexpected', 'unknown', 'not a log line', 'Non-Luna Client Connect Attempt']) {
      expect(result.stdout).toContain(word);
    }
    const brief = await runNtls(['logs', 'explain', '--brief', fixture.logFile]);
    expect(brief.stdout.trim().split('\n')).toHaveLength(6);
  });

  it('reads standard input with -', async () => {
    const child = spawn(process.execPath, [ntlsBin, 'logs', 'explain', '--json', '-'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stdin.end(log.lines.slice(0, 2).join('\n') + '\n');
    expect(await new Promise((r) => child.on('exit', r))).toBe(0);
    expect(stdout.trim().split('\n').map((l) => (JSON.parse(l) as ExplainedLine).id)).toEqual(['startingUp', 'nonLunaClient']);
  });

  it('bad input: exit 2, one line naming the file', async () => {
    const missing = await runNtls(['logs', 'explain', '/nonexistent/lunalogs']);
    expect(missing.status).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
    expect(missing.stderr).toContain('/nonexistent/lunalogs');
    const folder = await runNtls(['logs', 'explain', fixture.logDirectory]);
    expect(folder.status).toBe(2);
    expect(folder.stderr.trim().split('\n')).toHaveLength(1);
    expect(folder.stderr).toContain(fixture.logDirectory);
    const none = await runNtls(['logs', 'explain', '--home', fixture.logDirectory]);
    expect(none.status).toBe(2);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('without a file, the home\'s log (--home, else $NTLS_HOME), as check and tail', async () => {
    const byFlag = await runNtls(['logs', 'explain', '--brief', '--home', fixture.home]);
    expect(byFlag.status).toBe(0);
    expect(byFlag.stdout.trim().split('\n')).toHaveLength(6);
    const byEnv = await runNtls(['logs', 'explain', '--brief'], { NTLS_HOME: fixture.home });
    expect(byEnv.stdout).toBe(byFlag.stdout);
  });
});

describe('colour', () => {
  it('only on a terminal, and not with NO_COLOR', () => {
    const tty = { isTTY: true } as NodeJS.WriteStream;
    const pipe = { isTTY: false } as NodeJS.WriteStream;
    const saved = process.env.NO_COLOR;
    delete process.env.NO_COLOR;
    try {
      expect(paintFor(tty).red('x')).toContain('\u001b[31m');
      expect(paintFor(pipe).red('x')).toBe('x');
      process.env.NO_COLOR = '1';
      expect(paintFor(tty).red('x')).toBe('x');
    } finally {
      if (saved === undefined) delete process.env.NO_COLOR;
      else process.env.NO_COLOR = saved;
    }
  });
});

// Runs the examples of docs/logs.md.
