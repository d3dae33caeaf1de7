// `ntls logs check`: a summary of a log an operator can act on — the unexpected messages by
// kind, connections accepted without their disconnect, receive-timer expiries per client,
// crash dumps, and lines the guide does not know.
import { readdirSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Section } from '../../log/message.js';
import type { ExplainedLine } from './explain.js';

export interface Where {
  /** Line number in its file. */
  line: number;
  timestamp: string | null;
  /** The file, when several are read (--rotated). */
  file?: string;
}

export interface KindCount {
  id: string;
  heading: string;
  section: Section;
  count: number;
  first: Where;
  last: Where;
  /** The first line of this kind, as written. */
  example: string;
}

export interface OpenConnection {
  peer: string;
  pid: number | null;
  client: string | null;
  accepted: Where;
  /**
   * open: the log ends with the connection still up (it may be live);
   * lost: no disconnect although the service restarted, terminated or crashed afterwards, or the
   * same peer address was accepted again.
   */
  state: 'open' | 'lost';
  reason: 'log ended' | 'service restarted' | 'service terminated' | 'service crashed' | 'peer accepted again';
  closedBy: Where | null;
}

export interface ReceiveTimerSummary {
  client: string;
  count: number;
  peers: string[];
  first: Where;
  last: Where;
}

export interface CrashLine extends Where {
  /** The stack dump file the line names, or null ("unable to dump the stack"). */
  dumpFile: string | null;
  /** Whether that file is in the log folder now; null when there is no file or no folder. */
  dumpFound: boolean | null;
}

export interface DumpFile {
  file: string;
  bytes: number;
  modified: string;
  /** Whether a CRASH AND BURN line of this log names it. */
  named: boolean;
}

export interface CheckSummary {
  file: string;
  /** The files read, oldest first (more than one with --rotated). */
  files: string[];
  lines: number;
  recognised: number;
  unexpected: KindCount[];
  /** Unexpected kinds left out of the verdict with --ignore. */
  ignored: KindCount[];
  mismatches: (KindCount & { expected: { severity: string; label: string | null; code: string }; found: { severity: string | null; label: string | null; code: string | null } })[];
  connections: {
    accepted: number;
    disconnected: number;
    paired: number;
    withoutDisconnect: OpenConnection[];
    /** Disconnects of peers this log never accepted (the log began during the connection). */
    disconnectWithoutAccept: { peer: string; at: Where }[];
  };
  receiveTimerExpiries: ReceiveTimerSummary[];
  crashes: { lines: CrashLine[]; dumpFiles: DumpFile[] };
  /**
   * Runs that ended without their shutdown lines and without a crash line: their `Starting up`
   * line, where another start followed with no `NTLS terminated` of that process between (a kill
   * -9, the host gone down, the OOM killer).
   */
  abruptEnds: Where[];
  unknown: { count: number; lines: (Where & { raw: string; reason: string | null })[] };
  /**
   * Messages of the guide's "unexpected" sections that ntls writes in every healthy run (the
   * built-in processor named at start, a client ending its link, the processor unloaded at stop):
   * counted here, not in `unexpected`.
   */
  routine: KindCount[];
  /** Client connections the service refused: certificate not registered, linking from another host than its registered one, failed TLS handshake. */
  refusedClients: RefusedClient[];
  /** Refused client connections left out of the verdict with --ignore (still counted here). */
  refusedIgnored: number;
  /** What makes the verdict: each a short phrase. */
  findings: string[];
  exitStatus: 0 | 1;
}

export interface RefusedClient extends Where {
  peer: string | null;
  client: string | null;
  /** The catalogue id of the line that says so. */
  id: string;
}

/** Guide-"unexpected" messages of normal operation (see CheckSummary.routine). */
const ROUTINE = new Set(['defaultProcessorUsed', 'clientRequestedTermination', 'processorModuleUnloaded']);
/** Guide-"expected" messages that still need a look: a client was refused. */
const REFUSED = new Set(['clientCredentialsRejected', 'clientCredentialsMissing', 'clientCredentialsUnverified', 'secureChannelFailed']);
const ACCEPT = 'connectionAccepted';
const DISCONNECT = new Set(['clientDisconnected', 'connectionInstanceDisconnected']);
const RECEIVE_TIMER = new Set(['receiveTimerTerminate', 'receiveTimerExpired']);
const CRASH = new Set(['crashStackDumped', 'crashNoStackDump']);
const STARTING = 'startingUp';
const TERMINATED = 'terminated';
/** A start that failed ends its run with one of these (the guide's "NTLS Terminating" lines). */
const FAILED_START = new Set(['terminatingCritical', 'daemonStartFailed', 'applicationInitFailed', 'serverCreateFailed']);
const DUMP_NAME = /^ntls_bt_\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d/;
const UNKNOWN_SHOWN = 20;

interface Tracked {
  connection: OpenConnection;
  /**
   * A crash line of its pid came after it opened. A worker's crash leaves the daemon running and
   * its links' disconnect lines follow; only a link still without one when the daemon restarts,
   * stops or the log ends was lost to the crash.
   */
  crashed?: Where;
}

export interface CheckOptions {
  /** Catalogue ids or headings whose unexpected messages do not count. */
  ignore?: string[];
  /** Folder to look for ntls_bt_* files in; null for none (standard input). */
  logDirectory: string | null;
}

/** Reads explained lines in order and summarises them. */
export class LogCheck {
  private lines = 0;
  private recognised = 0;
  private readonly unexpected = new Map<string, KindCount>();
  private readonly routine = new Map<string, KindCount>();
  private readonly refused: RefusedClient[] = [];
  private readonly mismatches = new Map<string, CheckSummary['mismatches'][number]>();
  private readonly open = new Map<string, Tracked>();
  /** Peers this log has accepted at least once. */
  private readonly seenPeers = new Set<string>();
  private readonly withoutDisconnect: OpenConnection[] = [];
  private readonly disconnectWithoutAccept: { peer: string; at: Where }[] = [];
  private accepted = 0;
  private disconnected = 0;
  private paired = 0;
  private readonly timers = new Map<string, ReceiveTimerSummary>();
  private readonly crashLines: CrashLine[] = [];
  private unknownCount = 0;
  private readonly unknownLines: CheckSummary['unknown']['lines'] = [];
  /** The run the log is in: its start line and pid, and whether a crash line came since. */
  private run: { at: Where; pid: number | null; crashed: boolean } | null = null;
  private readonly abruptEnds: Where[] = [];

  constructor(private readonly files: string[], private readonly options: CheckOptions) {}

  /** The next line; `file` names its file when several files are read one after the other. */
  add(line: ExplainedLine, file?: string): void {
    this.lines++;
    const at: Where = { line: line.line, timestamp: line.parsed?.timestamp ?? null, ...(file === undefined ? {} : { file }) };
    if (line.status === 'unknown') {
      if (line.raw.trim() === '') { this.lines--; return; }
      this.unknownCount++;
      if (this.unknownLines.length < UNKNOWN_SHOWN) this.unknownLines.push({ ...at, raw: line.raw, reason: line.reason });
      return;
    }
    const id = line.id!;
    if (line.status === 'recognised') this.recognised++;
    else {
      const entry = this.mismatches.get(id);
      if (entry) { entry.count++; entry.last = at; } else {
        this.mismatches.set(id, {
          id, heading: line.heading!, section: line.section!, count: 1, first: at, last: at, example: line.raw,
          expected: line.mismatch!.expected, found: line.mismatch!.found,
        });
      }
    }
    if (line.kind === 'unexpected') {
      const kinds = ROUTINE.has(id) ? this.routine : this.unexpected;
      const entry = kinds.get(id);
      if (entry) { entry.count++; entry.last = at; } else kinds.set(id, { id, heading: line.heading!, section: line.section!, count: 1, first: at, last: at, example: line.raw });
    }
    if (REFUSED.has(id) || (id === 'handshakeResult' && line.params.result !== undefined && line.params.result !== 'Success')) {
      this.refused.push({ ...at, peer: line.params.peer ?? null, client: line.params.client ?? null, id });
    }
    this.followConnections(line, id, at);
    if (RECEIVE_TIMER.has(id)) this.receiveTimer(line, at);
    this.followRuns(id, line.parsed?.pid ?? null, at);
    if (CRASH.has(id)) {
      const file = line.params.file ?? null;
      this.crashLines.push({ ...at, dumpFile: file, dumpFound: file === null || this.options.logDirectory === null ? null : dumpExists(this.options.logDirectory, file) });
    }
  }

  private followRuns(id: string, pid: number | null, at: Where): void {
    if (id === STARTING) {
      if (this.run && !this.run.crashed) this.abruptEnds.push(this.run.at);
      this.run = { at, pid, crashed: false };
    } else if ((id === TERMINATED || FAILED_START.has(id)) && this.run && (this.run.pid === null || this.run.pid === pid)) {
      this.run = null;
    } else if (CRASH.has(id) && this.run) {
      this.run.crashed = true;
    }
  }

  private followConnections(line: ExplainedLine, id: string, at: Where): void {
    const pid = line.parsed?.pid ?? null;
    const peer = line.params.peer;
    if (id === STARTING) this.closeAll(() => true, 'service restarted', at);
    if (id === TERMINATED) this.closeAll((c) => c.pid === pid, 'service terminated', at);
    if (CRASH.has(id)) for (const tracked of this.open.values()) if (tracked.connection.pid === pid) tracked.crashed ??= at;
    if (peer === undefined) return;
    const tracked = this.open.get(peer);
    if (tracked && line.params.client !== undefined && tracked.connection.client === null) tracked.connection.client = line.params.client;
    if (id === ACCEPT) {
      this.accepted++;
      // The same address cannot be connected twice at once: an earlier one lost its disconnect.
      if (tracked) this.lose(peer, tracked, 'peer accepted again', at);
      this.seenPeers.add(peer);
      this.open.set(peer, {
        connection: { peer, pid, client: line.params.client ?? null, accepted: at, state: 'open', reason: 'log ended', closedBy: null },
      });
    } else if (DISCONNECT.has(id)) {
      this.disconnected++;
      if (tracked) {
        this.paired++;
        this.open.delete(peer);
      } else if (!this.seenPeers.has(peer)) {
        this.disconnectWithoutAccept.push({ peer, at });
      }
      // Otherwise a second disconnect line of a connection already paired.
    }
  }

  private lose(peer: string, tracked: Tracked, reason: OpenConnection['reason'], at: Where): void {
    this.open.delete(peer);
    this.withoutDisconnect.push(tracked.crashed
      ? { ...tracked.connection, state: 'lost', reason: 'service crashed', closedBy: tracked.crashed }
      : { ...tracked.connection, state: 'lost', reason, closedBy: at });
  }

  private closeAll(which: (c: OpenConnection) => boolean, reason: OpenConnection['reason'], at: Where): void {
    for (const [peer, tracked] of [...this.open]) if (which(tracked.connection)) this.lose(peer, tracked, reason, at);
  }

  private receiveTimer(line: ExplainedLine, at: Where): void {
    const client = line.params.client ?? '?';
    const entry = this.timers.get(client);
    const peer = line.params.peer;
    if (entry) {
      entry.count++;
      entry.last = at;
      if (peer && !entry.peers.includes(peer)) entry.peers.push(peer);
    } else {
      this.timers.set(client, { client, count: 1, peers: peer ? [peer] : [], first: at, last: at });
    }
  }

  finish(): CheckSummary {
    const stillOpen = [...this.open.values()].map((t): OpenConnection => (t.crashed
      ? { ...t.connection, state: 'lost', reason: 'service crashed', closedBy: t.crashed }
      : t.connection));
    const order = (w: Where) => [w.file === undefined ? 0 : this.files.indexOf(w.file), w.line];
    const withoutDisconnect = [...this.withoutDisconnect, ...stillOpen]
      .sort((a, b) => order(a.accepted)[0]! - order(b.accepted)[0]! || a.accepted.line - b.accepted.line);
    const ignore = new Set(this.options.ignore ?? []);
    const kinds = [...this.unexpected.values()]
      .sort((a, b) => order(a.first)[0]! - order(b.first)[0]! || a.first.line - b.first.line);
    const unexpected = kinds.filter((k) => !ignore.has(k.id) && !ignore.has(k.heading));
    const ignored = kinds.filter((k) => !unexpected.includes(k));
    const dumpFiles = this.options.logDirectory === null ? [] : listDumps(this.options.logDirectory, this.crashLines);
    // With several files, timestamps order the lines; the sort below keeps file order then line.
    const lost = withoutDisconnect.filter((c) => c.state === 'lost');
    const mismatches = [...this.mismatches.values()];
    const findings: string[] = [];
    const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
    const unexpectedTotal = unexpected.reduce((n, k) => n + k.count, 0);
    if (unexpectedTotal) findings.push(count(unexpectedTotal, 'unexpected message', 'unexpected messages') + ` (${count(unexpected.length, 'kind', 'kinds')})`);
    if (mismatches.length) findings.push(count(mismatches.reduce((n, k) => n + k.count, 0), 'line', 'lines') + ' with the text of a guide message but another level or code');
    if (lost.length) findings.push(count(lost.length, 'connection', 'connections') + ' accepted and never disconnected');
    const refused = this.refused.filter((r) => !ignore.has(r.id));
    if (refused.length) findings.push(count(refused.length, 'client connection', 'client connections') + ' refused');
    const expiries = [...this.timers.values()].reduce((n, t) => n + t.count, 0);
    if (expiries) findings.push(count(expiries, 'connection', 'connections') + ' of failing clients ended by a receive timer');
    if (this.crashLines.length) findings.push(count(this.crashLines.length, 'crash', 'crashes'));
    if (this.abruptEnds.length) findings.push(count(this.abruptEnds.length, 'run', 'runs') + ' ended without shutdown lines (killed?)');
    if (dumpFiles.length) findings.push(count(dumpFiles.length, 'stack dump file', 'stack dump files'));
    if (this.unknownCount) findings.push(count(this.unknownCount, 'line', 'lines') + ' the guide does not know');
    return {
      file: this.files.at(-1)!,
      files: this.files,
      lines: this.lines,
      recognised: this.recognised,
      unexpected,
      ignored,
      mismatches,
      connections: {
        accepted: this.accepted, disconnected: this.disconnected, paired: this.paired,
        withoutDisconnect, disconnectWithoutAccept: this.disconnectWithoutAccept,
      },
      receiveTimerExpiries: [...this.timers.values()].sort((a, b) => b.count - a.count || a.client.localeCompare(b.client)),
      crashes: { lines: this.crashLines, dumpFiles },
      abruptEnds: this.abruptEnds,
      unknown: { count: this.unknownCount, lines: this.unknownLines },
      routine: [...this.routine.values()],
      refusedClients: refused,
      refusedIgnored: this.refused.length - refused.length,
      findings,
      exitStatus: findings.length ? 1 : 0,
    };
  }
}

function dumpExists(folder: string, file: string): boolean {
  try {
    return statSync(join(folder, basename(file))).isFile();
  } catch {
    return false;
  }
}

function listDumps(folder: string, crashLines: CrashLine[]): DumpFile[] {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  const named = new Set(crashLines.map((c) => (c.dumpFile ? basename(c.dumpFile) : '')));
  return names.filter((n) => DUMP_NAME.test(n)).sort().flatMap((name) => {
    try {
      const stat = statSync(join(folder, name));
      if (!stat.isFile()) return [];
      return [{ file: join(folder, name), bytes: stat.size, modified: stat.mtime.toISOString(), named: named.has(name) }];
    } catch {
      return [];
    }
  });
}
