// A full disk (here a file-size limit, which cuts writes short as a full disk does) never leaves a
// cut line in lunalogs, nor a record in the audit log that its head does not count: once there is
// room again, lunalogs parses and the audit log checks. Before, the next line was glued to a cut
// one, and the audit log kept records the head missed (four records numbered 7, then
// NTLS_ERR_AUDIT_TAMPERED for good).
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileSink } from '../../src/log/file-sink.js';
import { AuditLog, verifyAudit } from '../../src/audit/audit-log.js';
import { repoRoot } from '../support/daemon.js';

const work = mkdtempSync(join(tmpdir(), 'ntls-full-disk-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const operator = { kind: 'admin' as const, uid: 0, user: 'op' };

/** Runs `script` (an ES module body) in a node whose files may not grow past 4 KiB. */
function underSizeLimit(script: string): { stdout: string; stderr: string; status: number | null } {
  const dist = (path: string) => JSON.stringify(join(repoRoot, 'dist/src', path));
  const body = `process.on('SIGXFSZ', () => {});
const { FileSink } = await import(${dist('log/file-sink.js')});
const { AuditLog, sayAuditFailure } = await import(${dist('audit/audit-log.js')});
const { Logger } = await import(${dist('log/logger.js')});
const { Catalogue } = await import(${dist('log/catalogue.js')});
${script}`;
  const result = spawnSync('bash', ['-c', 'ulimit -f 4; exec "$0" --input-type=module -e "$1"', process.execPath, body], { encoding: 'utf8', timeout: 20_000 });
  return { stdout: result.stdout, stderr: result.stderr, status: result.status };
}

describe('a full disk', () => {
  it('lunalogs: a line is written whole or not at all, and writing goes on once there is room', () => {
    const file = join(work, 'lunalogs');
    const run = underSizeLimit(`
const sink = new FileSink({ path: ${JSON.stringify(file)}, maxBytes: 1e9, keep: 2 });
let written = 0, refused = 0;
for (let i = 0; i < 100; i++) { try { sink.write('line ' + i + ' ' + 'x'.repeat(57)); written++; } catch (e) { refused++; } }
console.log(JSON.stringify({ written, refused }));`);
    expect(run.status, run.stderr).toBe(0);
    const counts = JSON.parse(run.stdout) as { written: number; refused: number };
    expect(counts.refused).toBeGreaterThan(0);
    const sink = new FileSink({ path: file, maxBytes: 1e9, keep: 2 });
    sink.write('after the disk had room again');
    sink.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines).toHaveLength(counts.written + 1);
    for (const line of lines.slice(0, -1)) expect(line).toMatch(/^line \d+ x{57}$/);
  });

  it('the daemon says on stderr once that lunalogs cannot be written, and how many lines it lost once it can', () => {
    const file = join(work, 'lunalogs-said');
    const run = underSizeLimit(`
const { truncateSync } = await import('node:fs');
const logger = new Logger({ file: ${JSON.stringify(file)} });
for (let i = 0; i < 80; i++) logger.log(Catalogue.incomingConnection, { peer: '127.0.0.1/' + i });
truncateSync(${JSON.stringify(file)}, 0);
logger.log(Catalogue.incomingConnection, { peer: '127.0.0.1/again' });
await logger.close();`);
    expect(run.status, run.stderr).toBe(0);
    const said = run.stderr.trim().split('\n');
    expect(said).toHaveLength(2);
    expect(said[0]).toBe(`ntls: cannot write ${file}: ENOSPC; lines are not being logged to the file`);
    const lost = /^ntls: writing (\S+) again; (\d+) line\(s\) could not be written to it$/.exec(said[1]!);
    expect(lost?.[1]).toBe(file);
    const kept = readFileSync(file, 'utf8').trim().split('\n');
    expect(kept).toHaveLength(1);
    expect(kept[0]).toContain('127.0.0.1/again');
    expect(Number(lost?.[2])).toBeGreaterThan(0);
  });

  it('the daemon says an audit record it could not write on stderr, once until the problem changes', () => {
    const home = join(work, 'home-said');
    const run = underSizeLimit(`
const audit = new AuditLog(${JSON.stringify(home)});
for (let i = 0; i < 40; i++) {
  try { audit.record({ who: { kind: 'admin', uid: 0, user: 'op' }, action: 'client.register', target: { pad: 'p'.repeat(100) }, result: 'ok' }); }
  catch (e) { sayAuditFailure(e); }
}`);
    expect(run.status, run.stderr).toBe(0);
    const said = run.stderr.trim().split('\n');
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(/^ntls: cannot write \S+audit\.log \(ENOSPC\): the record of client\.register is not kept$/);
  });

  it('the audit log: a record not written leaves the log checking, and the next record follows the last kept', () => {
    const home = join(work, 'home');
    const run = underSizeLimit(`
const audit = new AuditLog(${JSON.stringify(home)});
let kept = 0; const codes = new Set();
for (let i = 0; i < 40; i++) {
  try { audit.record({ who: { kind: 'admin', uid: 0, user: 'op' }, action: 'client.register', target: { pad: 'p'.repeat(100) }, result: 'ok' }); kept++; }
  catch (e) { codes.add(e.code); }
}
console.log(JSON.stringify({ kept, codes: [...codes] }));`);
    expect(run.status, run.stderr).toBe(0);
    const outcome = JSON.parse(run.stdout) as { kept: number; codes: string[] };
    expect(outcome.codes).toEqual(['NTLS_ERR_AUDIT_WRITE']);
    expect(verifyAudit(home)).toEqual({ ok: true, records: outcome.kept });
    const record = new AuditLog(home).record({ who: operator, action: 'partition.create', result: 'ok' });
    expect(record.seq).toBe(outcome.kept + 1);
    expect(verifyAudit(home)).toEqual({ ok: true, records: outcome.kept + 1 });
  });
});
