// The audit trail: who did what, when, with what result, in `<home>/audit/audit.log`, one JSON
// object a line. Each record carries the MAC of the one before it (`prev`) and its own (`mac`):
// HMAC-SHA256, under a key kept in the home (`audit/audit.key`, mode 0600), over `prev` and the
// record's other fields; `audit/audit.head` holds the last record's seq and MAC, so that a record
// removed from the end is found too. docs/operations.md, "Audit trail".
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { NtlsError } from '../errors/ntls-error.js';
import { appendWhole } from '../log/append-whole.js';

export const AUDIT_FOLDER = 'audit';
const GENESIS = '0'.repeat(64);

/** Who did it: an operator (the admin CLI's user) or a client (by its registered name). */
export type Actor = { kind: 'admin'; uid: number | null; user: string } | { kind: 'client'; name: string; peer?: string };

export interface AuditEvent {
  who: Actor;
  /** What, e.g. client.register, partition.delete, config.set, login.failed. */
  action: string;
  /** What it was done to (names, serials, the setting and its value); never a PIN or a key. */
  target?: Record<string, unknown>;
  result: 'ok' | 'refused' | 'failed';
  /** The error code when not ok. */
  code?: string;
}

export interface AuditRecord extends AuditEvent {
  seq: number;
  time: string;
  prev: string;
  mac: string;
}

export class AuditError extends NtlsError {}

/** This process's operator, as the admin CLI sends it. */
export function currentOperator(): Actor {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // No passwd entry for the uid (a container): the uid says who.
  }
  return { kind: 'admin', uid: typeof process.getuid === 'function' ? process.getuid() : null, user };
}

function paths(home: string) {
  const folder = join(home, AUDIT_FOLDER);
  return { folder, log: join(folder, 'audit.log'), key: join(folder, 'audit.key'), head: join(folder, 'audit.head') };
}

function macOf(key: Buffer, record: Omit<AuditRecord, 'mac'>): string {
  const { seq, time, who, action, target, result, code, prev } = record;
  return createHmac('sha256', key).update(prev).update(JSON.stringify({ seq, time, who, action, target, result, code })).digest('hex');
}

function readKey(file: string): Buffer {
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'hex');
  if (key.length !== 32) throw new AuditError('NTLS_ERR_AUDIT_KEY', `${file} is not an audit key (64 hex digits)`, { hint: 'restore it from the home\'s backup' });
  return key;
}

function truncateQuietly(fd: number, size: number): void {
  try {
    ftruncateSync(fd, size);
  } catch {
    // The first error is the one reported.
  }
}

let lastFailure: string | null = null;

/**
 * The daemon's way with a record it could not write (disk full): said on stderr, once until the
 * problem changes, and the request or call it recorded goes on (its answer stays what it is).
 */
export function sayAuditFailure(error: unknown): void {
  const problem = error instanceof Error ? error.message : String(error);
  if (problem.replace(/record of \S+/, '') === lastFailure) return;
  lastFailure = problem.replace(/record of \S+/, '');
  process.stderr.write(`ntls: ${problem}\n`);
}

/** Appends records to a home's audit log; one writer at a time (the daemon, or the CLI while none runs). */
export class AuditLog {
  private readonly files: ReturnType<typeof paths>;
  private readonly key: Buffer;
  private seq = 0;
  private last = GENESIS;

  constructor(home: string) {
    this.files = paths(home);
    mkdirSync(this.files.folder, { recursive: true, mode: 0o700 });
    if (!existsSync(this.files.key)) writeFileSync(this.files.key, randomBytes(32).toString('hex') + '\n', { mode: 0o600, flag: 'wx' });
    chmodSync(this.files.key, 0o600);
    this.key = readKey(this.files.key);
    if (existsSync(this.files.head)) {
      const head = JSON.parse(readFileSync(this.files.head, 'utf8')) as { seq: number; mac: string };
      this.seq = head.seq;
      this.last = head.mac;
    }
  }

  record(event: AuditEvent): AuditRecord {
    const body = {
      seq: this.seq + 1, time: new Date().toISOString(), who: event.who, action: event.action,
      ...(event.target === undefined ? {} : { target: event.target }), result: event.result,
      ...(event.code === undefined ? {} : { code: event.code }), prev: this.last,
    };
    const record: AuditRecord = { ...body, mac: macOf(this.key, body) };
    // The record and the head that counts it are both written, or neither: a full disk that took
    // the record but not the head left the next record with the same seq, and a log that no
    // longer checked (a false alarm of tampering).
    let fd: number | null = null;
    let size: number | null = null;
    try {
      fd = openSync(this.files.log, 'a', 0o600);
      size = fstatSync(fd).size;
      appendWhole(fd, Buffer.from(JSON.stringify(record) + '\n'));
      writeFileSync(this.files.head + '.new', JSON.stringify({ seq: record.seq, mac: record.mac }) + '\n', { mode: 0o600 });
      renameSync(this.files.head + '.new', this.files.head);
    } catch (error) {
      if (fd !== null && size !== null) truncateQuietly(fd, size);
      rmSync(this.files.head + '.new', { force: true });
      const problem = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      throw new AuditError('NTLS_ERR_AUDIT_WRITE', `cannot write ${this.files.log} (${problem}): the record of ${event.action} is not kept`, { hint: 'free space on its disk; the log still checks' });
    } finally {
      if (fd !== null) closeSync(fd);
    }
    this.seq = record.seq;
    this.last = record.mac;
    lastFailure = null;
    return record;
  }
}

export interface Verification {
  ok: boolean;
  records: number;
  /** The first line that does not check (1-based), and why. */
  firstBad?: { line: number; problem: string };
}

/** The records of a home's audit log, as written (unchecked). */
export function readAudit(home: string): AuditRecord[] {
  const { log } = paths(home);
  if (!existsSync(log)) return [];
  return readFileSync(log, 'utf8').split('\n').filter(Boolean).map((line) => {
    try {
      return JSON.parse(line) as AuditRecord;
    } catch {
      return { seq: -1, time: '', who: { kind: 'admin', uid: null, user: '' }, action: '(not JSON)', result: 'failed', prev: '', mac: '' };
    }
  });
}

/** Checks the chain: an edited, removed, inserted or reordered record is found at its line. */
export function verifyAudit(home: string): Verification {
  const files = paths(home);
  if (!existsSync(files.log)) return { ok: true, records: 0 };
  if (!existsSync(files.key)) throw new AuditError('NTLS_ERR_AUDIT_KEY', `${files.key} is missing: the audit log cannot be checked`, { hint: 'restore it from the home\'s backup' });
  const key = readKey(files.key);
  const lines = readFileSync(files.log, 'utf8').split('\n').filter(Boolean);
  let prev = GENESIS;
  const bad = (line: number, problem: string): Verification => ({ ok: false, records: lines.length, firstBad: { line, problem } });
  for (const [index, text] of lines.entries()) {
    let record: AuditRecord;
    try {
      record = JSON.parse(text) as AuditRecord;
    } catch {
      return bad(index + 1, 'not a JSON record');
    }
    const { mac, ...body } = record;
    const expected = macOf(key, body);
    if (typeof mac !== 'string' || mac.length !== expected.length || !timingSafeEqual(Buffer.from(mac), Buffer.from(expected))) {
      return bad(index + 1, 'its MAC does not match its content (edited)');
    }
    if (record.prev !== prev) return bad(index + 1, 'it does not follow the record before it (a record removed, inserted or moved)');
    if (record.seq !== index + 1) return bad(index + 1, `sequence number ${record.seq} where ${index + 1} was due (a record removed or moved)`);
    prev = mac;
  }
  if (existsSync(files.head)) {
    const head = JSON.parse(readFileSync(files.head, 'utf8')) as { seq: number; mac: string };
    if (head.seq !== lines.length || head.mac !== prev) {
      return bad(lines.length + 1, `the log ends at record ${lines.length} but record ${head.seq} was written (records removed from the end)`);
    }
  }
  return { ok: true, records: lines.length };
}
